#!/usr/bin/env bash
# Install the system services the test suite starts itself (PostgreSQL server binaries).
# Idempotent; the fixtures in tests/conftest.py start and stop the actual servers.
set -euo pipefail
if [ ! -x /usr/lib/postgresql/15/bin/initdb ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "installing PostgreSQL server (apt)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
