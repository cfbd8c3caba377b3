"""The three Python pieces of the notifier latency benchmarks (scripts/bench-notify.sh, scripts/bench-notify-kafka.sh),
kept once so both measure the same thing the same way.

  notify_latency.py receive PORT OUT N   a webhook receiver on 127.0.0.1:PORT: answers 200, records per request its
                                         arrival time minus the event's window_end, writes the N latencies to OUT
  notify_latency.py generate N RATE      N spike events (each a new incident, window_end = the moment it is written)
                                         paced at RATE per second, as JSON Lines on stdout
  notify_latency.py summary FILE RATE [PATH]   p50/p90/p99/max of the latencies in FILE (PATH names the path measured)
"""
import datetime
import http.server
import json
import sys
import time


def receive(port, out, n):
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

        def log_message(self, *a):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()


def generate(n, rate):
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


def summary(path, rate, what="event->receiver ack"):
    xs = sorted(float(l) for l in open(path))
    q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))] * 1000
    print(f"events: {len(xs)} at {rate}/s  latency {what}: p50 {q(0.5):.1f} ms  p90 {q(0.9):.1f} ms  p99 {q(0.99):.1f} ms  max {xs[-1]*1000:.1f} ms")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "receive":
        receive(int(args[0]), args[1], int(args[2]))
    elif cmd == "generate":
        generate(int(args[0]), float(args[1]))
    elif cmd == "summary":
        summary(*args[:3])
    else:
        sys.exit(f"unknown command {cmd}")
