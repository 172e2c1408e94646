# Sourced by start.sh and test.sh: make .venv with the project installed (and, with "test", its test tools).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }
if ! "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  echo "Python 3.11 or newer is needed (found: $("$PYTHON" --version 2>&1))." >&2; exit 1
fi
if ! "$PYTHON" -m venv --help >/dev/null 2>&1 || ! "$PYTHON" -c 'import ensurepip' 2>/dev/null; then
  echo "Installing python3-venv..."; as_root apt-get update -qq && as_root apt-get install -y -qq python3-venv
fi
if [ ! -x .venv/bin/python ]; then "$PYTHON" -m venv .venv; fi
STAMP=.venv/.installed-${1:-app}
if [ ! -f "$STAMP" ] || [ setup.cfg -nt "$STAMP" ]; then
  echo "Installing Python packages into .venv (first run takes a minute)..."
  .venv/bin/python -m pip install -q --upgrade pip
  if [ "${1:-app}" = test ]; then .venv/bin/python -m pip install -q -e '.[test]'; else .venv/bin/python -m pip install -q -e .; fi
  touch "$STAMP"
fi
