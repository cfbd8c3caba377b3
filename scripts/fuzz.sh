#!/usr/bin/env bash
# Runs every libFuzzer target in fuzz/ for SECONDS each (default 60) and prints executions and findings.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# cargo fuzz needs `-Z` compiler flags, which a stable toolchain refuses; RUSTC_BOOTSTRAP=1 lets stable rustc
# accept them (what nightly would do), so no nightly is needed. cargo-fuzz itself is installed once from
# crates.io into ~/.cache/flashpoint/cargo-fuzz. Targets are built with debug assertions and overflow checks,
# without a sanitizer by default (the code under test has no `unsafe`; FUZZ_SANITIZER=address turns ASan on).
# The corpus grown from fuzz/seeds is kept in ~/.cache/flashpoint/fuzz/corpus/TARGET; crashes land in
# fuzz/artifacts/TARGET/ (ignored by git: minimise one, then turn it into a regression test).
# Limits catch unbounded allocation: a single allocation over 256 MB, or RSS over 2 GB, is a finding.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
cache=${FLASHPOINT_CACHE:-$HOME/.cache/flashpoint}
export PATH="$cache/cargo-fuzz/bin:$PATH"
export RUSTC_BOOTSTRAP=1
version=0.13.2
if ! cargo fuzz --version 2>/dev/null | grep -q "$version"; then
    echo "fuzz.sh: installing cargo-fuzz $version into $cache/cargo-fuzz" >&2
    cargo install cargo-fuzz --version "$version" --locked --root "$cache/cargo-fuzz"
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(decode decode_paths normalize score matcher)
sanitizer=${FUZZ_SANITIZER:-none}
summary=()
status=0
for t in "${targets[@]}"; do
    corpus="$cache/fuzz/corpus/$t"
    mkdir -p "$corpus" "fuzz/artifacts/$t"
    log="$cache/fuzz/$t.log"
    echo "== $t: ${secs}s" >&2
    dict=()
    case "$t" in decode|decode_paths) dict=(-dict=fuzz/decode.dict) ;; esac
    set +e
    cargo fuzz run --fuzz-dir fuzz -s "$sanitizer" -a "$t" "$corpus" "fuzz/seeds/$t" -- \
        -max_total_time="$secs" -max_len=16384 -timeout=10 -malloc_limit_mb=256 -rss_limit_mb=2048 \
        -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 "${dict[@]}" >"$log" 2>&1
    rc=$?
    set -e
    runs=$(awk '/^stat::number_of_executed_units:/ { print $2 }' "$log")
    found=$(find "fuzz/artifacts/$t" -type f | wc -l)
    summary+=("$t: ${runs:-?} executions in ${secs}s, exit $rc, $found artifact(s)")
    if [ "$rc" -ne 0 ]; then
        status=1
        grep -m5 -E "panicked|ERROR:|SUMMARY" "$log" >&2 || true
    fi
done
printf '%s\n' "${summary[@]}"
exit "$status"
