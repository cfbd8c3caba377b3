#!/usr/bin/env python3
"""Single-core throughput of the reference vaderSentiment on the VADER tweets (the committed fixture).
Prints one JSON line: {"tweets_per_s": f, "texts": n, "seconds": f}."""
import json
import os
import sys
import time

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
texts = [json.loads(l)["text"] for l in open(os.path.join(root, "tests/fixtures/vader/tweets.jsonl"), encoding="utf-8")]
min_secs = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
a = SentimentIntensityAnalyzer()
for t in texts[:500]:
    a.polarity_scores(t)
n = 0
start = time.perf_counter()
while time.perf_counter() - start < min_secs:
    for t in texts:
        a.polarity_scores(t)
    n += len(texts)
secs = time.perf_counter() - start
print(json.dumps({"tweets_per_s": round(n / secs, 1), "texts": n, "seconds": round(secs, 3)}))
