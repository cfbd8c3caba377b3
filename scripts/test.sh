#!/usr/bin/env bash
# The README's test command, and what .ci/run calls: installs what the tests need (idempotently, cached under
# ~/.cache/flashpoint), then runs every test of the workspace.
#
# Needs only a Rust toolchain (rustup's cargo). Today the tests need no external service: the Kafka tests that
# will need the Tansu broker (scripts/tansu.sh) are not written yet.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
command -v cargo >/dev/null || { echo "test.sh: cargo not found; install Rust with rustup first" >&2; exit 1; }
cargo --version
# Build first so compile errors are reported apart from test failures; --locked keeps CI on Cargo.lock.
cargo build --locked --workspace --all-targets
cargo test --locked --workspace
