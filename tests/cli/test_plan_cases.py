"""Golden-file cases for `llm-registry plan`, against real PostgreSQL.

Each directory under tests/cases/ is one case:

    registry/        the registry directory the plan reads
    state.yaml       the starting database: `models` (rows; `api_key` is stored encrypted
                     with the test passphrase) and `knowledge_bases` (names of the models
                     they use); optional
    case.yaml        optional: `args` (extra plan arguments), `env` (variables),
                     `exit_code` (default 0), `stderr` (lines stderr must contain)
    expected.txt     the exact text plan on stdout (NO_COLOR); its target line names the
                     database `<test database>` and the revision TEST_REVISION

Regenerate the expected files after an intended change with
`UPDATE_GOLDEN=1 bash scripts/test.sh tests/cli/test_plan_cases.py`, then read the diff.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.target import describe_url
from tests.dbutil import TEST_PASSPHRASE, insert_knowledge_base, insert_model

CASES_DIR = Path(__file__).resolve().parent.parent / "cases"
# The source revision the cases plan at (as CI gives it, GITHUB_SHA), so that the golden files hold still.
TEST_REVISION = "0123456789abcdef0123456789abcdef01234567"
CASES = sorted(p.name for p in CASES_DIR.iterdir() if (p / "registry").is_dir())


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) if path.exists() else {}


def _seed(engine: Any, state: dict[str, Any]) -> None:
    ids: dict[str, str] = {}
    with engine.begin() as connection:
        for row in state.get("models", []):
            ids[row["name"]] = insert_model(connection, **row)
        for kb in state.get("knowledge_bases", []):
            insert_knowledge_base(
                connection,
                kb["name"],
                embedding_model_id=ids.get(kb.get("embedding")),
                generation_model_id=ids.get(kb.get("generation")),
            )


@pytest.mark.parametrize("case", CASES)
def test_plan_case(case: str, engine: Any, database_url: str, run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = CASES_DIR / case
    settings = _load(directory / "case.yaml")
    _seed(engine, _load(directory / "state.yaml"))
    for name in ("LLM_REGISTRY_ENCRYPTION_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "COHERE_API_KEY", "AZURE_OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    env = {"NO_COLOR": "1", "LLM_REGISTRY_ENCRYPTION_KEY": TEST_PASSPHRASE, "GITHUB_SHA": TEST_REVISION, **settings.get("env", {})}
    env = {key: value for key, value in env.items() if value is not None}

    result = run_cli("plan", "registry", "--database-url", database_url, *settings.get("args", []), env=env, cwd=directory)
    stdout = result.stdout.replace(describe_url(database_url), "<test database>", 1)

    expected_file = directory / "expected.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        expected_file.write_text(stdout)
    assert stdout == expected_file.read_text(), result.stderr
    assert result.exit_code == settings.get("exit_code", 0), result.output
    for line in settings.get("stderr", []):
        assert line in result.stderr.splitlines(), result.stderr
