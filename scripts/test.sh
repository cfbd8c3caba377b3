#!/usr/bin/env bash
# The README's test command, and what .ci/run calls: installs what the tests need (idempotently, cached under
# ~/.cache/flashpoint), then runs every test of the workspace.
#
# Needs only a Rust toolchain (rustup's cargo) and, for the observability test, Debian's `prometheus` package
# (scripts/prometheus.sh installs it with apt-get if missing). The Kafka tests need a Kafka-protocol broker: this script
# builds Tansu once (cached under ~/.cache/flashpoint/tansu, 15-30 minutes cold), starts a fresh in-memory
# instance on a free 127.0.0.1 port for this run, and stops it at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
command -v cargo >/dev/null || { echo "test.sh: cargo not found; install Rust with rustup first" >&2; exit 1; }
cargo --version
# Formatting (rustfmt.toml): rustup's default profile ships rustfmt; a minimal toolchain without it is told so.
if cargo fmt --version >/dev/null 2>&1; then
  cargo fmt --all -- --check || { echo "test.sh: code is not formatted; run \`cargo fmt --all\`" >&2; exit 1; }
else
  echo "test.sh: NOTE: rustfmt is not installed (rustup component add rustfmt); formatting not checked" >&2
fi
# No import cycles between the modules of a crate, and crate roots that only declare and re-export.
python3 scripts/import-cycles.py
# Build first so compile errors are reported apart from test failures; --locked keeps CI on Cargo.lock.
cargo build --locked --workspace --all-targets
# The default release binary, as the README's first command builds it (`cargo run --release -- replay ...`: the same
# package selection, features and profile), so that command runs at once after this script instead of compiling
# for minutes. Its own directory (target/release/); the transformer build below goes to target/transformer/.
cargo build --locked --release --bin flashpoint
# --- Deploy files (issue 6): Dockerfile, deploy/compose, deploy/k8s; check-config uses the binary just built.
FLASHPOINT_BIN=target/debug/flashpoint scripts/validate-deploy.sh
# ---
scripts/tansu.sh install
# Prometheus and promtool (installed if missing), then promtool check config/rules on deploy/prometheus/.
scripts/prometheus.sh check
export FLASHPOINT_PROMETHEUS=${FLASHPOINT_PROMETHEUS:-$(command -v prometheus)}
# The notifier's email tests (issue 14) need a real SMTP server: Debian's python3-aiosmtpd, installed if missing.
scripts/smtp.sh install
# The incident pages' tests (issue 22) load them in a real browser: Debian's chromium, headless, installed if missing.
scripts/chromium.sh install
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)))
broker_pid=$(scripts/tansu.sh start "$port")
log=$(mktemp)
trap 'kill "$broker_pid" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "test.sh: the test broker did not start; see ~/.cache/flashpoint/logs/tansu-$port.log" >&2; exit 1; }
export FLASHPOINT_TEST_BROKERS=127.0.0.1:$port
echo "test.sh: Tansu broker on $FLASHPOINT_TEST_BROKERS (pid $broker_pid)"
set +e
cargo test --locked --workspace 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# ---- transformer backend (issue 8) ----------------------------------------------------------------------------
# Needs python3 with pip as well (scripts/libtorch.sh takes libtorch from PyPI's torch wheel).
# Installs libtorch 2.4.0 (CPU) and the sentiment model (cached under ~/.cache/flashpoint; ~800 MB download once),
# then builds and tests the transformer crate and the binary's `transformer` feature. The `transformer` profile
# (release settings, own directory target/transformer/): rust-bert on libtorch is unusably slow unoptimised, one
# optimised build serves both the tests and the binary, and it never replaces the default binary in target/release/.
# The binary records $LIBTORCH/lib as its library path (crates/flashpoint/build.rs), so target/transformer/flashpoint
# runs from any shell; a test checks it starts without LD_LIBRARY_PATH. The cold build takes ~20 minutes on 2 cores.
eval "$(scripts/libtorch.sh)"
# Both packages in one invocation so cargo resolves features once and builds torch-sys (C++, minutes) once; the
# binary's whole test suite runs again with the feature on, the transformer tests (tests/cli_transformer.rs) among them.
feat=flashpoint-transformer/libtorch,flashpoint/transformer
cargo build --locked --profile transformer -p flashpoint-transformer -p flashpoint --features "$feat" --all-targets
set +e
cargo test --locked --profile transformer -p flashpoint-transformer -p flashpoint --features "$feat" 2>&1 | tee -a "$log"
tstatus=${PIPESTATUS[0]}
set -e
[ "$status" -ne 0 ] || status=$tstatus
# ---- end transformer backend ----------------------------------------------------------------------------------
# One closing line over all test binaries (cargo prints one per binary, the last often a doc-test "0 passed").
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
