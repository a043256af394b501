#!/usr/bin/env bash
# Installs the services the integration tests start themselves, from Debian's packages, when they are missing:
#   - redis-server (tests/support/redis.ts starts a throwaway one on 127.0.0.1 per test file)
#   - chromium (tests/support/chromium.ts: the inspector's browser test drives it headless with playwright-core)
# Usage: setup-test-services.sh [package ...]   (no arguments: every service above)
# `npm test` runs it by itself (tests/support/global-setup.ts) for what the selected tests need and the machine
# lacks. Non-interactive; needs root (or sudo) only when something is missing. Safe to run again.
set -euo pipefail

known=(redis-server chromium)
wanted=("$@")
[ "${#wanted[@]}" -gt 0 ] || wanted=("${known[@]}")

present() {
  case "$1" in
    redis-server) command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] ;;
    chromium) command -v chromium >/dev/null 2>&1 || [ -x /usr/lib/chromium/chromium ] ;;
    *) echo "error: unknown test service '$1' (known: ${known[*]})" >&2; exit 2 ;;
  esac
}

missing=()
for name in "${wanted[@]}"; do present "$name" || missing+=("$name"); done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "== test services: all present (${wanted[*]})"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "error: ${missing[*]} missing and not root (no sudo): install with: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

echo "== installing ${missing[*]} (for the integration tests)"
$SUDO apt-get update -q
# The tests never use the system service a package sets up (they start their own servers on free ports).
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
