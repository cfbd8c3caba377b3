#!/usr/bin/env python3
"""Regenerates tests/fixtures/vader/*.jsonl: the reference VADER scores that the Rust parity test compares with.

Usage: pip install vaderSentiment==3.3.2 && python3 scripts/gen_vader_reference.py [VADER_DATA_DIR]

VADER_DATA_DIR holds the ground-truth files of Hutto & Gilbert (2014) (default: ../shared/data/vader, whose
hutto_ICWSM_2014 files are MIT-licensed with the lexicon). Each output line is
{"id", "text", "neg", "neu", "pos", "compound"} with the text exactly as the reference scored it: the third
tab-separated column with the line ending stripped.
"""
import json
import os
import sys

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

FILES = {
    "tweets": "tweets_GroundTruth.txt",
    "movieReviewSnippets": "movieReviewSnippets_GroundTruth.txt",
    "nytEditorialSnippets": "nytEditorialSnippets_GroundTruth.txt",
    "amazonReviewSnippets": "amazonReviewSnippets_GroundTruth.txt",
}


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "..", "shared", "data", "vader")
    out_dir = os.path.join(root, "tests", "fixtures", "vader")
    os.makedirs(out_dir, exist_ok=True)
    analyzer = SentimentIntensityAnalyzer()
    for name, fname in FILES.items():
        n = 0
        with open(os.path.join(src, fname), encoding="utf-8-sig", newline="") as f, open(
            os.path.join(out_dir, name + ".jsonl"), "w", encoding="utf-8"
        ) as out:
            for line in f:
                line = line.rstrip("\r\n")
                if not line:
                    continue
                ident, _mean, text = line.split("\t", 2)
                s = analyzer.polarity_scores(text)
                rec = {"id": ident, "text": text, "neg": s["neg"], "neu": s["neu"], "pos": s["pos"], "compound": s["compound"]}
                out.write(json.dumps(rec, ensure_ascii=False) + "\n")
                n += 1
        print(f"{name}: {n} texts", file=sys.stderr)


if __name__ == "__main__":
    main()
