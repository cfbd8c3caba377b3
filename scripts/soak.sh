#!/usr/bin/env bash
# Soak: one worker at a steady input rate for MINUTES (default 10) against a fresh in-memory Tansu broker.
# Every 10 s a line goes to the CSV (elapsed, produced, consumed, records/s, worker RSS, dead letters, spike
# events, broker RSS). Fails if the worker's memory keeps growing (last third's peak RSS > 1.5x the middle
# third's and > 64 MiB more), its throughput decays (last third under 80 % of the rate) or it falls behind.
#   scripts/soak.sh [MINUTES] [RATE posts/s, default 3000] [CSV, default soak-<date>.csv in the work dir]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
rate=${2:-3000}
dir=$(mktemp -d /tmp/flashpoint-soak.XXXXXX)
csv=${3:-$dir/soak.csv}
scripts/tansu.sh install
cargo build -q --release -p flashpoint -p flashpoint-tools --bin flashpoint --bin faults
echo "soak.sh: $minutes min at $rate posts/s; CSV $csv; logs in $dir" >&2
exec target/release/faults soak --minutes "$minutes" --rate "$rate" --csv "$csv" --dir "$dir"
