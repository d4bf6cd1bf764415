#!/usr/bin/env bash
# Install the system services the test suite starts itself (PostgreSQL server binaries)
# and the browser the web UI's tests drive (Debian's chromium; never `playwright install`).
# Idempotent; the fixtures in tests/conftest.py start and stop the actual servers.
set -euo pipefail
if [ ! -x /usr/lib/postgresql/15/bin/initdb ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "installing PostgreSQL server (apt)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "installing Chromium (apt) for the web UI tests" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
