#!/usr/bin/env bash
# Installs the services the integration tests start themselves, from Debian's packages, when they are missing:
#   - redis-server (tests/support/redis.ts starts a throwaway one on 127.0.0.1 per test file)
# Non-interactive; needs root (or sudo) only when something is missing. Safe to run again.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)

if [ "${#missing[@]}" -eq 0 ]; then
  echo "== test services: all present (redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'))"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "error: ${missing[*]} missing and not root (no sudo): install with: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

echo "== installing ${missing[*]} (for the bus adapter tests)"
$SUDO apt-get update -q
# The tests never use the system service the package sets up (they start their own redis-server on a free port).
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
