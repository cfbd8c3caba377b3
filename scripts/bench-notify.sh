#!/usr/bin/env bash
# Latency from a spike event to the receiver's acknowledgement, through `flashpoint notify` to a healthy local
# webhook receiver. Usage: scripts/bench-notify.sh [EVENTS] [RATE_PER_SEC]   (default 2000 events at 200/s)
#
# A generator writes spike events whose window_end is the moment it writes them (each a new incident, so each
# is sent at once), paced at RATE, into `flashpoint notify --clock wall`; the webhook channel posts them to a
# Python receiver on 127.0.0.1 that answers 200 and records, per request, its arrival time minus the event's
# window_end. That is the latency the issue asks for (event out of detection -> receiver's ack), less the
# receiver's own write of the 200. Prints p50/p90/p99/max. FLASHPOINT_BIN picks the binary (default: the
# release build, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
rate=${2:-200}
bin=${FLASHPOINT_BIN:-target/release/flashpoint}
if [ -z "${FLASHPOINT_BIN:-}" ]; then
  cargo build -q --release -p flashpoint --bin flashpoint
fi
d=$(mktemp -d)
rpid=
trap '[ -z "$rpid" ] || kill "$rpid" 2>/dev/null || true; rm -rf "$d"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 scripts/notify_latency.py receive "$port" "$d/lat.txt" "$n" &
rpid=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
printf 'k' > "$d/key"
{ cat config/flashpoint.toml; printf '\n[notify]\n[[notify.channels]]\nkind = "webhook"\nname = "bench"\nurl = { env = "FP_BENCH_URL" }\nsigning_key = { file = "%s" }\n[[notify.routes]]\nname = "bench"\nchannels = ["bench"]\n' "$d/key"; } > "$d/cfg.toml"
python3 scripts/notify_latency.py generate "$n" "$rate" | FP_BENCH_URL="http://127.0.0.1:$port/hook" "$bin" notify --clock wall -c "$d/cfg.toml" -i - 2> "$d/summary"
for _ in $(seq 1 100); do [ -s "$d/lat.txt" ] && break; sleep 0.1; done
grep -m3 "retrying" "$d/summary" || true
tail -1 "$d/summary"
python3 scripts/notify_latency.py summary "$d/lat.txt" "$rate"
