#!/usr/bin/env bash
# Installs the SMTP server the email tests run against (Debian's python3-aiosmtpd, for /usr/bin/python3) and the
# openssl command (test certificates for STARTTLS) if missing, idempotently. The tests
# (crates/flashpoint/tests/notify.rs) start their own instances on free 127.0.0.1 ports, writing Maildirs in temp
# directories; FLASHPOINT_SMTP_PYTHON names another interpreter.
#   scripts/smtp.sh install    install if absent (apt-get; needs root or sudo), print the version
set -euo pipefail
py=${FLASHPOINT_SMTP_PYTHON:-/usr/bin/python3}
install() {
  # The STARTTLS test makes its certificates with the openssl command.
  if "$py" -c 'import aiosmtpd' 2>/dev/null && command -v openssl >/dev/null; then
    return 0
  fi
  command -v apt-get >/dev/null || { echo "smtp.sh: no apt-get; install aiosmtpd for $py by hand (pip install aiosmtpd)" >&2; exit 1; }
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "smtp.sh: installing the Debian package python3-aiosmtpd" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -qq --no-install-recommends python3-aiosmtpd openssl >/dev/null 2>&1 \
    || { $sudo apt-get update -qq >/dev/null || true; $sudo apt-get install -y -qq --no-install-recommends python3-aiosmtpd openssl >/dev/null; }
  "$py" -c 'import aiosmtpd' || { echo "smtp.sh: aiosmtpd still not importable by $py after apt-get install" >&2; exit 1; }
}
case "${1:-install}" in
  install) install; "$py" -m aiosmtpd --version ;;
  *) echo "usage: $0 install" >&2; exit 2 ;;
esac
