#!/usr/bin/env bash
# Kafka drain benchmark (issue: worker at >= 80% of a bare consumer's drain rate).
#   scripts/bench-kafka.sh [N] [PARTITIONS] [BRAND_SHARE]   defaults: 1,000,000 posts, 4 partitions, 0.8
# Starts a fresh in-memory Tansu on a free port, loads N generated posts (stream-gen: ~80% mention a watched
# brand), then in the same run measures
#   1. a bare rdkafka consumer that only drains the topic (tools/kafka_drain.rs), and
#   2. `flashpoint run --role all` (consume, decode, match, score, publish to the internal topic, aggregate,
#      window, detect, checkpoint), timed from its first consumed record until the aggregate stage has
#      applied every (post, entity) pair, read from its /metrics,
# and prints both rates and their ratio. The broker shares the machine's cores with both.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
parts=${2:-4}
share=${3:-0.8}
cargo build -q --release --locked -p flashpoint -p flashpoint-tools --bin flashpoint --bin stream-gen --bin kafka-drain
scripts/tansu.sh install
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
broker_pid=$(scripts/tansu.sh start "$port")
worker_pid=
trap 'kill $broker_pid $worker_pid 2>/dev/null || true; rm -rf "$work"' EXIT
sleep 1
b=127.0.0.1:$port
target/release/stream-gen "$n" "$share" > "$work/stream.jsonl"
# The (post, entity) pairs the aggregate stage must apply: from a replay of the same stream.
target/release/flashpoint replay -c config/flashpoint.toml -i "$work/stream.jsonl" -o /dev/null --dead-letter /dev/null 2> "$work/replay.json"
pairs=$(python3 -c 'import json,sys; s=json.loads([l for l in open(sys.argv[1]) if l.startswith("{")][-1])["aggregator"]; print(s["aggregated"]+s["late"]+s["too_far_ahead"])' "$work/replay.json")
t0=$(date +%s.%N)
target/release/flashpoint produce --brokers "$b" --topic posts --partitions "$parts" -i "$work/stream.jsonl" 2>/dev/null
t1=$(date +%s.%N)
echo "loaded $n posts into $parts partitions in $(python3 -c "print(f'{$t1-$t0:.1f}')") s"

bare=$(target/release/kafka-drain "$b" posts "$n")
echo "bare consumer: $bare"

python3 - "$work/worker.toml" "$b" "$mport" "$parts" <<'PY'
import sys
base = open("config/flashpoint.toml").read()
at = base.index("[[entities]]")
kafka = f'''[kafka]
brokers = "{sys.argv[2]}"
input_topics = ["posts"]
group_id = "bench"
internal_partitions = {sys.argv[4]}
[metrics]
listen = "127.0.0.1:{sys.argv[3]}"
'''
open(sys.argv[1], "w").write(base[:at] + kafka + "\n" + base[at:])
PY
FLASHPOINT_LOG=warn ${PERF_WRAP:-} target/release/flashpoint run -c "$work/worker.toml" --role all 2> "$work/worker.log" &
worker_pid=$!
python3 - "$mport" "$n" "$pairs" "$bare" <<'PY'
import json, re, sys, time, urllib.request
port, n, pairs, bare = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
def scrape():
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except Exception:
        return None
    v = {}
    for line in text.splitlines():
        m = re.match(r'^(flashpoint_records_consumed_total\{stage="score"\}|flashpoint_posts_aggregated_total|flashpoint_duplicate_records_total|process_resident_memory_bytes) (\S+)$', line)
        if m:
            v[m.group(1)] = float(m.group(2))
    return v
start = None
deadline = time.time() + 900
peak_rss = 0
while time.time() < deadline:
    v = scrape()
    if v:
        peak_rss = max(peak_rss, v.get("process_resident_memory_bytes", 0))
        consumed = v.get('flashpoint_records_consumed_total{stage="score"}', 0)
        if consumed > 0 and start is None:
            start = time.time()
        if consumed >= n and v.get("flashpoint_posts_aggregated_total", 0) >= pairs:
            break
    time.sleep(0.02)
else:
    sys.exit("worker did not finish in 900 s")
secs = time.time() - start
rate = n / secs
print(f"worker (consume+decode+match+score+publish+aggregate+detect): {n} posts, {pairs} pairs in {secs:.2f} s = {rate:,.0f} posts/s, peak RSS {peak_rss/2**20:.0f} MiB")
print(f"bare consumer: {bare['records_per_second']:,.0f} records/s")
print(f"ratio worker/bare: {rate / bare['records_per_second']:.2f}")
PY
