#!/usr/bin/env bash
# Installs the browser the incident-page tests load pages in (Debian's `chromium`, run headless) if missing,
# idempotently. The tests (crates/flashpoint/tests/pages.rs) run it with --headless --dump-dom on files and on the
# notify stage's live pages; FLASHPOINT_CHROMIUM names another binary. Also used for the README's screenshot.
#   scripts/chromium.sh install    install if absent (apt-get; needs root or sudo), print the version
set -euo pipefail
bin=${FLASHPOINT_CHROMIUM:-chromium}
install() {
  command -v "$bin" >/dev/null && return 0
  command -v apt-get >/dev/null || { echo "chromium.sh: no apt-get; install Chromium by hand and set FLASHPOINT_CHROMIUM" >&2; exit 1; }
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "chromium.sh: installing the Debian package chromium" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
    || { $sudo apt-get update -qq >/dev/null || true; $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
  command -v "$bin" >/dev/null || { echo "chromium.sh: $bin still not found after apt-get install" >&2; exit 1; }
}
case "${1:-install}" in
  install) install; "$bin" --version ;;
  *) echo "usage: $0 install" >&2; exit 2 ;;
esac
