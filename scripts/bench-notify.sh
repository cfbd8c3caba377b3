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
python3 - "$port" "$d/lat.txt" "$n" <<'PY' &
import http.server, json, sys, time, datetime
port, out, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
lat = []
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        now = time.time()
        end = datetime.datetime.fromisoformat(json.loads(body)["window_end"].replace("Z", "+00:00")).timestamp()
        lat.append(now - end)
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
        if len(lat) == n:
            open(out, "w").write("\n".join(f"{x:.6f}" for x in lat))
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
rpid=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
printf 'k' > "$d/key"
{ cat config/flashpoint.toml; printf '\n[notify]\n[[notify.channels]]\nkind = "webhook"\nname = "bench"\nurl = { env = "FP_BENCH_URL" }\nsigning_key = { file = "%s" }\n[[notify.routes]]\nname = "bench"\nchannels = ["bench"]\n' "$d/key"; } > "$d/cfg.toml"
python3 - "$n" "$rate" <<'PY' | FP_BENCH_URL="http://127.0.0.1:$port/hook" "$bin" notify --clock wall -c "$d/cfg.toml" -i - 2> "$d/summary"
import json, sys, time, datetime
n, rate = int(sys.argv[1]), float(sys.argv[2])
t0 = time.time()
for i in range(n):
    while time.time() < t0 + i / rate:
        time.sleep(0.0005)
    now = datetime.datetime.now(datetime.timezone.utc)
    ts = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    e = {"schema": "flashpoint.spike.v1", "incident_id": f"inc-bench-{i}", "seq": 0, "kind": "opened", "entity": "Acme Air",
         "incident_start": ts, "window_start": ts, "window_end": ts, "signal": "volume", "observed": 90.0, "baseline": 10.0,
         "score": 8.0, "severity": "critical", "counts": {"volume": 90, "negative": 60, "neutral": 20, "positive": 10},
         "negative_share": 0.6667, "mean_compound": -0.4, "reach": 1000,
         "evidence": {"most_negative": [], "top_reach": [], "top_terms": []}}
    sys.stdout.write(json.dumps(e) + "\n"); sys.stdout.flush()
PY
for _ in $(seq 1 100); do [ -s "$d/lat.txt" ] && break; sleep 0.1; done
grep -m3 "retrying" "$d/summary" || true
tail -1 "$d/summary"
python3 - "$d/lat.txt" "$rate" <<'PY'
import sys
xs = sorted(float(l) for l in open(sys.argv[1]))
q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))] * 1000
print(f"events: {len(xs)} at {sys.argv[2]}/s  latency event->receiver ack: p50 {q(0.5):.1f} ms  p90 {q(0.9):.1f} ms  p99 {q(0.99):.1f} ms  max {xs[-1]*1000:.1f} ms")
PY
