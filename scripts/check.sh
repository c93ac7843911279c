#!/usr/bin/env bash
# `make check`: every part in turn, each timed, a table of the times at
# the end (CI must stay under its limit, and this says which part grew).
# A part that fails stops the run; its time is printed all the same.
set -uo pipefail
cd "$(dirname "$0")/.."

parts=(test release asan fuzz vm-check)
make=${MAKE:-make}
times=()
total_start=$SECONDS
for part in "${parts[@]}"; do
	start=$SECONDS
	echo "=== make check: $part" >&2
	$make --no-print-directory "$part"
	status=$?
	took=$((SECONDS - start))
	times+=("$(printf '%-10s %4d:%02d' "$part" $((took / 60)) $((took % 60)))")
	echo "=== make check: $part took $((took / 60))m $((took % 60))s" >&2
	if [ $status -ne 0 ]; then
		printf '%s\n' "${times[@]}" >&2
		echo "make check: $part FAILED (exit status $status)" >&2
		exit $status
	fi
done
total=$((SECONDS - total_start))
echo "make check: time per part (min:s)" >&2
printf '  %s\n' "${times[@]}" >&2
printf '  %-10s %4d:%02d\n' total $((total / 60)) $((total % 60)) >&2
echo "make check: all suites passed"
