#!/usr/bin/env bash
# End-to-end replay throughput (decode, match, score, window, detect) on one core, and peak memory, on a
# generated stream of N posts (default 2,000,000). Usage: scripts/bench-replay.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000000}
cargo build -q --release -p flashpoint -p flashpoint-tools --bin flashpoint --bin stream-gen
f=$(mktemp -d)/stream.jsonl
target/release/stream-gen "$n" > "$f"
cpu=$(( $(nproc) - 1 ))
/usr/bin/time -f '%M' -o "$f.rss" taskset -c "$cpu" target/release/flashpoint replay -i "$f" -c config/flashpoint.toml -o /dev/null --dead-letter /dev/null 2> "$f.summary"
python3 - "$f.summary" "$f.rss" "$n" <<'PY'
import json, sys
s = json.loads([l for l in open(sys.argv[1]) if l.startswith('{')][-1])
rss_kb = int(open(sys.argv[2]).read().split()[-1])
print(f"posts: {int(sys.argv[3]):,}  matched: {s['stages']['matched']:,}  events: {s['events']}")
print(f"replay throughput: {s['posts_per_second']:,.0f} posts/s (1 core, end to end)")
print(f"peak RSS: {rss_kb / 1024:.1f} MiB")
PY
rm -rf "$(dirname "$f")"
