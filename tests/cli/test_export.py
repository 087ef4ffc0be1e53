"""`llm-registry export`: the registry a team already has, as files that plan to adoption only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.secrets import ENCRYPTION_KEY_ENV, key_fingerprint
from tests.cli.applyutil import models_by_name
from tests.cli.conftest import RunCli
from tests.dbutil import TEST_PASSPHRASE, insert_knowledge_base, insert_model
from tests.factories import CANARY_KEY

pytestmark = pytest.mark.db

ENV = {ENCRYPTION_KEY_ENV: TEST_PASSPHRASE, "NO_COLOR": "1"}


@pytest.fixture
def legacy_registry(engine: Any, fake_provider: Any) -> dict[str, str]:
    """An old-admin-page registry: hand-made rows with NULL parameters, a key, KBs; one managed row."""
    fake_provider.set_model("nomic-embed-text", dimensions=768)
    fake_provider.set_model("e5-large", dimensions=1024)
    fake_provider.set_model("gpt-4o-mini", api_key=CANARY_KEY)
    fake_provider.set_model("gliner")
    with engine.begin() as connection:
        ids = {
            "nomic-embed": insert_model(connection, name="nomic-embed", api_endpoint=fake_provider.url, is_default=True,
                                        description="Local embeddings: every KB"),
            "legacy-e5": insert_model(connection, name="legacy-e5", managed_by=None, model_id="e5-large", dimensions=1024,
                                      api_endpoint=fake_provider.url, normalize=None, distance_metric=None, batch_size=None,
                                      max_tokens=None),
            "gpt-4o-mini": insert_model(connection, name="gpt-4o-mini", managed_by=None, type="generation", provider="openai",
                                        model_id="gpt-4o-mini", api_endpoint=fake_provider.url, api_key=CANARY_KEY,
                                        temperature=None, top_p=None, max_output_tokens=None, is_default=True),
            "old.ner": insert_model(connection, name="old.ner", managed_by=None, type="ner", model_id="gliner",
                                    api_endpoint=fake_provider.url, is_active=False),
        }  # fmt: skip
        insert_knowledge_base(connection, "kb-legal", embedding_model_id=ids["legacy-e5"], generation_model_id=ids["gpt-4o-mini"])
        insert_knowledge_base(connection, "kb-docs", embedding_model_id=ids["nomic-embed"])
    return ids


def _plan_json(run_cli: RunCli, directory: Path, database_url: str, env: dict[str, str]) -> dict[str, Any]:
    result = run_cli("plan", str(directory), "--database-url", database_url, "--format", "json", env=env)
    assert result.exit_code in (0, 3), result.output
    return json.loads(result.stdout)


def test_export_then_plan_shows_only_adoption_then_apply_then_no_changes(
    run_cli: RunCli, tmp_path: Path, database_url: str, engine: Any, legacy_registry: dict[str, str]
) -> None:
    out = tmp_path / "registry.d"
    exported = run_cli("export", "--database-url", database_url, "--out", str(out), env=ENV)
    assert exported.exit_code == 0, exported.output
    assert sorted(p.name for p in out.iterdir()) == ["ollama.yaml", "openai.yaml"]
    assert "Set these environment variables to the models' keys before plan/apply:" in exported.stdout
    assert "  LLM_KEY_GPT_4O_MINI  model gpt-4o-mini" in exported.stdout.splitlines()
    assert exported.stderr == ""  # every row is valid in the format
    texts = {p.name: p.read_text() for p in out.iterdir()}
    for text in texts.values():
        assert text.startswith("# yaml-language-server: $schema=../schemas/registry.schema.json\nversion: 1\nmodels:\n")
        assert CANARY_KEY not in text and key_fingerprint(CANARY_KEY, TEST_PASSPHRASE) not in text
    assert CANARY_KEY not in exported.output
    assert texts["openai.yaml"] == (
        "# yaml-language-server: $schema=../schemas/registry.schema.json\n"
        "version: 1\n"
        "models:\n"
        "  # made by hand: the next apply adopts it (marks it managed)\n"
        "  - name: gpt-4o-mini\n"
        "    type: generation\n"
        "    provider: openai\n"
        "    model_id: gpt-4o-mini\n"
        f"    api_endpoint: {_url(texts['openai.yaml'])}\n"
        "    api_key: ${env:LLM_KEY_GPT_4O_MINI}\n"
        "    default: true\n"
        "    parameters:\n"
        "      context_window: 8192\n"
        "      temperature: null\n"
        "      top_p: null\n"
    )
    assert "      normalize: null\n      distance_metric: null\n      batch_size: null\n" in texts["ollama.yaml"]
    assert "    active: false\n" in texts["ollama.yaml"]

    env = {**ENV, "LLM_KEY_GPT_4O_MINI": CANARY_KEY}
    plan = _plan_json(run_cli, out, database_url, env)
    assert plan["summary"]["is_blocked"] is False and plan["summary"]["blocked"] == 0
    assert {a["name"] for a in plan["actions"]} == {"legacy-e5", "gpt-4o-mini", "old.ner"}
    for action in plan["actions"]:
        assert action["action"] == "update" and action["adopt"] is True
        assert [change["field"] for change in action["changes"]] == ["managed_by"]
    assert plan["summary"]["unchanged"] == 1  # the managed row

    applied = run_cli("apply", str(out), "--database-url", database_url, "--auto-approve", env=env)
    assert applied.exit_code == 0, applied.output
    rows = models_by_name(engine)
    assert rows["legacy-e5"]["normalize"] is None and rows["legacy-e5"]["distance_metric"] is None
    assert rows["legacy-e5"]["managed_by"] == "llm-registry" and str(rows["legacy-e5"]["id"]) == legacy_registry["legacy-e5"]

    again = run_cli("plan", str(out), "--database-url", database_url, "--detailed-exitcode", env=env)
    assert again.exit_code == 0, again.output


def _url(text: str) -> str:
    """The api_endpoint written in an exported file (the fake provider's port varies)."""
    return next(line.split(": ", 1)[1] for line in text.splitlines() if "api_endpoint:" in line)


def test_split_none_and_type_and_explicit(run_cli: RunCli, tmp_path: Path, database_url: str, legacy_registry: dict[str, str]) -> None:
    none = run_cli("export", "--database-url", database_url, "--out", str(tmp_path / "one"), "--split", "none", env=ENV)
    assert none.exit_code == 0, none.output
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["models.yaml"]
    by_type = run_cli("export", "--database-url", database_url, "--out", str(tmp_path / "t"), "--split", "type", "--explicit", env=ENV)
    assert by_type.exit_code == 0, by_type.output
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["embedding.yaml", "generation.yaml", "ner.yaml"]
    embedding = (tmp_path / "t" / "embedding.yaml").read_text()
    assert "    active: true\n    default: true\n" in embedding and "      max_tokens: 8192\n" in embedding


def test_refuses_to_overwrite_without_force(run_cli: RunCli, tmp_path: Path, database_url: str, legacy_registry: dict[str, str]) -> None:
    out = tmp_path / "registry.d"
    out.mkdir()
    (out / "ollama.yaml").write_text("mine\n")
    refused = run_cli("export", "--database-url", database_url, "--out", str(out), env=ENV)
    assert refused.exit_code == 1
    assert refused.stderr == f"error: {out} already has ollama.yaml; use --force to overwrite (nothing was written)\n"
    assert [p.name for p in out.iterdir()] == ["ollama.yaml"] and (out / "ollama.yaml").read_text() == "mine\n"
    forced = run_cli("export", "--database-url", database_url, "--out", str(out), "--force", env=ENV)
    assert forced.exit_code == 0, forced.output
    assert (out / "ollama.yaml").read_text().startswith("# yaml-language-server:")


def test_rows_the_format_cannot_hold_are_reported(run_cli: RunCli, tmp_path: Path, database_url: str, engine: Any) -> None:
    with engine.begin() as connection:
        insert_model(connection, name="Old Model", managed_by=None)
        insert_model(connection, name="odd-embed", managed_by=None, temperature=0.5)
    out = tmp_path / "r"
    result = run_cli("export", "--database-url", database_url, "--out", str(out), env=ENV)
    assert result.exit_code == 1, result.output  # written, but not a registry plan accepts yet
    assert (out / "ollama.yaml").is_file()
    assert (
        "warning: model 'odd-embed': column temperature holds 0.5, but embedding models take no temperature; "
        "the file cannot say it, so apply would clear it" in result.stderr
    )
    assert "The written models break rules of the format; fix these before plan:" in result.stderr
    assert f"{out}/ollama.yaml:5:11: error: name: 'Old Model' is not a valid model name" in result.stderr
    assert f"{out}/ollama.yaml:5:5: warning: no default embedding model" in result.stderr  # validate's warnings too
    assert result.stderr.splitlines()[-1] == f"{out}: invalid, 1 error in 1 file, 1 warning"


HOSTILE_NAME = "hand\x1b]0;pwn\x07-\n::error::nameinject\u202e"


def test_hand_made_text_and_endpoint_credentials_never_reach_the_output_raw(
    run_cli: RunCli, tmp_path: Path, database_url: str, engine: Any
) -> None:
    with engine.begin() as connection:
        insert_model(connection, name=HOSTILE_NAME, type="generation", provider="openai", model_id="gpt-4o-mini",
                     api_endpoint="http://user:hunter2pw@gw.example/v1?accessToken=tok3n", api_key=CANARY_KEY,
                     managed_by=None, description="evil\u202eelif")  # fmt: skip
    files = run_cli("export", "--database-url", database_url, "--out", str(tmp_path / "r"), env=ENV)
    as_litellm = run_cli("export", "--format", "litellm", "--database-url", database_url, env=ENV)
    for result in (files, as_litellm):
        output = result.stdout + result.stderr
        assert "\x1b" not in output and "\x07" not in output and "\u202e" not in output
        assert not any(line.startswith("::") for line in output.splitlines())  # no workflow command
        assert "hunter2pw" not in output and "tok3n" not in output and CANARY_KEY not in output
    assert "warning: hand\\x1b]0;pwn\\x07-\\n::error::nameinject\\u202e: api_endpoint holds credentials" in as_litellm.stderr
    assert "    api_base: http://***@gw.example/v1\n" in as_litellm.stdout  # no query in api_base anyway
