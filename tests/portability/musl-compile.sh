#!/bin/sh
# musl-compile.sh SRCDIR FILE...: compile each of the agent's C files
# against musl's headers (Debian's musl-tools), as Alpine or a musl
# initramfs would. Only the libc differs: libuv, inih, xxhash and the
# kernel's headers are the build machine's, seen through a private include
# directory so that glibc's own headers stay out. A glibc-only function
# (sigabbrev_np, say) is an implicit declaration here, and an error.
# Exits 77 (skip) when musl-gcc is missing.
set -u
srcdir=$1
shift
if ! command -v musl-gcc >/dev/null 2>&1; then
	echo "SKIP: musl-gcc is not installed (Debian package musl-tools; make deps installs it)"
	exit 77
fi
shim=$(mktemp -d)
trap 'rm -rf "$shim"' EXIT
for h in uv.h uv ini.h xxhash.h linux asm-generic; do
	if [ ! -e "/usr/include/$h" ]; then
		echo "/usr/include/$h is missing: install the build dependencies (make deps)"
		exit 1
	fi
	ln -s "/usr/include/$h" "$shim/$h"
done
arch=$(gcc -dumpmachine)
ln -s "/usr/include/$arch/asm" "$shim/asm"
fail=0 n=0
for f in "$@"; do
	n=$((n + 1))
	if ! musl-gcc -std=gnu11 -D_GNU_SOURCE -DVMIC_VERSION='"musl-check"' \
		-Wall -Werror=implicit-function-declaration \
		-Werror=incompatible-pointer-types -Wno-unused-function \
		-I"$srcdir/src" -isystem "$shim" -c "$f" -o /dev/null; then
		echo "not musl-clean: $f"
		fail=1
	fi
done
[ $fail -eq 0 ] && echo "$n files of vmic-guestd compile against musl"
exit $fail
