#!/usr/bin/env bash
# Install the package with the LOWEST version of every dependency pyproject.toml allows
# (constraints/minimum.txt) into a virtualenv of its own, and run the tests that exercise
# those dependencies: the connection tests through LiteLLM, the database layer
# (SQLAlchemy, psycopg, Alembic), the CLI (Click) and the format (pydantic, PyYAML).
# Extra arguments go to pytest (e.g. `tests` for the whole suite, about 6 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/venv.sh
source scripts/venv.sh
LLM_REGISTRY_VENV="${LLM_REGISTRY_MIN_VENV:-.venv-min}" PIP_CONSTRAINT=constraints/minimum.txt install_into_venv '.[dev]'
"$PY" -m pip check >/dev/null
"$PY" -m pip freeze --exclude-editable | grep -iE '^(click|pyyaml|pydantic|sqlalchemy|psycopg|alembic|litellm|pytest|hypothesis)==' | tr '\n' ' '
echo
if [ "$#" -eq 0 ]; then
    set -- tests/unit tests/integration/test_connection.py tests/integration/test_connection_executor.py tests/integration/test_connection_imports.py \
        tests/integration/test_schema.py \
        tests/cli/test_apply.py tests/cli/test_plan_cases.py tests/cli/test_test_command.py tests/cli/test_validate.py \
        tests/cli/test_target.py
fi
exec "$PY" -m pytest -q -p no:cacheprovider "$@"
