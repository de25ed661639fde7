#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed at /usr/bin/chromium (the browser
# the OPFS tests drive through puppeteer-core; no browser is downloaded).
# Prints the path and version. Safe to run when it is already there.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
if [ ! -x "$CHROMIUM" ]; then
  echo "== installing chromium from Debian (no recommends)"
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: $CHROMIUM is missing and installing it needs root (apt-get)" >&2
    exit 1
  fi
  # Wait for another apt/dpkg run (up to 10 min) instead of failing at once.
  apt_get() { apt-get -o DPkg::Lock::Timeout=600 "$@"; }
  apt_get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt_get install -y -qq --no-install-recommends chromium >/dev/null
fi
echo "chromium: $CHROMIUM ($("$CHROMIUM" --version 2>/dev/null | head -n 1))"
