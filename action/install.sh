#!/usr/bin/env bash
# Step 1 of the llm-registry action: install the tool at the action's own commit.
#
# GITHUB_ACTION_PATH is the checkout of this repository at the commit the workflow
# pinned (`uses: owner/llm-registry@<commit>`), so what runs is exactly the code that
# was reviewed; nothing is fetched by name from a package index. The dependencies come
# from PyPI within the bounds in pyproject.toml.
#
# The virtualenv lives in RUNNER_TEMP, which the runner empties before every job: one
# already there was made by an earlier use of the action in this same job, and is reused.
set -euo pipefail

venv="${RUNNER_TEMP:?RUNNER_TEMP is not set (not in GitHub Actions?)}/llm-registry-venv"
if [ ! -x "$venv/bin/llm-registry" ]; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${GITHUB_ACTION_PATH:?}"
fi
echo "$venv/bin" >>"${GITHUB_PATH:?}"
"$venv/bin/llm-registry" --version
