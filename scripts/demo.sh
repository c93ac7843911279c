#!/usr/bin/env bash
# make demo: boot a real guest under QEMU and walk through vmic (scripts/demo.py).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 scripts/demo.py "$@"
