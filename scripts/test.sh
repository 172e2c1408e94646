#!/usr/bin/env bash
# Run the whole test suite: unit, web, integration (real Redis, sandboxes over HTTP) and browser tests.
# Extra arguments go to pytest. WMS_TEST_DATABASE_URL=postgresql://... runs it on PostgreSQL.
source "$(dirname "$0")/setup-env.sh" test
if ! command -v chromium >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser tests..."
  as_root apt-get update -qq && as_root apt-get install -y -qq chromium \
    || { echo "Could not install chromium: the browser tests need it (apt-get install chromium)." >&2; exit 1; }
fi
exec .venv/bin/python -m pytest "$@"
