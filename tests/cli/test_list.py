"""`llm-registry list`: the admin's view of the registered models. Never a key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reconciler.secrets import key_fingerprint
from tests.cli.conftest import RunCli
from tests.dbutil import TEST_PASSPHRASE, insert_knowledge_base, insert_model
from tests.factories import CANARY_KEY

pytestmark = pytest.mark.db


@pytest.fixture
def registry(engine: Any) -> dict[str, str]:
    """Three models, one hand-made, one default, one with a key, two KBs."""
    with engine.begin() as connection:
        ids = {
            "nomic-embed": insert_model(connection, name="nomic-embed", is_default=True),
            "gpt-4o-mini": insert_model(
                connection, name="gpt-4o-mini", type="generation", provider="openai", model_id="gpt-4o-mini",
                api_endpoint=None, api_key=CANARY_KEY,
            ),
            "old-embed": insert_model(connection, name="old-embed", managed_by=None, is_active=False, model_id="e5"),
        }  # fmt: skip
        insert_knowledge_base(connection, "kb-1", embedding_model_id=ids["nomic-embed"], generation_model_id=ids["gpt-4o-mini"])
        insert_knowledge_base(connection, "kb-2", embedding_model_id=ids["nomic-embed"])
    return ids


def test_the_table(run_cli: RunCli, database_url: str, registry: dict[str, str]) -> None:
    result = run_cli("list", "--database-url", database_url)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "PROVIDER", "MODEL", "ID", "STATUS", "DEFAULT", "MANAGED", "KBS"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert list(rows) == ["gpt-4o-mini", "nomic-embed", "old-embed"]
    assert rows["nomic-embed"].split() == ["nomic-embed", "embedding", "ollama", "nomic-embed-text", "Active", "yes", "yes", "2"]
    assert rows["gpt-4o-mini"].split() == ["gpt-4o-mini", "generation", "openai", "gpt-4o-mini", "Active", "yes", "1"]
    assert rows["old-embed"].split() == ["old-embed", "embedding", "ollama", "e5", "Inactive", "no", "(by", "hand)", "0"]


def test_never_a_key_nor_its_fingerprint(run_cli: RunCli, database_url: str, registry: dict[str, str]) -> None:
    for output_format in ("table", "json"):
        result = run_cli("list", "--database-url", database_url, "--format", output_format)
        assert CANARY_KEY not in result.output
        assert key_fingerprint(CANARY_KEY, TEST_PASSPHRASE) not in result.output


def test_json(run_cli: RunCli, database_url: str, registry: dict[str, str]) -> None:
    result = run_cli("list", "--database-url", database_url, "--format", "json")
    assert result.exit_code == 0, result.output
    models = {model["name"]: model for model in json.loads(result.stdout)["models"]}
    assert models["nomic-embed"] == {
        "name": "nomic-embed",
        "id": registry["nomic-embed"],
        "type": "embedding",
        "provider": "ollama",
        "model_id": "nomic-embed-text",
        "api_endpoint": "http://localhost:11434",
        "api_version": None,
        "api_key_set": False,
        "api_key_variable": None,
        "active": True,
        "is_default": True,
        "description": "",
        "parameters": {"dimensions": 768, "max_tokens": 8192, "normalize": True, "distance_metric": "cosine", "batch_size": 32},
        "managed": True,
        "managed_by": "llm-registry",
        "knowledge_bases": ["kb-1", "kb-2"],
        "kb_count": 2,
    }
    assert models["old-embed"]["managed"] is False and models["old-embed"]["managed_by"] is None
    gpt = models["gpt-4o-mini"]
    assert (gpt["api_key_set"], gpt["api_key_variable"], gpt["api_endpoint"]) == (True, "LLM_KEY_GPT_4O_MINI", None)
    assert gpt["parameters"] == {"context_window": 8192, "max_output_tokens": 1024, "temperature": 0.7, "top_p": 1.0, "top_k": None}


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (("--type", "embedding"), ["nomic-embed", "old-embed"]),
        (("--type", "generation"), ["gpt-4o-mini"]),
        (("--type", "ner"), []),
        (("--provider", "openai"), ["gpt-4o-mini"]),
        (("--type", "embedding", "--provider", "openai"), []),
        (("--status", "active"), ["gpt-4o-mini", "nomic-embed"]),
        (("--status", "inactive"), ["old-embed"]),
        (("--status", "inactive", "--type", "generation"), []),
    ],
)
def test_filters(run_cli: RunCli, database_url: str, registry: dict[str, str], args: tuple[str, ...], names: list[str]) -> None:
    result = run_cli("list", "--database-url", database_url, "--format", "json", *args)
    assert result.exit_code == 0, result.output
    assert [model["name"] for model in json.loads(result.stdout)["models"]] == names


def test_an_unknown_filter_value_is_refused(run_cli: RunCli, database_url: str) -> None:
    result = run_cli("list", "--database-url", database_url, "--type", "rerank")
    assert result.exit_code == 1
    assert "rerank" in result.stderr


def test_an_empty_registry(run_cli: RunCli, database_url: str) -> None:
    result = run_cli("list", "--database-url", database_url)
    assert (result.exit_code, result.stdout.strip()) == (0, "No models registered.")
    assert run_cli("list", "--database-url", database_url, "--type", "ner").stdout.strip() == "No models match."
    assert json.loads(run_cli("list", "--database-url", database_url, "--format", "json").stdout) == {"models": []}
