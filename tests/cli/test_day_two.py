"""Day two: drift, a targeted apply beside a blocked change, the rename hint (as a user runs them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.cli.applyutil import APPLY_ENV, audit_events, models_by_name, story_models, write_story_registry
from tests.dbutil import insert_knowledge_base, insert_model
from tests.factories import write_registry_file
from tests.fakes.provider import FakeProvider


def _apply(run_cli: Any, directory: Path, url: str, *args: str) -> Any:
    return run_cli("apply", str(directory), "--database-url", url, "--auto-approve", *args, env=APPLY_ENV)


def _plan(run_cli: Any, directory: Path, url: str, *args: str) -> Any:
    return run_cli("plan", str(directory), "--database-url", url, *args, env=APPLY_ENV)


def _kb_on(engine: Any, model: str) -> None:
    with engine.begin() as connection:
        insert_knowledge_base(connection, "support-kb", embedding_model_id=models_by_name(engine)[model]["id"])


def test_a_targeted_apply_goes_through_beside_a_blocked_delete(
    run_cli: Any, tmp_path: Path, fake_provider: FakeProvider, database_url: str, engine: Any
) -> None:
    directory = write_story_registry(tmp_path / "registry.d", fake_provider)
    assert _apply(run_cli, directory, database_url).exit_code == 0
    _kb_on(engine, "nomic-embed")
    # The embedding model is removed from git (blocked: a KB uses it); the urgent fix is a temperature.
    _, generation = story_models(fake_provider)
    generation["parameters"]["temperature"] = 0.2
    write_registry_file(directory, [generation])

    whole = _apply(run_cli, directory, database_url)
    assert whole.exit_code == 3 and "used by 1 knowledge base: support-kb" in whole.stdout

    targeted = _apply(run_cli, directory, database_url, "--target", "gpt-4o-mini")
    assert targeted.exit_code == 0, targeted.output
    assert "PARTIAL PLAN: only --target gpt-4o-mini; 1 other change left out: nomic-embed." in targeted.stdout
    assert "Apply complete PARTIAL (--target gpt-4o-mini): 0 created, 1 updated, 0 deleted." in targeted.stdout
    rows = models_by_name(engine)
    assert rows["gpt-4o-mini"]["temperature"] == 0.2 and "nomic-embed" in rows
    run_id = [event for event in audit_events(engine) if event["event_type"] == "MODEL_UPDATED"][-1]["run_id"]
    run_events = [event for event in audit_events(engine) if event["run_id"] == run_id]
    assert {event["model_name"] for event in run_events} == {"gpt-4o-mini"}
    assert all(event["details"]["targets"] == ["gpt-4o-mini"] for event in run_events)


def test_a_saved_targeted_plan_applies_with_its_targets(
    run_cli: Any, tmp_path: Path, fake_provider: FakeProvider, database_url: str, engine: Any
) -> None:
    directory = write_story_registry(tmp_path / "registry.d", fake_provider)
    planfile = tmp_path / "partial.plan"
    planned = _plan(run_cli, directory, database_url, "--target", "nomic-embed", "--out", str(planfile))
    assert planned.exit_code == 0, planned.output
    assert "PARTIAL PLAN: only --target nomic-embed; 1 other change left out: gpt-4o-mini." in planned.stdout
    refused = run_cli("apply", str(planfile), "--database-url", database_url, "--target", "gpt-4o-mini", env=APPLY_ENV)
    assert refused.exit_code == 1 and "the plan file was made with --target nomic-embed" in refused.stderr
    applied = run_cli("apply", str(planfile), "--database-url", database_url, env=APPLY_ENV)
    assert applied.exit_code == 0, applied.output
    assert sorted(models_by_name(engine)) == ["nomic-embed"]


def test_an_unknown_target_is_an_error(run_cli: Any, tmp_path: Path, fake_provider: FakeProvider, database_url: str) -> None:
    directory = write_story_registry(tmp_path / "registry.d", fake_provider)
    result = _plan(run_cli, directory, database_url, "--target", "gpt-4o")
    assert result.exit_code == 1
    assert "--target: no model named 'gpt-4o' in the registry or the database (known: gpt-4o-mini, nomic-embed)" in result.stderr


def test_a_rename_without_previous_names_gets_the_hint_and_stays_blocked(
    run_cli: Any, tmp_path: Path, fake_provider: FakeProvider, database_url: str, engine: Any
) -> None:
    directory = write_story_registry(tmp_path / "registry.d", fake_provider)
    assert _apply(run_cli, directory, database_url).exit_code == 0
    _kb_on(engine, "nomic-embed")
    write_story_registry(directory, fake_provider, **{"nomic-embed": {"name": "nomic"}})
    result = _plan(run_cli, directory, database_url)
    assert result.exit_code == 3
    hint = "add `previous_names: [nomic-embed]` to 'nomic' to keep its id and KB links"
    assert f"warning: looks like a rename of 'nomic-embed': {hint}" in result.stdout
    assert "BLOCKED: delete refused" in result.stdout
    with_previous = {"nomic-embed": {"name": "nomic", "previous_names": ["nomic-embed"]}}
    write_story_registry(directory, fake_provider, **with_previous)
    fixed = _plan(run_cli, directory, database_url)
    assert fixed.exit_code == 0 and "looks like a rename" not in fixed.stdout


def test_a_blocked_field_beside_harmless_ones_says_the_others_can_go_separately(
    run_cli: Any, tmp_path: Path, fake_provider: FakeProvider, database_url: str, engine: Any
) -> None:
    directory = write_story_registry(tmp_path / "registry.d", fake_provider)
    assert _apply(run_cli, directory, database_url).exit_code == 0
    _kb_on(engine, "nomic-embed")
    embedding, generation = story_models(fake_provider)
    embedding["parameters"].update(dimensions=1024, batch_size=64)
    write_registry_file(directory, [embedding, generation])
    result = _plan(run_cli, directory, database_url)
    assert result.exit_code == 3
    assert (
        "blocked: only parameters.dimensions blocks this change; the other changes (parameters.batch_size) "
        "are not blocked: make them in a separate change without the blocked fields"
    ) in result.stdout


def test_a_hand_made_row_since_the_last_apply_is_listed_as_new(
    run_cli: Any, tmp_path: Path, fake_provider: FakeProvider, database_url: str, engine: Any
) -> None:
    directory = write_story_registry(tmp_path / "registry.d", fake_provider)
    with engine.begin() as connection:
        insert_model(connection, name="before-any-apply", managed_by=None)
    assert _apply(run_cli, directory, database_url).exit_code == 0
    with engine.begin() as connection:
        insert_model(connection, name="made-by-hand", managed_by=None)
    result = _plan(run_cli, directory, database_url, "--detailed-exitcode")
    assert result.exit_code == 0, result.output
    assert "Not managed by llm-registry, left untouched: before-any-apply, made-by-hand" in result.stdout
    assert "New rows made by hand since the last apply (not managed, left untouched): made-by-hand" in result.stdout
    assert json.loads(_plan(run_cli, directory, database_url, "--format", "json").stdout)["new_unmanaged"] == ["made-by-hand"]


def test_a_hand_edit_is_reported_as_drift_and_a_hand_made_row_as_new(
    run_cli: Any, tmp_path: Path, fake_provider: FakeProvider, database_url: str, engine: Any
) -> None:
    from sqlalchemy import text

    directory = write_story_registry(tmp_path / "registry.d", fake_provider)
    assert _apply(run_cli, directory, database_url).exit_code == 0
    assert _plan(run_cli, directory, database_url, "--detailed-exitcode").exit_code == 0
    with engine.begin() as connection:
        connection.execute(text("UPDATE llm_models SET temperature = 0.2 WHERE name = 'gpt-4o-mini'"))
        insert_model(connection, name="made-by-hand", managed_by=None)

    result = _plan(run_cli, directory, database_url, "--detailed-exitcode")
    assert result.exit_code == 2, result.output
    assert "  # gpt-4o-mini will be updated in place [DRIFT]" in result.stdout
    assert "~ parameters.temperature = 0.2 -> 0.7   (drift: changed outside llm-registry)" in result.stdout
    assert "New rows made by hand since the last apply (not managed, left untouched): made-by-hand" in result.stdout
    document = json.loads(_plan(run_cli, directory, database_url, "--format", "json").stdout)
    (action,) = document["actions"]
    assert action["drift"] is True and action["drift_fields"] == ["parameters.temperature"]
    assert document["new_unmanaged"] == ["made-by-hand"] and document["summary"]["drift"] == 1
    assert "(drift)" in _plan(run_cli, directory, database_url, "--format", "markdown").stdout

    assert _apply(run_cli, directory, database_url).exit_code == 0  # sets git's value back
    again = _plan(run_cli, directory, database_url, "--detailed-exitcode")
    assert again.exit_code == 0 and "DRIFT" not in again.stdout and "New rows made by hand" not in again.stdout
