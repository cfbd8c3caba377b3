#!/usr/bin/env bash
# Transformer backend vs the Python pipeline (sentence-transformers on PyTorch 2.4.0) with the same model, the same
# head and the same texts (TweetEval's sentiment validation tweets, as given), on the CPU, in the same run; batch
# sizes 1, 32 and 64. Model loading is excluded on both sides; each side gets the whole list and sorts by length.
# Usage: scripts/bench-transformer.sh [N_TEXTS]  (default 2000; installs libtorch and the Python venv, cached)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
data=${FLASHPOINT_DATA:-../shared/data}/tweeteval_sentiment
eval "$(scripts/libtorch.sh --python)"
cargo build -q --release -p flashpoint --features transformer
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
head -n "$n" "$data/val_text.txt" >"$tmp/val_text.txt"
head -n "$n" "$data/val_labels.txt" >"$tmp/val_labels.txt"
echo "texts: $(wc -l <"$tmp/val_text.txt"), cores: $(nproc), $(date -u +%F)"
printf '%-7s %14s %14s %8s\n' batch 'rust texts/s' 'python texts/s' ratio
py=$("$HOME/.cache/flashpoint/torch-venv/bin/python" scripts/bench_transformer_python.py \
  --model-dir "$FLASHPOINT_MODEL_DIR" --texts "$tmp/val_text.txt" --batch-sizes 1,32,64 2>/dev/null)
for b in 1 32 64; do
  rs=$(FLASHPOINT_LOG=warn target/release/flashpoint eval-sentiment --data "$tmp" --raw --scorer transformer --batch-size "$b" |
    sed -n 's/^seconds .*(\([0-9.]*\) texts\/s.*/\1/p')
  pr=$(echo "$py" | python3 -c "import json,sys; print(next(r['texts_per_s'] for r in map(json.loads, sys.stdin) if r['batch'] == $b))")
  printf '%-7s %14.0f %14.0f %7.2fx\n' "$b" "$rs" "$pr" "$(python3 -c "print($rs / $pr)")"
done
