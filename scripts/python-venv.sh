#!/usr/bin/env bash
# Creates the project's git-ignored virtualenv (.venv) if it is missing and installs the pinned
# requirement files given as arguments (default: python/requirements-test.txt) into it.
# Idempotent and quiet when everything is already installed: a stamp per requirement file records
# the hash of what was last installed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
[ $# -gt 0 ] || set -- python/requirements-test.txt
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
fi
for req in "$@"; do
  stamp="$VENV/.installed-$(basename "$req")"
  sum=$(sha256sum "$req" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
    "$VENV/bin/python" -m pip install -q -r "$req"
    echo "$sum" > "$stamp"
  fi
done
