#!/usr/bin/env bash
# Transformer backend vs the Python pipeline (sentence-transformers 3.0.1 on PyTorch 2.4.0) with the same model, the
# same head and the same texts (the first N TweetEval sentiment validation tweets, as given), on the CPU, in the same
# run; batch sizes 1, 32 and 64; the Rust side in both precisions (int8, the default, and fp32). Model loading is
# excluded on both sides; each side gets the whole list and sorts it
# by length. Both run pinned to the same core with one intra-op thread (THREADS=2 for two, unpinned): on a shared
# 2-core machine two OpenMP threads lose far more to a busy neighbour than they gain. Each figure is the best of
# REPEATS runs (default 3).
# Usage: scripts/bench-transformer.sh [N_TEXTS]  (default 1000; installs libtorch and the Python venv, cached)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
threads=${THREADS:-1}
repeats=${REPEATS:-3}
data=${FLASHPOINT_DATA:-../shared/data}/tweeteval_sentiment
eval "$(scripts/libtorch.sh --python)"
cargo build -q --profile transformer -p flashpoint --features transformer
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
head -n "$n" "$data/val_text.txt" >"$tmp/val_text.txt"
head -n "$n" "$data/val_labels.txt" >"$tmp/val_labels.txt"
pin=()
[ "$threads" != 1 ] || pin=(taskset -c "$(($(nproc) - 1))")
echo "texts: $(wc -l <"$tmp/val_text.txt"), threads: $threads, best of $repeats, $(date -u +%F), load: $(cut -d' ' -f1-3 /proc/loadavg)"
rust() { # BATCH PRECISION -> best texts/s over REPEATS runs
  local best=0 r
  for _ in $(seq "$repeats"); do
    r=$(OMP_NUM_THREADS=$threads FLASHPOINT_LOG=warn "${pin[@]}" target/transformer/flashpoint eval-sentiment --data "$tmp" --raw \
      --scorer transformer --batch-size "$1" --precision "$2" 2>/dev/null | sed -n 's/^seconds .*(\([0-9.]*\) texts\/s.*/\1/p')
    best=$(python3 -c "print(max($best, $r))")
  done
  echo "$best"
}
printf '%-7s %14s %12s %12s %10s %10s\n' batch 'python fp32' 'rust int8' 'rust fp32' 'int8/py' 'fp32/py'
for b in 1 32 64; do
  pr=$("${pin[@]}" "$HOME/.cache/flashpoint/torch-venv/bin/python" scripts/bench_transformer_python.py \
    --model-dir "$FLASHPOINT_MODEL_DIR" --texts "$tmp/val_text.txt" --batch-sizes "$b" --threads "$threads" \
    --best-of "$repeats" 2>/dev/null | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["texts_per_s"])')
  r8=$(rust "$b" int8)
  r32=$(rust "$b" fp32)
  printf '%-7s %14.0f %12.0f %12.0f %9.2fx %9.2fx\n' "$b" "$pr" "$r8" "$r32" "$(python3 -c "print($r8 / $pr)")" "$(python3 -c "print($r32 / $pr)")"
done
