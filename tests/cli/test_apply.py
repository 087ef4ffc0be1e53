"""`llm-registry apply`: the story's acceptance criteria as the command delivers them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.cli.applyutil import APPLY_ENV, audit_events, models_by_name, snapshot, story_models, write_story_registry
from tests.dbutil import insert_knowledge_base
from tests.factories import CANARY_KEY, embedding_model, write_registry_file


def apply(run_cli: Any, directory: Path, url: str, *args: str, env: dict[str, str] | None = None) -> Any:
    return run_cli("apply", str(directory), "--database-url", url, "--auto-approve", "--actor", "alice", "--revision", "abc123", *args, env={**APPLY_ENV, **(env or {})})


def test_apply_creates_both_story_models_with_every_parameter(run_cli: Any, registry_dir: Path, database_url: str, engine: Any, fake_provider: Any) -> None:
    result = apply(run_cli, registry_dir, database_url)
    assert result.exit_code == 0, result.output
    assert "Apply complete: 2 created, 0 updated, 0 deleted." in result.stdout
    rows = models_by_name(engine)
    embedding, generation = rows["nomic-embed"], rows["gpt-4o-mini"]
    assert (embedding["model_type"], embedding["provider"], embedding["model_id"], embedding["api_endpoint"]) == ("embedding", "ollama", "nomic-embed-text", fake_provider.url)
    assert (embedding["dimensions"], embedding["max_tokens"], embedding["normalize"], embedding["distance_metric"], embedding["batch_size"]) == (768, 8192, True, "cosine", 32)
    assert (generation["context_window"], generation["max_output_tokens"], generation["temperature"], generation["top_p"], generation["top_k"]) == (128000, 4096, 0.7, 1.0, 40)
    assert embedding["is_active"] and embedding["is_default"] and embedding["managed_by"] == "llm-registry"
    assert embedding["api_key"] is None and generation["api_key"] is not None
    # One request per model: the connection tests ran before the writes.
    assert fake_provider.request_count("nomic-embed-text") == 1 and fake_provider.request_count("gpt-4o-mini") == 1


def test_after_apply_plan_reports_no_changes(run_cli: Any, registry_dir: Path, database_url: str) -> None:
    assert apply(run_cli, registry_dir, database_url).exit_code == 0
    plan = run_cli("plan", str(registry_dir), "--database-url", database_url, "--detailed-exitcode", env=APPLY_ENV)
    assert plan.exit_code == 0, plan.output
    assert plan.stdout.strip().splitlines()[-1] == "No changes. The registry in the database matches the definitions."


def test_audit_events_for_creation_carry_run_actor_revision_and_full_configuration(run_cli: Any, registry_dir: Path, database_url: str, engine: Any) -> None:
    apply(run_cli, registry_dir, database_url)
    events = audit_events(engine)
    assert sorted((e["event_type"], e["model_name"]) for e in events) == [
        ("MODEL_CONNECTION_TESTED", "gpt-4o-mini"), ("MODEL_CONNECTION_TESTED", "nomic-embed"),
        ("MODEL_CREATED", "gpt-4o-mini"), ("MODEL_CREATED", "nomic-embed"),
    ]
    assert {(e["actor"], e["source_revision"]) for e in events} == {("alice", "abc123")}
    assert len({e["run_id"] for e in events}) == 1
    created = next(e for e in events if e["event_type"] == "MODEL_CREATED" and e["model_name"] == "gpt-4o-mini")
    config = created["details"]["configuration"]
    assert config["api_key"] == "set" and config["parameters.temperature"] == 0.7 and config["model_id"] == "gpt-4o-mini"
    assert created["details"]["connection_test"] == "ok"
    assert str(created["model_id"]) == str(models_by_name(engine)["gpt-4o-mini"]["id"])
    # every field of the model, unset ones as null; of the parameters only those of its type
    embedding = next(e for e in events if e["event_type"] == "MODEL_CREATED" and e["model_name"] == "nomic-embed")["details"]["configuration"]
    assert embedding["api_version"] is None and embedding["api_key"] is None
    assert {name for name in embedding if name.startswith("parameters.")} == {
        "parameters.dimensions", "parameters.max_tokens", "parameters.normalize", "parameters.distance_metric", "parameters.batch_size",
    }
    tested = next(e for e in events if e["event_type"] == "MODEL_CONNECTION_TESTED" and e["model_name"] == "nomic-embed")
    assert tested["details"]["outcome"] == "success" and tested["details"]["status"] == "ok"
    assert isinstance(tested["details"]["latency_ms"], int)


def test_update_parameters_records_changed_fields_only(run_cli: Any, tmp_path: Path, registry_dir: Path, database_url: str, engine: Any, fake_provider: Any) -> None:
    apply(run_cli, registry_dir, database_url)
    before_id = models_by_name(engine)["gpt-4o-mini"]["id"]
    write_story_registry(registry_dir, fake_provider, **{"gpt-4o-mini": {"parameters": {"context_window": 128000, "temperature": 0.2, "top_p": 0.9, "top_k": 40, "max_output_tokens": 4096}}})
    result = apply(run_cli, registry_dir, database_url)
    assert result.exit_code == 0, result.output
    assert "~ parameters.temperature = 0.7 -> 0.2" in result.stdout
    row = models_by_name(engine)["gpt-4o-mini"]
    assert (row["id"], row["temperature"], row["top_p"]) == (before_id, 0.2, 0.9)
    updated = [e for e in audit_events(engine) if e["event_type"] == "MODEL_UPDATED"]
    assert len(updated) == 1
    assert updated[0]["details"]["changes"] == {
        "parameters.temperature": {"before": 0.7, "after": 0.2},
        "parameters.top_p": {"before": 1.0, "after": 0.9},
    }
    assert set(updated[0]["details"]) == {"changes", "connection_test"}  # neither a rename nor an adoption


def test_api_key_never_in_output_and_encrypted_at_rest(run_cli: Any, registry_dir: Path, database_url: str, engine: Any) -> None:
    outputs = [apply(run_cli, registry_dir, database_url)]
    outputs.append(run_cli("plan", str(registry_dir), "--database-url", database_url, "--format", "json", env=APPLY_ENV))
    outputs.append(run_cli("list", "--database-url", database_url, "--format", "json", env=APPLY_ENV))
    outputs.append(run_cli("audit", "--database-url", database_url, "--format", "json", env=APPLY_ENV))
    for result in outputs:
        assert result.exit_code == 0, result.output
        assert CANARY_KEY not in result.output
    with engine.connect() as connection:
        dump = connection.execute(text("SELECT string_agg(t::text, '|') FROM llm_models t")).scalar()
        audit = connection.execute(text("SELECT string_agg(t::text, '|') FROM registry_audit_events t")).scalar()
        stored = connection.execute(text("SELECT api_key FROM llm_models WHERE name = 'gpt-4o-mini'")).scalar()
    assert CANARY_KEY not in dump and CANARY_KEY not in audit
    assert CANARY_KEY.encode() not in bytes(stored)


def test_setting_a_new_default_clears_the_previous_one(run_cli: Any, tmp_path: Path, database_url: str, engine: Any, fake_provider: Any) -> None:
    directory = tmp_path / "registry.d"
    models = story_models(fake_provider)
    fake_provider.set_model("mxbai-embed-large", dimensions=1024)
    second = {**models[0], "name": "mxbai", "model_id": "mxbai-embed-large", "default": False, "parameters": {"dimensions": 1024}}
    write_registry_file(directory, [*models, second])
    assert apply(run_cli, directory, database_url).exit_code == 0
    write_registry_file(directory, [{**models[0], "default": False}, models[1], {**second, "default": True}])
    result = apply(run_cli, directory, database_url)
    assert result.exit_code == 0, result.output
    rows = models_by_name(engine)
    assert (rows["nomic-embed"]["is_default"], rows["mxbai"]["is_default"]) == (False, True)


def test_an_inactive_model_is_refused_as_default(run_cli: Any, tmp_path: Path, database_url: str, engine: Any, fake_provider: Any) -> None:
    directory = write_story_registry(tmp_path / "registry.d", fake_provider, **{"nomic-embed": {"active": False}})
    result = apply(run_cli, directory, database_url)
    assert result.exit_code == 1
    assert "a default model must be active" in result.stderr
    assert models_by_name(engine) == {}


def test_delete_blocked_while_a_kb_uses_the_model_naming_the_kbs(run_cli: Any, registry_dir: Path, database_url: str, engine: Any, fake_provider: Any) -> None:
    apply(run_cli, registry_dir, database_url)
    with engine.begin() as connection:
        model_id = str(models_by_name(engine)["gpt-4o-mini"]["id"])
        insert_knowledge_base(connection, "support-kb", generation_model_id=model_id)
        insert_knowledge_base(connection, "legal-kb", generation_model_id=model_id)
    before = snapshot(engine)
    write_registry_file(registry_dir, story_models(fake_provider)[:1])
    result = apply(run_cli, registry_dir, database_url)
    assert result.exit_code == 3, result.output
    assert "used by 2 knowledge bases: legal-kb, support-kb" in result.stdout
    assert snapshot(engine) == before


def test_delete_of_an_unused_model_is_audited_with_its_kb_impact(run_cli: Any, registry_dir: Path, database_url: str, engine: Any, fake_provider: Any) -> None:
    apply(run_cli, registry_dir, database_url)
    deleted_id = str(models_by_name(engine)["gpt-4o-mini"]["id"])
    write_registry_file(registry_dir, story_models(fake_provider)[:1])
    result = apply(run_cli, registry_dir, database_url)
    assert result.exit_code == 0, result.output
    assert "gpt-4o-mini" not in models_by_name(engine)
    (event,) = [e for e in audit_events(engine) if e["event_type"] == "MODEL_DELETED"]
    assert (event["model_name"], str(event["model_id"])) == ("gpt-4o-mini", deleted_id)
    assert event["details"]["knowledge_bases"] == [] and event["details"]["kb_count"] == 0
    assert event["details"]["configuration"]["model_id"] == "gpt-4o-mini"


def test_the_audit_trail_of_one_apply_lists_its_deletes_then_updates_then_creates(run_cli: Any, registry_dir: Path, database_url: str, engine: Any, fake_provider: Any) -> None:
    apply(run_cli, registry_dir, database_url)
    _, generation = story_models(fake_provider)
    # names chosen so that name order would put the create first and the update before the delete
    changed = {**generation, "description": "changed"}
    write_registry_file(registry_dir, [changed, embedding_model(name="all-minilm", default=True, api_endpoint=fake_provider.url)])
    result = apply(run_cli, registry_dir, database_url, "--skip-connection-tests")
    assert result.exit_code == 0, result.output
    events = audit_events(engine)
    second_run = [e for e in events if e["run_id"] != events[0]["run_id"]]
    assert [(e["event_type"], e["model_name"]) for e in second_run] == [
        ("MODEL_DELETED", "nomic-embed"), ("MODEL_UPDATED", "gpt-4o-mini"), ("MODEL_CREATED", "all-minilm"),
    ]


def test_list_filters_by_type_and_provider(run_cli: Any, registry_dir: Path, database_url: str) -> None:
    apply(run_cli, registry_dir, database_url)
    by_type = run_cli("list", "--database-url", database_url, "--type", "embedding")
    by_provider = run_cli("list", "--database-url", database_url, "--provider", "openai")
    assert "nomic-embed" in by_type.stdout and "gpt-4o-mini" not in by_type.stdout
    assert "gpt-4o-mini" in by_provider.stdout and "nomic-embed" not in by_provider.stdout


def test_without_a_terminal_apply_needs_auto_approve(run_cli: Any, registry_dir: Path, database_url: str, engine: Any) -> None:
    result = run_cli("apply", str(registry_dir), "--database-url", database_url, env=APPLY_ENV)
    assert result.exit_code == 1
    assert "pass --auto-approve" in result.stderr
    assert models_by_name(engine) == {}


@pytest.mark.parametrize(("answer", "applied"), [("yes\n", True), ("no\n", False), ("y\n", False)])
def test_on_a_terminal_apply_asks_for_yes(run_cli: Any, registry_dir: Path, database_url: str, engine: Any, monkeypatch: pytest.MonkeyPatch, answer: str, applied: bool) -> None:
    monkeypatch.setattr("reconciler.commands.apply._stdin_is_terminal", lambda: True)
    result = run_cli("apply", str(registry_dir), "--database-url", database_url, env=APPLY_ENV, input=answer)
    assert result.exit_code == (0 if applied else 1), result.output  # a declined prompt exits 1, as Terraform's
    assert "Only 'yes' will be accepted" in result.stdout
    assert result.stdout.count("llm-registry will perform the following actions:") == 1  # the plan, once
    assert result.stdout.count("gpt-4o-mini will be created") == 1
    assert bool(models_by_name(engine)) is applied
    if not applied:
        assert "Apply cancelled; nothing was written." in result.stderr and audit_events(engine) == []


def test_dry_run_does_everything_then_rolls_back(run_cli: Any, registry_dir: Path, database_url: str, engine: Any, fake_provider: Any) -> None:
    before = snapshot(engine)
    result = run_cli("apply", str(registry_dir), "--database-url", database_url, "--dry-run", env=APPLY_ENV)
    assert result.exit_code == 0, result.output
    assert "DRY RUN: everything was rolled back; nothing was written." in result.stdout
    assert "Apply would have: 2 created, 0 updated, 0 deleted." in result.stdout
    assert "MODEL_CREATED" in result.stdout and "MODEL_CONNECTION_TESTED" in result.stdout
    assert fake_provider.request_count() == 2  # the connection tests really ran
    assert snapshot(engine) == before


def test_skipped_connection_tests_are_recorded(run_cli: Any, registry_dir: Path, database_url: str, engine: Any, fake_provider: Any) -> None:
    result = apply(run_cli, registry_dir, database_url, "--skip-connection-tests")
    assert result.exit_code == 0, result.output
    assert fake_provider.request_count() == 0
    created = [e for e in audit_events(engine) if e["event_type"] == "MODEL_CREATED"]
    assert {e["details"]["connection_test"] for e in created} == {"skipped"}


def test_rename_keeps_the_row_and_its_kb_links(run_cli: Any, registry_dir: Path, database_url: str, engine: Any, fake_provider: Any) -> None:
    apply(run_cli, registry_dir, database_url)
    original = models_by_name(engine)["nomic-embed"]
    with engine.begin() as connection:
        insert_knowledge_base(connection, "support-kb", embedding_model_id=str(original["id"]))
    write_story_registry(registry_dir, fake_provider, **{"nomic-embed": {"name": "nomic-embed-v2", "previous_names": ["nomic-embed"]}})
    result = apply(run_cli, registry_dir, database_url)
    assert result.exit_code == 0, result.output
    renamed = models_by_name(engine)["nomic-embed-v2"]
    assert renamed["id"] == original["id"] and "nomic-embed" not in models_by_name(engine)
    (event,) = [e for e in audit_events(engine) if e["event_type"] == "MODEL_UPDATED"]
    assert event["details"]["renamed_from"] == "nomic-embed"


def test_status_is_toggled_by_active_and_shown_by_list(run_cli: Any, registry_dir: Path, database_url: str, engine: Any, fake_provider: Any) -> None:
    """AC-7.9.9: a model's status is displayed and can be toggled."""
    apply(run_cli, registry_dir, database_url)
    write_story_registry(registry_dir, fake_provider, **{"gpt-4o-mini": {"active": False, "default": False}})
    result = apply(run_cli, registry_dir, database_url)
    assert result.exit_code == 0, result.output
    assert "~ active  = true -> false" in result.stdout
    listed = run_cli("list", "--database-url", database_url, "--format", "json")
    status = {row["name"]: row for row in json.loads(listed.stdout)["models"]}
    assert status["gpt-4o-mini"]["active"] is False and status["nomic-embed"]["active"] is True
    table = run_cli("list", "--database-url", database_url).stdout
    assert [line.split()[4] for line in table.splitlines()[1:]] == ["Inactive", "Active"]
    # Inactive models are not connection-tested: only the embedding model was asked, once, by the first apply.
    assert fake_provider.request_count("gpt-4o-mini") == 1
