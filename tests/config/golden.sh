#!/bin/sh
# golden.sh DAEMON DIR NAME: run `DAEMON --check-config --config NAME.conf`
# in DIR and compare stdout with NAME.ok and stderr with NAME.err (fail
# cases) or NAME.warn (warnings of a passing case; none when absent).
# VMIC_GOLDEN_UPDATE=1 rewrites the expected files instead.
# GOLDEN_ONLY or GOLDEN_EXCEPT (section names, space-separated) compare
# only those sections of stdout, or all but those (sections.awk): a
# service's cases show its own [NAME], the core's cases all but the
# services' sections, so adding a service changes no shared file.
set -u
daemon=$1 dir=$2 name=$3
filter=$(cd "$(dirname "$0")" && pwd)/sections.awk
cd "$dir" || exit 1
raw=$(mktemp) out=$(mktemp) err=$(mktemp)
trap 'rm -f "$raw" "$out" "$err"' EXIT
"$daemon" --check-config --config "$name.conf" >"$raw" 2>"$err"
rc=$?
awk -v only="${GOLDEN_ONLY:-}" -v except="${GOLDEN_EXCEPT:-}" \
	-f "$filter" "$raw" >"$out" || exit 1
case $name in
pass-*) want_rc=0 stdout_file=$name.ok stderr_file=$name.warn ;;
fail-*) want_rc=1 stdout_file= stderr_file=$name.err ;;
*) echo "case $name must start with pass- or fail-"; exit 1 ;;
esac
if [ "${VMIC_GOLDEN_UPDATE:-}" = 1 ]; then
	[ -n "$stdout_file" ] && cp "$out" "$stdout_file"
	if [ -s "$err" ]; then cp "$err" "$stderr_file"; else rm -f "$stderr_file"; fi
	exit 0
fi
fail=0
if [ "$rc" -ne "$want_rc" ]; then
	echo "exit status $rc, expected $want_rc"; fail=1
fi
if [ -n "$stdout_file" ] && ! diff -u "$stdout_file" "$out"; then fail=1; fi
if [ -f "$stderr_file" ]; then
	diff -u "$stderr_file" "$err" || fail=1
elif [ -s "$err" ]; then
	echo "unexpected diagnostics:"; cat "$err"; fail=1
fi
exit $fail
