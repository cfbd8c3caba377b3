#!/usr/bin/env bash
# Installs (once, cached) and starts the Tansu Kafka-compatible broker on 127.0.0.1 for local development.
#   scripts/tansu.sh install          build tansu 0.6.0 into ~/.cache/flashpoint/tansu (15-30 min cold)
#   scripts/tansu.sh start [PORT]     start it with in-memory storage (default port 19092), print its PID
set -euo pipefail
CACHE=${FLASHPOINT_CACHE:-$HOME/.cache/flashpoint}
BIN=$CACHE/tansu/bin/tansu
install() {
  if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q '0.6.0'; then return 0; fi
  mkdir -p "$CACHE"
  echo "tansu.sh: building tansu 0.6.0 (cached in $CACHE/tansu; this takes 15-30 minutes once)" >&2
  CARGO_TARGET_DIR=$CACHE/tansu-target cargo install tansu --version 0.6.0 --features dynostore,libsql --locked --root "$CACHE/tansu"
}
case "${1:-}" in
  install) install ;;
  start)
    install
    port=${2:-19092}
    mkdir -p "$CACHE/logs"
    "$BIN" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
      --storage-engine memory://tansu/ >"$CACHE/logs/tansu-$port.log" 2>&1 &
    echo $!
    ;;
  *) echo "usage: $0 install | start [PORT]" >&2; exit 2 ;;
esac
