#!/usr/bin/env bash
# Start the WMS on this machine: web server and worker, SQLite and an embedded Redis in ./instance,
# a first admin and demo data. Ctrl-C stops everything.
source "$(dirname "$0")/setup-env.sh" app
export WMS_DEMO=${WMS_DEMO:-1}
export WMS_ALLOW_PRIVATE_REMOTES=${WMS_ALLOW_PRIVATE_REMOTES:-$WMS_DEMO}
PORT=${PORT:-5000}
export WMS_PUBLIC_URL=${WMS_PUBLIC_URL:-http://127.0.0.1:$PORT}
.venv/bin/flask --app wsgi db upgrade
.venv/bin/flask --app wsgi wms seed-demo
exec .venv/bin/flask --app wsgi wms run --host 127.0.0.1 --port "$PORT"
