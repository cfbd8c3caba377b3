#!/usr/bin/env bash
# End-to-end replay throughput (decode, match, score, window, detect) on one core, and peak memory, on a
# generated stream of N posts (default 2,000,000). Usage: scripts/bench-replay.sh [N]
#
# BASELINE=/path/to/other/flashpoint scripts/bench-replay.sh [N] also runs that binary (with BASELINE_CONFIG, default
# config/flashpoint.toml: an older binary may refuse keys added since, so pass it the config of its own commit) (e.g. a release build of
# an earlier commit, copied aside) on the same stream, alternating with this one ROUNDS times (default 3), plus
# this binary with the language gate off (--languages '*'), and prints the best of each and the ratios: speed
# claims are ratios measured in one sitting, never figures from different runs. On a shared machine wall-clock rates
# swing with the neighbours' load; the CPU-time rate (posts per second of the process's own user+system time) is
# steadier, and the ratios are printed for both.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000000}
rounds=${ROUNDS:-3}
cargo build -q --release -p flashpoint -p flashpoint-tools --bin flashpoint --bin stream-gen
f=$(mktemp -d)/stream.jsonl
trap 'rm -rf "$(dirname "$f")"' EXIT
target/release/stream-gen "$n" > "$f"
cpu=$(( $(nproc) - 1 ))
# run NAME BINARY [ARGS...]: one replay, pinned; appends "NAME posts_per_second rss_kb matched events" to $f.runs.
run() {
  local name=$1 bin=$2 config=config/flashpoint.toml
  shift 2
  [ "$name" = baseline ] && config=${BASELINE_CONFIG:-$config}
  /usr/bin/time -f '%M %U %S' -o "$f.rss" taskset -c "$cpu" "$bin" replay -i "$f" -c "$config" -o /dev/null \
    --dead-letter /dev/null "$@" 2> "$f.summary"
  python3 - "$f.summary" "$f.rss" "$name" >> "$f.runs" <<'PY'
import json, sys
s = json.loads([l for l in open(sys.argv[1]) if l.startswith('{')][-1])
rss_kb, user, system = open(sys.argv[2]).read().split()[-3:]
cpu_rate = s['stages']['posts'] / max(float(user) + float(system), 1e-9)
print(sys.argv[3], s['posts_per_second'], cpu_rate, rss_kb, s['stages']['matched'], s['stages'].get('unscored', 0), s['events'])
PY
}
if [ -n "${BASELINE:-}" ]; then
  for _ in $(seq 1 "$rounds"); do
    run baseline "$BASELINE"
    run current target/release/flashpoint
    run gate-off target/release/flashpoint --languages '*'
  done
else
  run current target/release/flashpoint
fi
python3 - "$f.runs" "$n" <<'PY'
import sys
runs = {}
for line in open(sys.argv[1]):
    name, pps, cpu, rss, matched, unscored, events = line.split()
    runs.setdefault(name, []).append((float(pps), float(cpu), int(rss), int(matched), int(unscored), int(events)))
n = int(sys.argv[2])
for name, rs in runs.items():
    best = max(rs)
    cpu = max(r[1] for r in rs)
    print(f"{name:>9}: {best[0]:,.0f} posts/s wall, best of {len(rs)} (all: {', '.join(f'{r[0]:,.0f}' for r in rs)}); "
          f"{cpu:,.0f} posts per CPU-second, best; peak RSS {best[2] / 1024:.1f} MiB; posts {n:,}, "
          f"matched {best[3]:,}, unscored {best[4]:,}, events {best[5]}")
if 'baseline' in runs:
    b = max(runs['baseline'])
    bc = max(r[1] for r in runs['baseline'])
    for name in ('current', 'gate-off'):
        print(f"{name} / baseline: {max(runs[name])[0] / b[0]:.3f} wall, "
              f"{max(r[1] for r in runs[name]) / bc:.3f} CPU time")
else:
    print(f"replay throughput: {max(runs['current'])[0]:,.0f} posts/s (1 core, end to end)")
PY
