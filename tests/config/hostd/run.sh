#!/bin/sh
# Golden-file check of `vmic-hostd --check-config` (OpenBSD vmd style).
#   run.sh DAEMON NAME.conf
# pass-NAME.conf: exit 0, stdout equals pass-NAME.ok, and stderr equals
#   pass-NAME.err when that file exists (warnings), else is empty.
# fail-NAME.conf: exit 1 and stderr equals fail-NAME.err.
# Runs in the case's directory (a service's cases are in tests/services/
# NAME/config/hostd/), so diagnostics name the file relatively.
# GOLDEN_ONLY or GOLDEN_EXCEPT (section names, space-separated) compare
# only those sections of stdout, or all but those (../sections.awk).
daemon=$1
conf=$2
filter=$(cd "$(dirname "$0")/.." && pwd)/sections.awk
base=${conf%.conf}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

"$daemon" --check-config --config "$conf" >"$tmp/raw" 2>"$tmp/err"
status=$?
awk -v only="${GOLDEN_ONLY:-}" -v except="${GOLDEN_EXCEPT:-}" \
	-f "$filter" "$tmp/raw" >"$tmp/out" || exit 1
case $base in
pass-*)
	if [ $status -ne 0 ]; then
		echo "$conf: expected exit 0, got $status"; cat "$tmp/err"; exit 1
	fi
	diff -u "$base.ok" "$tmp/out" || exit 1
	if [ -f "$base.err" ]; then
		diff -u "$base.err" "$tmp/err" || exit 1
	elif [ -s "$tmp/err" ]; then
		echo "$conf: unexpected diagnostics:"; cat "$tmp/err"; exit 1
	fi
	;;
fail-*)
	if [ $status -ne 1 ]; then
		echo "$conf: expected exit 1, got $status"; exit 1
	fi
	diff -u "$base.err" "$tmp/err" || exit 1
	if [ -s "$tmp/raw" ]; then
		echo "$conf: printed a configuration although it failed"; exit 1
	fi
	;;
*)
	echo "$conf: name it pass-*.conf or fail-*.conf"; exit 1
	;;
esac
exit 0
