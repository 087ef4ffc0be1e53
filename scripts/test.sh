#!/usr/bin/env bash
# Run the test suite on a fresh machine: make a virtualenv, install the package with
# its dev extra, run pytest. Extra arguments go to pytest (e.g. `-k plan -x`).
#
# Database: LLM_REGISTRY_TEST_DATABASE_URL if set, else the server on
# 127.0.0.1:5432, else a throwaway cluster from the machine's PostgreSQL binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${LLM_REGISTRY_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
log="$(mktemp)"
if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]' >"$log" 2>&1; then
    cat "$log" >&2
    echo "error: installing llm-registry and its dev dependencies failed (see above)" >&2
    exit 1
fi
rm -f "$log"
exec "$VENV/bin/python" -m pytest "$@"
