#!/usr/bin/env bash
# Run the test suite on a fresh machine: make a virtualenv, install the package with
# its dev extra, run pytest. Extra arguments go to pytest (e.g. `-k plan -x`).
#
# Database: LLM_REGISTRY_TEST_DATABASE_URL if set, else the server on
# 127.0.0.1:5432, else a throwaway cluster from the machine's PostgreSQL binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/venv.sh
source scripts/venv.sh
install_into_venv '.[dev]'
# The browser tests' Chromium (Debian's packages); quick when present, never fatal.
bash scripts/browser.sh
exec "$PY" -m pytest "$@"
