#!/usr/bin/env bash
# The cluster worker under faults (heavy; separate from scripts/test.sh). Each scenario starts its own Tansu
# broker on a free port, feeds a generated stream with five known incidents (plus bad and late records),
# injects the fault, then accounts for every input record (scored topic / dead-letter topic / unmatched, each
# equal to `flashpoint replay` of the same stream) and compares the spike events with replay's (duplicates
# only as exact replays). Prints a report per scenario; exits 1 if any fails.
#
#   scripts/faults.sh [SCENARIO] [OPTIONS]
#     SCENARIO  kill (default) | broker | rebalance | pause | all
#       kill       one worker SIGKILLed 1-5 s after it is ready (--kills K, default 10), restarted each time
#       broker     the broker (sqlite storage) stopped 20 s mid-stream and restarted; /readyz must say 503, then 200
#       rebalance  three workers; one at a time stopped with SIGTERM and replaced (--kills K times)
#       pause      the broker frozen (SIGSTOP) 2 x 25 s: worker RSS must stay bounded, nothing lost
#     --posts N (default 1000000)  --seed S  --rate R (input posts/s while workers run; 0 = as fast as possible)
#     --dir DIR (work dir, logs: DIR/*.log)  --checkpoint-ms MS (aggregate checkpoint interval, default 1000)
#     --broker-signal KILL|TERM (broker scenario; TERM shows Tansu's shutdown errors)  --librdkafka '"key" = "value"'
# Needs Tansu (scripts/tansu.sh install) and a release build (done here).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/tansu.sh install
cargo build -q --release -p flashpoint -p flashpoint-tools --bin flashpoint --bin faults
scenario=${1:-kill}
[ $# -gt 0 ] && shift
exec target/release/faults "$scenario" "$@"
