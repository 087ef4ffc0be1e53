#!/usr/bin/env bash
# Regenerate action/requirements.lock: every package the GitHub Action installs (the
# dependencies in pyproject.toml and the build backend), each pinned with the hashes of
# its files, for every Python and platform the package supports (`uv pip compile
# --universal`). Run it after changing dependencies; tests/unit/test_packaging.py checks
# that the lock still matches pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${TMPDIR:-/tmp}/llm-registry-lock-tools"
if [ ! -x "$tools/bin/uv" ]; then
    python3 -m pip install --quiet --disable-pip-version-check --target "$tools" "uv==0.13.9"
fi
PYTHONPATH="$tools" "$tools/bin/uv" pip compile pyproject.toml action/build-requirements.in \
    --universal --python-version 3.11 --generate-hashes \
    --custom-compile-command "bash scripts/lock.sh" -o action/requirements.lock
