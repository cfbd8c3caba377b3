#!/usr/bin/env python3
"""The Python reference for the transformer backend's throughput: sentence-transformers (on PyTorch) encoding with
the same all-MiniLM-L6-v2 model, then the same linear head and softmax, on the same texts.

    python scripts/bench_transformer_python.py --model-dir DIR --texts FILE [--batch-sizes 1,32,64] [--device cpu]

Prints one JSON object per batch size: {"batch": B, "texts": N, "seconds": S, "texts_per_s": R}. Like the Rust
scorer, each run is handed the whole list and sorts it by length itself (sentence-transformers' encode does), and
the time excludes model loading. Used by scripts/bench-transformer.sh (CPU) and the GPU check.
"""
import argparse
import json
import os
import sys
import time

import torch
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--texts", required=True, help="one text per line")
    ap.add_argument("--batch-sizes", default="1,32,64")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--max-texts", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--best-of", type=int, default=1, help="time each batch size this many times, report the fastest")
    ap.add_argument("--repeat", type=int, default=1, help="score the list this many times over (a GPU needs volume)")
    ap.add_argument("--fp16", action="store_true", help="run the encoder in half precision (GPU)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with open(args.texts, encoding="utf-8") as f:
        texts = [line.rstrip("\n") for line in f]
    if args.max_texts:
        texts = texts[: args.max_texts]
    texts = texts * args.repeat
    model = SentenceTransformer(args.model_dir, device=args.device)
    if args.fp16:
        model.half()
    head = load_file(os.path.join(args.model_dir, "head.safetensors"))
    w = head["weight"].float().to(args.device)
    b = head["bias"].float().to(args.device)

    def score(batch_size):
        with torch.inference_mode():
            emb = model.encode(texts, batch_size=batch_size, convert_to_tensor=True, show_progress_bar=False)
            probs = torch.softmax(emb.float() @ w.T + b, dim=-1).cpu()
        return probs

    score(64 if len(texts) > 64 else len(texts))  # warm-up: first-call allocations and, on a GPU, kernel loading
    for bs in [int(x) for x in args.batch_sizes.split(",")]:
        dt = float("inf")
        for _ in range(args.best_of):
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            score(bs)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            dt = min(dt, time.perf_counter() - t0)
        print(json.dumps({"impl": "python", "device": args.device, "batch": bs, "texts": len(texts),
                          "seconds": round(dt, 3), "texts_per_s": round(len(texts) / dt, 1),
                          "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
