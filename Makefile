# vmic: the two commands of README.md are `make demo` and `make check`.
# Everything else here is what they are made of.

BUILD        ?= build
ASAN_BUILD   ?= build-asan
FUZZ_BUILD   ?= build-fuzz
STATIC_BUILD ?= build-static
RELEASE_BUILD ?= build-release
MESON_TEST   = meson test --print-errorlogs --num-processes 2

.PHONY: all deps build static release demo check test asan fuzz vm-check bench \
	bench-heartbeat bench-floor bench-loop bench-stream bench-timesync \
	bench-kvp bench-backup bench-exec bench-copy clean

all: build

deps:
	@scripts/deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# vmic-guestd linked statically, for the initramfs of the real-VM tests.
$(STATIC_BUILD)/build.ninja:
	meson setup $(STATIC_BUILD) -Dstatic_guest=true -Dbuildtype=release -Db_ndebug=true

static: deps $(STATIC_BUILD)/build.ninja
	ninja -C $(STATIC_BUILD)

# The release build (-O3, NDEBUG) must build too: GCC warns differently
# there, and the benchmarks use it.
$(RELEASE_BUILD)/build.ninja:
	meson setup $(RELEASE_BUILD) -Dbuildtype=release

release: deps $(RELEASE_BUILD)/build.ninja
	ninja -C $(RELEASE_BUILD)

test: build
	$(MESON_TEST) -C $(BUILD) --no-suite vm

# The same suite again under AddressSanitizer and UndefinedBehaviorSanitizer.
$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

# The VM suite runs here too, with the sanitized vmic-hostd and vmic (the
# agent inside the guest is the static one).
asan: deps static $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	$(MESON_TEST) -C $(ASAN_BUILD) --timeout-multiplier 3

# libFuzzer targets: replay the corpus, then a short fuzz run of each.
$(FUZZ_BUILD)/build.ninja:
	CC=clang meson setup $(FUZZ_BUILD) -Dfuzz=true -Dbuildtype=debug

fuzz: deps $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD)
	scripts/fuzz.sh $(FUZZ_BUILD)

# Real Linux guests under QEMU (tests/vm).
vm-check: build static
	$(MESON_TEST) -C $(BUILD) --suite vm

# Each part in turn, timed (scripts/check.sh prints the table).
check:
	@MAKE="$(MAKE)" scripts/check.sh

demo: build static
	scripts/demo.sh

# Benchmarks (docs/benchmarks.md) on the release build; each takes minutes.
bench: bench-heartbeat bench-floor bench-loop bench-stream bench-timesync \
	bench-kvp bench-backup bench-exec bench-copy

bench-heartbeat: release
	python3 bench/heartbeat-scale/run.py --build $(RELEASE_BUILD)

bench-floor: release
	python3 bench/heartbeat-scale/run.py --build $(RELEASE_BUILD) --floor

# The loop's latency while the store works (docs/benchmarks.md): release
# build, state under /var/tmp (a real disk).
bench-loop: release
	python3 bench/loop-latency/run.py --build $(RELEASE_BUILD)

# One vmic stream against a raw AF_UNIX copy, in the release build.
bench-stream: release
	$(RELEASE_BUILD)/bench/stream-bench

bench-timesync: release
	python3 bench/timesync/run.py --build $(RELEASE_BUILD)

# KVP: set/get latency and rate through the control API and the CLI, and
# 10,000 records to a guest after a reconnect with the heartbeat's p99
# (docs/benchmarks.md): release build, state under /var/tmp.
bench-kvp: release
	python3 bench/kvp/run.py --build $(RELEASE_BUILD)

# Frozen time of a backup against bare FIFREEZE+FITHAW on a scratch ext4
# (docs/benchmarks.md): release build, root (a loop mount).
bench-backup: release
	python3 bench/backup/run.py --build $(RELEASE_BUILD)
# Direct Session: `vmic exec VM true` against a local `true` (medians of
# 200), `vmic exec VM cat` against a local pipe (docs/benchmarks.md).
bench-exec: release
	python3 bench/exec/run.py --build $(RELEASE_BUILD)
# vmic copy both ways against a protocol-free AF_UNIX copy, scp and
# qemu-ga when installed (docs/benchmarks.md): release build, tmpfs.
bench-copy: release
	python3 bench/copy/run.py --build $(RELEASE_BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(STATIC_BUILD) $(RELEASE_BUILD)
