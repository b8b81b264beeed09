#!/usr/bin/env bash
# The browser tests drive Debian's Chromium through Playwright (executable_path), because
# `playwright install` cannot download browsers on machines without internet access.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [[ -n "${SATSHARE_CHROMIUM:-}" ]]; then
  exit 0
fi
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser tests..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq chromium >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null
  }
  exit 0
fi
echo "Chromium not found: install it (apt-get install chromium) or set SATSHARE_CHROMIUM=/path/to/chrome;" >&2
echo "the browser tests will fail without it." >&2
