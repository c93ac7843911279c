#!/usr/bin/env bash
# Run every libFuzzer target of a -Dfuzz=true build: replay its seed
# corpus (tests/fuzz/corpus/NAME and every tests/services/*/corpus/NAME),
# then fuzz it for a short while. The targets are the executables the
# build made (BUILD_DIR/tests/fuzz/fuzz-*) and every corpus directory's
# name: one without the other fails.
#
#   scripts/fuzz.sh BUILD_DIR
#
# FUZZ_TIME (seconds per target, default 6) sets the length of the fuzz
# run. New inputs go to a temporary directory, never into the committed
# corpus; a crash leaves its input and log in FUZZ_ARTIFACTS (default
# BUILD_DIR/fuzz-artifacts) and makes the script fail.
set -uo pipefail

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
fi
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
time_per=${FUZZ_TIME:-6}
artifacts=${FUZZ_ARTIFACTS:-$build/fuzz-artifacts}
corpus_roots=("$src/tests/fuzz/corpus" "$src"/tests/services/*/corpus)
mapfile -t fuzzers < <(
	{
		find "$build/tests/fuzz" -maxdepth 1 -type f -name 'fuzz-*' \
			-perm -u+x -printf '%f\n' 2>/dev/null
		for root in "${corpus_roots[@]}"; do
			[ -d "$root" ] && find "$root" -mindepth 1 -maxdepth 1 \
				-type d -printf '%f\n'
		done
	} | sort -u)
if [ ${#fuzzers[@]} -eq 0 ]; then
	echo "FAIL: no fuzz targets built in $build/tests/fuzz and no corpus"
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/vmic-fuzz-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$artifacts"

# Sanitizer reports must fail the run, never just print.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=0
for name in "${fuzzers[@]}"; do
	exe=$build/tests/fuzz/$name
	corpora=()
	for root in "${corpus_roots[@]}"; do
		[ -d "$root/$name" ] && corpora+=("$root/$name")
	done
	dict=$(ls "$src/tests/fuzz/$name.dict" \
		"$src"/tests/services/*/"$name.dict" 2>/dev/null | head -n 1)
	log=$work/$name.log

	if [ ! -x "$exe" ]; then
		echo "FAIL $name: $exe not built (configure with -Dfuzz=true)"
		failed=1
		continue
	fi
	seeds=0
	[ ${#corpora[@]} -gt 0 ] && seeds=$(find "${corpora[@]}" -type f | wc -l)
	if [ "$seeds" -eq 0 ]; then
		echo "FAIL $name: no seed corpus in tests/fuzz/corpus/$name" \
			"or tests/services/*/corpus/$name"
		failed=1
		continue
	fi

	# 1. Every seed must still pass.
	if ! "$exe" -runs=0 -artifact_prefix="$artifacts/$name-" \
		"${corpora[@]}" >"$log" 2>&1; then
		cp "$log" "$artifacts/$name-replay.log"
		echo "FAIL $name: corpus replay crashed ($seeds seeds)," \
			"log in $artifacts/$name-replay.log"
		tail -n 30 "$log" | sed 's/^/    /'
		failed=1
		continue
	fi

	# 2. A short fuzz run from the seeds, new inputs kept aside.
	mkdir -p "$work/$name"
	dict_arg=()
	[ -n "$dict" ] && dict_arg=(-dict="$dict")
	if ! "$exe" -max_total_time="$time_per" -print_final_stats=1 \
		-artifact_prefix="$artifacts/$name-" "${dict_arg[@]}" \
		"$work/$name" "${corpora[@]}" >"$log" 2>&1; then
		cp "$log" "$artifacts/$name-fuzz.log"
		echo "FAIL $name: crash while fuzzing, input and log in" \
			"$artifacts/"
		grep -E 'check failed|ERROR: |SUMMARY' "$log" | head -n 5 |
			sed 's/^/    /'
		failed=1
		continue
	fi
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1)
	printf 'ok   %-18s %3d seeds replayed, %8s runs in %ss, %s\n' \
		"$name" "$seeds" "${runs:-?}" "$time_per" "${cov:-cov: ?}"
done

if [ "$failed" -ne 0 ]; then
	echo "fuzz: FAILED"
	exit 1
fi
echo "fuzz: all ${#fuzzers[@]} targets passed"
