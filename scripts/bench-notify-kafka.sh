#!/usr/bin/env bash
# Latency from a spike event on the spikes topic to the receiver's acknowledgement, through the Kafka notify
# stage (`flashpoint run --role notify`) on a fresh local Tansu to a healthy webhook receiver on 127.0.0.1.
# Usage: scripts/bench-notify-kafka.sh [EVENTS] [RATE_PER_SEC]   (default 1000 events at 100/s)
#
# A generator writes spike events whose window_end is the moment it writes them (each a new incident, so each is
# sent at once), paced at RATE, into `flashpoint produce` (the spikes topic, 4 partitions); the worker's notify
# stage posts them to a Python receiver that answers 200 and records its arrival time minus the event's
# window_end. So the figure covers produce + broker + consume + route + sign + HTTP, the whole path after
# detection. Prints p50/p90/p99/max and the sent/failed counters. FLASHPOINT_BIN picks
# the binary (default: the release build, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
rate=${2:-100}
bin=${FLASHPOINT_BIN:-target/release/flashpoint}
if [ -z "${FLASHPOINT_BIN:-}" ]; then
  cargo build -q --release -p flashpoint --bin flashpoint
fi
scripts/tansu.sh install
d=$(mktemp -d)
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free); rport=$(free); mport=$(free)
broker_pid=$(scripts/tansu.sh start "$port")
rpid= wpid=
trap 'kill $wpid $rpid $broker_pid 2>/dev/null || true; rm -rf "$d"' EXIT
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
b=127.0.0.1:$port
python3 scripts/notify_latency.py receive "$rport" "$d/lat.txt" "$n" &
rpid=$!
printf 'k' > "$d/key"
printf 'http://127.0.0.1:%s/hook' "$rport" > "$d/url"
python3 - "$d/cfg.toml" "$b" "$mport" "$d" <<'PY'
import sys
base = open("config/flashpoint.toml").read()
at = base.index("[[entities]]")
extra = f'''[kafka]
brokers = "{sys.argv[2]}"
input_topics = ["posts"]
group_id = "bench-notify"
spikes_topic = "spikes"
internal_partitions = 4
[metrics]
listen = "127.0.0.1:{sys.argv[3]}"
[notify]
[[notify.channels]]
kind = "webhook"
name = "bench"
url = {{ file = "{sys.argv[4]}/url" }}
signing_key = {{ file = "{sys.argv[4]}/key" }}
[[notify.routes]]
name = "bench"
channels = ["bench"]
'''
open(sys.argv[1], "w").write(base[:at] + extra + "\n" + base[at:])
PY
FLASHPOINT_LOG=warn "$bin" run -c "$d/cfg.toml" --role notify 2> "$d/worker.log" &
wpid=$!
# Wait until the notify stage has its partitions (/readyz), so the first events do not measure the group join.
for _ in $(seq 1 300); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$mport/readyz', timeout=1)" 2>/dev/null && break
  sleep 0.2
done
python3 scripts/notify_latency.py generate "$n" "$rate" | "$bin" produce --brokers "$b" --topic spikes -i - 2>/dev/null
for _ in $(seq 1 300); do [ -s "$d/lat.txt" ] && break; sleep 0.1; done
[ -s "$d/lat.txt" ] || { echo "bench-notify-kafka: not every event reached the receiver; worker log:" >&2; tail -20 "$d/worker.log" >&2; exit 1; }
python3 scripts/notify_latency.py summary "$d/lat.txt" "$rate" "spikes topic -> notify stage -> receiver ack"
python3 -c "import urllib.request; t = urllib.request.urlopen('http://127.0.0.1:$mport/metrics').read().decode(); print(*[l for l in t.splitlines() if l.startswith(('flashpoint_notifications_sent_total', 'flashpoint_notifications_failed_total'))], sep=chr(10))"
kill -TERM "$wpid"; wait "$wpid" || true; wpid=
