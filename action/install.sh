#!/usr/bin/env bash
# Step 1 of the llm-registry action: install the tool at the action's own commit.
#
# GITHUB_ACTION_PATH is the checkout of this repository at the commit the workflow
# pinned (`uses: owner/llm-registry@<commit>`), so what runs is exactly the code that
# was reviewed. Its dependencies and build backend come from PyPI exactly as listed in
# action/requirements.lock, each file checked against its hash (--require-hashes): a
# job that holds the writer's URL, the passphrase and the provider keys runs nothing
# that was not pinned at that commit.
#
# The virtualenv lives in RUNNER_TEMP, which the runner empties before every job: one
# already there was made by an earlier use of the action in this same job, from the same
# checkout (its path names the commit), and is reused.
set -euo pipefail

checkout_id="$(printf '%s' "${GITHUB_ACTION_PATH:?}" | sha256sum | cut -c1-16)"
venv="${RUNNER_TEMP:?RUNNER_TEMP is not set (not in GitHub Actions?)}/llm-registry-venv-$checkout_id"
if [ ! -x "$venv/bin/llm-registry" ]; then
    python3 -m venv "$venv"
    pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
    "${pip[@]}" --require-hashes --no-deps -r "${GITHUB_ACTION_PATH:?}/action/requirements.lock"
    "${pip[@]}" --no-deps --no-build-isolation "$GITHUB_ACTION_PATH"
    "$venv/bin/python" -m pip check --disable-pip-version-check >/dev/null
fi
echo "$venv/bin" >>"${GITHUB_PATH:?}"
"$venv/bin/llm-registry" --version
