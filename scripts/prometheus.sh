#!/usr/bin/env bash
# Installs Prometheus and promtool (Debian package `prometheus`) if they are missing, idempotently.
# The observability test (crates/flashpoint/tests/prometheus.rs) runs the real server against a worker, and
# scripts/test.sh runs `promtool check config/rules` on deploy/prometheus/.
#   scripts/prometheus.sh install    install if absent (apt-get; needs root or sudo), print the versions
#   scripts/prometheus.sh check      promtool check config + rules, and the rules' unit tests, on deploy/prometheus/
set -euo pipefail
cd "$(dirname "$0")/.."
install() {
  if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    return 0
  fi
  command -v apt-get >/dev/null || { echo "prometheus.sh: no apt-get; install Prometheus (prometheus and promtool on PATH) by hand" >&2; exit 1; }
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "prometheus.sh: installing the Debian package prometheus" >&2
  # Never start the packaged service: the tests run their own instance on 127.0.0.1 with a temp data dir.
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >/dev/null || true
  $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  command -v prometheus >/dev/null && command -v promtool >/dev/null || { echo "prometheus.sh: prometheus/promtool still missing after apt-get install" >&2; exit 1; }
}
check() {
  install
  # promtool check config also checks the rule files it names (relative to the config file).
  promtool check config deploy/prometheus/prometheus.yml
  promtool check rules deploy/prometheus/rules.yml
  # Each alert fires on its fault and stays quiet when healthy (synthetic series).
  promtool test rules deploy/prometheus/rules_test.yml
}
case "${1:-install}" in
  install) install; prometheus --version 2>&1 | head -1 ;;
  check) check ;;
  *) echo "usage: $0 install | check" >&2; exit 2 ;;
esac
