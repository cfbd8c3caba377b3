#!/usr/bin/env bash
# Builds a kit to run the transformer backend on a CUDA machine that has PyTorch (Python) but no Rust toolchain and
# no network: the flashpoint binary (stripped, xz), the model with fp16-rounded encoder weights (44 MB), the
# TweetEval validation texts, the Python reference and a run script. This is how the GPU figures in docs/sentiment.md ("GPU") were
# taken (H100, torch 2.11.0+cu130 in Python there).
#
# tch 0.17 expects libtorch 2.4.0; the GPU machine has torch TORCH_VERSION. So the binary is built here against that
# version's headers and libraries (the PyPI wheel, downloaded once into ~/.cache/flashpoint), with
# LIBTORCH_BYPASS_VERSION_CHECK, three generated torch-sys wrappers whose C++ signatures changed stubbed out (none is
# used by rust-bert's BERT), and libtorch_cuda's CUDA dependencies left unresolved at link time; at run time the
# machine's own torch/lib provides them. Built in a copy of the repository, so Cargo.lock and target/ are untouched.
#
#   scripts/gpu-kit.sh [OUT_DIR, default target/gpu-kit] [TORCH_VERSION, default 2.11.0]
#   then on the GPU machine: bash OUT_DIR/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
out=$(realpath -m "${1:-target/gpu-kit}")
ver=${2:-2.11.0}
cache=$HOME/.cache/flashpoint/gpu-kit/torch-$ver
work=$(mktemp -d /tmp/flashpoint-gpu-kit.XXXXXX)
trap 'rm -rf "$work"' EXIT
eval "$(scripts/libtorch.sh --python)" # the model, and a Python with torch + safetensors for the fp16 copy
py=$HOME/.cache/flashpoint/torch-venv/bin/python

if [ ! -f "$cache/libtorch/lib/libtorch_cpu.so" ]; then
  mkdir -p "$cache"
  "$py" -m pip download -q --no-deps --only-binary=:all: -d "$cache" "torch==$ver"
  "$py" - "$cache" <<'PY'
import glob, os, sys, zipfile
cache = sys.argv[1]
whl = glob.glob(os.path.join(cache, "torch-*.whl"))[0]
with zipfile.ZipFile(whl) as z:
    for i in z.infolist():
        if i.filename.startswith(("torch/include/", "torch/lib/", "torch/share/")):
            z.extract(i, os.path.join(cache, "x"))
os.rename(os.path.join(cache, "x", "torch"), os.path.join(cache, "libtorch"))
os.remove(whl)
PY
fi

# torch-sys with the wrappers that do not compile against the newer headers replaced by a runtime error.
cargo fetch --locked -q
src=$(find "$HOME/.cargo/registry/src" -maxdepth 2 -type d -name 'torch-sys-0.17.0' | head -1)
cp -r "$src" "$work/torch-sys"
"$py" - "$work/torch-sys/libtch/torch_api_generated.cpp" <<'PY'
import sys
f = sys.argv[1]
s = open(f).read()
for name in ["atg__scaled_dot_product_cudnn_attention_backward(", "atg__scaled_mm(", "atg__scaled_mm_out("]:
    i = s.index("void " + name)
    j = s.index("PROTECT(", i)
    k = s.index("\n  )\n}", j)
    s = s[:j] + 'PROTECT(\n    throw std::runtime_error("not available: built against a newer libtorch");' + s[k:]
open(f, "w").write(s)
PY

mkdir "$work/repo" && git -C "$repo" archive --format=tar HEAD | tar -x -C "$work/repo"
mkdir -p "$work/repo/.cargo"
printf '[patch.crates-io]\ntorch-sys = { path = "%s" }\n' "$work/torch-sys" >"$work/repo/.cargo/config.toml"
(cd "$work/repo" && env LIBTORCH="$cache/libtorch" LIBTORCH_CXX11_ABI=1 LIBTORCH_BYPASS_VERSION_CHECK=1 \
  LD_LIBRARY_PATH="$cache/libtorch/lib" CARGO_TARGET_DIR="$HOME/.cache/flashpoint/gpu-kit/target" \
  RUSTFLAGS="-C link-arg=-Wl,--allow-shlib-undefined" cargo build -q --profile transformer -p flashpoint --features transformer)

rm -rf "$out" && mkdir -p "$out/model/1_Pooling" "$out/tweeteval"
strip -o "$work/flashpoint" "$HOME/.cache/flashpoint/gpu-kit/target/transformer/flashpoint"
xz -T2 -6 -c "$work/flashpoint" >"$out/flashpoint.xz"
for f in config.json config_sentence_transformers.json modules.json sentence_bert_config.json special_tokens_map.json \
  tokenizer_config.json vocab.txt head.json head.safetensors 1_Pooling/config.json; do
  cp -L "$FLASHPOINT_MODEL_DIR/$f" "$out/model/$f"
done
"$py" - "$FLASHPOINT_MODEL_DIR/model.safetensors" "$out/model/model.safetensors" <<'PY'
import sys
from safetensors.torch import load_file, save_file
t = load_file(sys.argv[1])
save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in t.items()}, sys.argv[2])
PY
data=${FLASHPOINT_DATA:-../shared/data}/tweeteval_sentiment
cp "$data/val_text.txt" "$data/val_labels.txt" "$out/tweeteval/"
cp scripts/bench_transformer_python.py "$out/"
cat >"$out/run.sh" <<'EOF'
#!/usr/bin/env bash
# Rust backend on CUDA (fp32) vs the Python pipeline, same model directory and texts, best of 3 each.
set -u
cd "$(dirname "$0")"
PY=$(command -v python3 || command -v python)
TL=$($PY -c "import torch,os; print(os.path.join(os.path.dirname(torch.__file__),'lib'))")
export LD_LIBRARY_PATH="$TL:${LD_LIBRARY_PATH:-}"
xz -d -k -f flashpoint.xz && chmod +x flashpoint
for b in 1 32 64 256; do
  for r in 1 2 3; do
    FLASHPOINT_LOG=warn ./flashpoint eval-sentiment --data tweeteval --raw --scorer transformer --model-dir model \
      --device cuda --precision fp32 --batch-size $b 2>&1 | sed -n "s/^seconds .*(\([0-9.]*\) texts\/s.*/rust cuda b$b \1/p"
  done
  $PY bench_transformer_python.py --model-dir model --texts tweeteval/val_text.txt --batch-sizes $b --device cuda --best-of 3 2>/dev/null
done
EOF
chmod +x "$out/run.sh"
du -sh "$out"
