#!/usr/bin/env bash
# Memory per watched entity: replays a generated stream over N entities (default 10,000), each mentioned about once
# a minute for M minutes of event time (default 60), and prints the replay's peak RSS and what it comes to per
# entity. Usage: scripts/bench-entities.sh [N] [M]
#
# BASELINE=/path/to/other/flashpoint scripts/bench-entities.sh also replays the same stream with that binary (e.g. a
# release build of an earlier commit; BASELINE_CONFIG: the config of its commit, whose settings head the generated
# config, since an older binary may refuse keys added since) and prints the difference per entity.
# Posts are drawn from a few hundred complaint and chatter phrases, so each entity's phrase baseline (the
# drivers' count-min sketch) and pane samples fill as they would on real traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
minutes=${2:-60}
cargo build -q --release --bin flashpoint
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
python3 - "$n" "$minutes" "$d" "${BASELINE_CONFIG:-config/flashpoint.toml}" <<'PY'
import json, random, sys
n, minutes, d = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rnd = random.Random(7)
for src, dst in (("config/flashpoint.toml", "config.toml"), (sys.argv[4], "baseline.toml")):
    base = open(src).read()
    head = base[: base.index("[[entities]]")]
    with open(f"{d}/{dst}", "w") as f:
        f.write(head.replace("max_entities = 10000", f"max_entities = {max(n, 1)}"))
        for i in range(n):
            f.write(f'[[entities]]\nname = "Brand {i}"\nterms = ["brand{i}"]\n\n')
words = ("delay refund luggage lost crew seat wifi lounge app login outage price ticket gate storm strike food "
         "coffee great awful rude helpful slow fast broken fixed waiting hours cancelled upgrade points card").split()
t0 = 1_772_409_600  # 2026-03-02T00:00:00Z
with open(f"{d}/stream.jsonl", "w") as f:
    k = 0
    for m in range(minutes):
        for i in rnd.sample(range(n), n):
            text = f"brand{i} " + " ".join(rnd.choice(words) for _ in range(8))
            t = t0 + m * 60 + rnd.randrange(60)
            ts = f"2026-03-{2 + t // 86400 - t0 // 86400:02d}T{(t % 86400) // 3600:02d}:{(t % 3600) // 60:02d}:{t % 60:02d}Z"
            f.write(json.dumps({"id": f"p{k}", "text": text, "created_at": ts, "author": f"u{rnd.randrange(50000)}",
                                "followers": rnd.randrange(5000)}) + "\n")
            k += 1
PY
run() {
  /usr/bin/time -f '%M' -o "$d/rss" "$1" replay -i "$d/stream.jsonl" -c "$d/$2" -o /dev/null \
    --dead-letter /dev/null 2>/dev/null >/dev/null
  cat "$d/rss"
}
cur=$(run target/release/flashpoint config.toml)
echo "current: peak RSS $((cur / 1024)) MiB for $n entities over $minutes minutes ($((cur * 1024 / (n > 0 ? n : 1))) bytes per entity, all state included)"
if [ -n "${BASELINE:-}" ]; then
  base=$(run "$BASELINE" baseline.toml)
  echo "baseline: peak RSS $((base / 1024)) MiB; current - baseline: $(((cur - base) * 1024 / (n > 0 ? n : 1))) bytes per entity"
fi
