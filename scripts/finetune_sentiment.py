#!/usr/bin/env python3
"""Fine-tunes the whole encoder with the head (an experiment: does it pay off over the frozen encoder?).

    python scripts/finetune_sentiment.py --encoder DIR --head DIR --data DIR --out DIR [--device cuda] [--epochs 2]

Same architecture as the Rust scorer runs (BERT → mean pooling → L2 normalisation → linear → softmax), so the
output directory is a model directory the `transformer` scorer loads as is. The head starts from the frozen-encoder
head (models/minilm-sentiment-head), the same training data and the same TweetEval-validation exclusion as
scripts/train_sentiment_head.py; the validation split's macro recall is printed after each epoch. Needs a GPU to
be quick (about a minute an epoch on an H100; hours on 2 CPU cores), which is why the committed head is the frozen
one. Weights are saved in fp16 (45 MB), split into --split-mb chunks if asked (the device tool's file limit).
"""
import argparse
import json
import os
import random
import shutil
import sys
import time

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoTokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_sentiment_head import LABELS, dedup_key, macro_recall, normalize, read_semeval  # noqa: E402


def embed(model, batch):
    out = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(out.dtype)
    pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--encoder", required=True)
    ap.add_argument("--head", required=True, help="folder with head.safetensors and head.json")
    ap.add_argument("--data", required=True, help="the shared data folder")
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--split-mb", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N tweets only (a smoke test)")
    args = ap.parse_args()
    torch.manual_seed(0)
    random.seed(0)

    rows = read_semeval(os.path.join(args.data, "semeval2017_task4A"))
    with open(os.path.join(args.data, "tweeteval_sentiment/val_text.txt"), encoding="utf-8") as f:
        val_raw = [line.rstrip("\n") for line in f]
    with open(os.path.join(args.data, "tweeteval_sentiment/val_labels.txt")) as f:
        val_y = np.array([int(x) for x in f.read().split()])
    val_keys = {dedup_key(t) for t in val_raw}
    seen, train = set(), []
    for tid, y, text, _ in rows:
        k = dedup_key(text)
        if k in val_keys or k in seen:
            continue
        seen.add(k)
        train.append((normalize(text), y))
    if args.limit:
        train = train[: args.limit]
    val_texts = [normalize(t) for t in val_raw]
    print(f"training on {len(train)} tweets", file=sys.stderr)

    tok = AutoTokenizer.from_pretrained(args.encoder)
    model = AutoModel.from_pretrained(args.encoder, torch_dtype=torch.float32).to(args.device)
    head_t = load_file(os.path.join(args.head, "head.safetensors"))
    head = torch.nn.Linear(model.config.hidden_size, 3).to(args.device)
    with torch.no_grad():
        head.weight.copy_(head_t["weight"].float())
        head.bias.copy_(head_t["bias"].float())
    ys = torch.tensor([y for _, y in train])
    counts = torch.bincount(ys, minlength=3).float()
    cw = (counts.sum() / (3 * counts)).to(args.device)
    opt = torch.optim.AdamW([{"params": model.parameters(), "lr": args.lr}, {"params": head.parameters(), "lr": 1e-3}],
                            weight_decay=0.01)
    steps = args.epochs * ((len(train) + args.batch_size - 1) // args.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, s / (0.06 * steps)) * max(0.0, (steps - s) / steps))

    def evaluate():
        model.eval()
        preds = []
        with torch.inference_mode(), torch.autocast(args.device.split(":")[0], dtype=torch.bfloat16, enabled=args.device != "cpu"):
            for i in range(0, len(val_texts), 256):
                b = tok(val_texts[i:i + 256], padding=True, truncation=True, max_length=128, return_tensors="pt").to(args.device)
                preds.append(head(embed(model, b).float()).argmax(1).cpu())
        model.train()
        return macro_recall(val_y, torch.cat(preds).numpy())

    print(json.dumps({"epoch": 0, "tweeteval_val_macro_recall": round(evaluate(), 4)}), flush=True)
    for epoch in range(args.epochs):
        order = list(range(len(train)))
        random.shuffle(order)
        t0 = time.time()
        for i in range(0, len(order), args.batch_size):
            idx = order[i:i + args.batch_size]
            b = tok([train[j][0] for j in idx], padding=True, truncation=True, max_length=128, return_tensors="pt").to(args.device)
            with torch.autocast(args.device.split(":")[0], dtype=torch.bfloat16, enabled=args.device != "cpu"):
                logits = head(embed(model, b).float())
            loss = torch.nn.functional.cross_entropy(logits, ys[idx].to(args.device), weight=cw)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        print(json.dumps({"epoch": epoch + 1, "seconds": round(time.time() - t0, 1),
                          "tweeteval_val_macro_recall": round(evaluate(), 4)}), flush=True)

    os.makedirs(args.out, exist_ok=True)
    # With --split-mb only the trained files are written (the rest is the encoder's, unchanged): the device tool
    # brings back at most 8 files.
    for f in [] if args.split_mb else os.listdir(args.encoder):
        src = os.path.join(args.encoder, f)
        if f != "model.safetensors":
            (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, os.path.join(args.out, f))
    # Exactly the original checkpoint's tensors and names (buffers such as position_ids included), with the trained
    # values, so rust-bert loads the result the way it loads the original.
    trained = model.state_dict()
    state = {}
    for k, v in load_file(os.path.join(args.encoder, "model.safetensors")).items():
        t = trained.get(k, v).detach().cpu()
        state[k] = (t.half() if t.is_floating_point() else t).contiguous()
    save_file(state, os.path.join(args.out, "model.safetensors"), metadata={"format": "pt"})
    save_file({"weight": head.weight.detach().half().cpu().contiguous(), "bias": head.bias.detach().half().cpu().contiguous()},
              os.path.join(args.out, "head.safetensors"))
    meta = json.load(open(os.path.join(args.head, "head.json")))
    meta.update({"encoder": "all-MiniLM-L6-v2 fine-tuned with the head (scripts/finetune_sentiment.py)", "epochs": args.epochs})
    json.dump(meta, open(os.path.join(args.out, "head.json"), "w"), indent=2)
    if args.split_mb:
        p = os.path.join(args.out, "model.safetensors")
        data = open(p, "rb").read()
        n = args.split_mb << 20
        for k in range(0, len(data), n):
            open(f"{p}.part{k // n}", "wb").write(data[k:k + n])
        os.remove(p)


if __name__ == "__main__":
    main()
