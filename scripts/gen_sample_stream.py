#!/usr/bin/env python3
"""Generates data/sample/stream.jsonl: a SYNTHETIC three-day stream of posts about two fictional brands with one
clear incident (Acme Air loses luggage at scale on day 3, 14:00-16:30 UTC). Deterministic (fixed seed).

It exists so `flashpoint replay` has something realistic to chew on without a broker or a data licence: a daily
cycle, a background of mixed sentiment, posts that mention no watched entity, slight out-of-order arrival, one
post far behind the watermark and one malformed line (both end up in the dead-letter output), and the airline's own
replies during the incident (its response: a first reply, an update, 100 minutes of silence, a last update).

Usage: python3 scripts/gen_sample_stream.py > data/sample/stream.jsonl
"""
import json
import math
import random
from datetime import datetime, timedelta, timezone

rng = random.Random(7)
START = datetime(2026, 3, 2, tzinfo=timezone.utc)
DAYS = 3

ACME_POS = ["Smooth flight with {e} today, crew was lovely", "{e} upgraded me, what a great surprise!",
            "On time and friendly staff, thanks {e}", "Love the new seats on {e}"]
ACME_NEU = ["Boarding my {e} flight to Denver", "Anyone know if {e} allows two carry-ons?",
            "{e} flight 212 is at gate B4", "Checking in with {e} for tomorrow"]
ACME_NEG = ["{e} delayed again, annoying", "Not happy with {e} customer service", "{e} wifi is terrible"]
INCIDENT = ["{e} LOST my luggage and nobody at the desk can help. Worst airline ever!",
            "Three hours waiting for bags at the {e} carousel, absolutely awful #lostluggage",
            "@AcmeAir where is my suitcase?? Your staff are rude and useless",
            "{e} lost luggage for the whole flight, this is a disaster",
            "Never flying {e} again. Lost bags, no refund, no apology.",
            "{e} baggage system is broken, hundreds of us stranded without luggage"]
GLOBEX = ["{e} app is down again?", "Opened a savings account at {e}, easy process",
          "{e} fees are ridiculous", "Good chat with {e} support today", "{e} branch on 5th street closed early"]
OTHER = ["What a lovely morning in the park", "Traffic on the bridge is awful", "New phone who dis",
         "Coffee first, questions later", "The match last night was incredible"]
AUTHORS = [f"user{i}" for i in range(400)]


def post(i, t, text, followers=None, author=None):
    rec = {"id": f"p{i}", "text": text, "created_at": t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z",
           "author": author or rng.choice(AUTHORS), "followers": followers if followers is not None else int(rng.paretovariate(1.2) * 50),
           "lang": "en"}
    return rec


def main():
    out = []
    i = 0
    minutes = DAYS * 24 * 60
    incident_start = START + timedelta(days=2, hours=14)
    for m in range(minutes):
        t0 = START + timedelta(minutes=m)
        hour = t0.hour + t0.minute / 60
        cycle = 1.0 + 0.8 * math.sin((hour - 9) / 24 * 2 * math.pi)
        for ent, rate, pools in (("Acme Air", 1.2, (ACME_POS, ACME_NEU, ACME_NEG)), ("Globex", 0.6, (GLOBEX,)), (None, 0.8, (OTHER,))):
            n = sum(1 for _ in range(10) if rng.random() < rate * cycle / 10)
            for _ in range(n):
                pool = rng.choice(pools) if ent == "Acme Air" and rng.random() < 0.3 else pools[min(len(pools) - 1, 0 if rng.random() < 0.45 else (1 if rng.random() < 0.7 else len(pools) - 1))]
                text = rng.choice(pool).format(e=ent or "")
                t = t0 + timedelta(seconds=rng.random() * 60)
                out.append(post(i, t, text))
                i += 1
        dt = (t0 - incident_start).total_seconds() / 60
        if 0 <= dt < 150:
            # Ramps to ~30 complaints a minute at +45 min, then decays.
            intensity = 30 * min(1.0, dt / 45) * (1.0 if dt < 75 else max(0.0, 1 - (dt - 75) / 75))
            for _ in range(int(intensity + rng.random())):
                t = t0 + timedelta(seconds=rng.random() * 60)
                out.append(post(i, t, rng.choice(INCIDENT).format(e=rng.choice(["Acme Air", "@AcmeAir", "#AcmeAir"]))))
                i += 1
            if int(dt) == 20:
                out.append(post(i, t0 + timedelta(seconds=30), "Acme Air lost my bag and my medication. Completely unacceptable.",
                                followers=1_200_000, author="famous_traveller"))
                i += 1
    # Arrival order: event time plus up to 20 s of network jitter.
    out.sort(key=lambda r: r["created_at"] + f"{rng.random():.3f}")
    lines = [json.dumps(r) for r in out]
    # One post arriving two hours late, and one malformed record.
    late = post(i, incident_start - timedelta(hours=3), "Acme Air check-in queue is slow")
    lines.insert(len(lines) * 9 // 10, json.dumps(late))
    lines.insert(len(lines) // 2, '{"id": "broken", "text": "truncated record')
    # The airline's own replies (config: own_handles = ["@AcmeAir"]): a first reply 25 minutes after the alarm
    # (14:09), one update, then a silence past the plan's hour (a reminder), then a closing update. Made without
    # the generator's random numbers and placed by event time, so every other line stays as it was.
    for n, (at, text) in enumerate(REPLIES, 1):
        t = (incident_start + at).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        rec = {"id": f"r{n}", "text": text, "created_at": t, "author": "AcmeAir", "followers": 250_000, "lang": "en"}
        k = next(k for k, line in enumerate(lines) if line.startswith("{\"id\": \"p") and json.loads(line)["created_at"] > t)
        lines.insert(k, json.dumps(rec))
    print("\n".join(lines))


REPLIES = [
    (timedelta(minutes=34, seconds=10), "We know many of you are waiting for bags at the carousel. Our baggage system failed at 14:00; staff are sorting bags by hand. Updates here every hour."),
    (timedelta(minutes=80), "Update: the baggage system is back. Bags from the afternoon flights are being delivered to homes and hotels tonight; claim at acmeair.example/bags."),
    (timedelta(hours=3), "Update: every bag from today's flights is on its way. We are sorry, and we will refund checked-bag fees for all affected flights."),
]


if __name__ == "__main__":
    main()
