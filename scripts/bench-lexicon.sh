#!/usr/bin/env bash
# Lexicon scorer vs the Python reference, same texts, same machine, same run, one core each.
# Usage: scripts/bench-lexicon.sh [SECONDS]   (installs vaderSentiment 3.3.2 with pip if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
python3 -c 'import vaderSentiment' 2>/dev/null || python3 -m pip install -q vaderSentiment==3.3.2
cargo build -q --release -p flashpoint-tools --bin lexicon-throughput
cpu=$(( $(nproc) - 1 ))
py=$(taskset -c "$cpu" python3 scripts/vader_python_throughput.py "$secs")
rs=$(taskset -c "$cpu" target/release/lexicon-throughput "$secs")
python3 - "$py" "$rs" <<'PY'
import json, sys
py, rs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"python vaderSentiment 3.3.2 : {py['tweets_per_s']:>12,.0f} tweets/s (1 core)")
print(f"flashpoint lexicon scorer  : {rs['tweets_per_s']:>12,.0f} tweets/s (1 core)")
print(f"ratio                      : {rs['tweets_per_s'] / py['tweets_per_s']:>12.1f} x")
PY
