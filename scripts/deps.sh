#!/usr/bin/env bash
# Install the Debian packages vmic needs to build, test and run its demo.
# As root it runs apt-get itself; otherwise it prints the exact command and
# stops, so nothing is installed behind an unprivileged user's back.
set -euo pipefail

packages=(
	# build
	meson ninja-build pkg-config gcc clang libclang-rt-14-dev
	# libraries (design.md); -dev packages carry the static archives too
	libuv1-dev libjansson-dev libinih-dev libsqlite3-dev libxxhash-dev
	libcmocka-dev
	# the agent's PAM sessions (optional: without it, none are opened)
	libpam0g-dev
	# docs and shell completion
	scdoc bash-completion
	# tests: integration harness, metrics validator, SQLite inspection,
	# counting a daemon's fsyncs
	python3 sqlite3 prometheus strace
	# real-VM tests and demo: QEMU, busybox for the initramfs, cpio
	qemu-system-x86 busybox-static cpio e2fsprogs
	# the agent builds on musl (tests/portability)
	musl-tools
	# a real chronyd as the time service's test peer (always run with -x:
	# it never sets this machine's clock)
	chrony
	# hostd's libvirt source (-Dlibvirt=auto); its tests use libvirt's
	# test driver, in process and in a private libvirtd (session mode,
	# started by the test itself: the package starts no service)
	libvirt-dev libxml2-dev libvirt-daemon
)

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "vmic needs these Debian packages: ${missing[*]}" >&2
	echo "Install them as root with:" >&2
	echo "  apt-get update && $cmd" >&2
	exit 1
fi
echo "Installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Installing chrony must not start a chronyd that would set this machine's
# clock: where no policy forbids starting services, forbid it meanwhile.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	trap 'rm -f "$policy"' EXIT
fi
# A fresh machine may have no package lists yet.
if ! apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
