"""`llm-registry apply`: how each kind of run ends, as the user reads it and as the database and audit trail keep it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.cli.applyutil import APPLY_ENV, audit_events, models_by_name, snapshot, story_models
from tests.factories import write_registry_file


def test_a_dry_run_whose_connection_test_fails_records_nothing_and_claims_nothing(
    run_cli: Any, registry_dir: Path, database_url: str, engine: Any, fake_provider: Any
) -> None:
    fake_provider.set_model("gpt-4o-mini", status=401, api_key="another-key")
    before = snapshot(engine)
    result = run_cli("apply", str(registry_dir), "--database-url", database_url, "--dry-run", env=APPLY_ENV)
    assert result.exit_code == 1
    # The error is the last word: not "the attempts are in the audit trail", nor "could not be recorded".
    assert result.stderr.strip().splitlines()[-1] == "error: 1 connection test failed (gpt-4o-mini); nothing was written"
    assert "audit trail" not in result.output
    assert snapshot(engine) == before


def test_a_failed_test_of_a_changed_model_is_recorded_against_its_row(
    run_cli: Any, tmp_path: Path, database_url: str, engine: Any, fake_provider: Any
) -> None:
    models = story_models(fake_provider)
    directory = write_registry_file(tmp_path / "r", models).parent
    args = ("apply", str(directory), "--database-url", database_url, "--auto-approve")
    assert run_cli(*args, "--skip-connection-tests", env=APPLY_ENV).exit_code == 0
    row_id = models_by_name(engine)["gpt-4o-mini"]["id"]
    applied = len(audit_events(engine))
    models[1]["description"] = "now failing its test"
    write_registry_file(directory, models)
    fake_provider.set_model("gpt-4o-mini", status=401, api_key="another-key")
    result = run_cli(*args, env=APPLY_ENV)
    assert result.exit_code == 1
    attempts = audit_events(engine)[applied:]
    assert [(e["event_type"], e["model_name"], e["model_id"]) for e in attempts] == [
        ("MODEL_CONNECTION_TESTED", "gpt-4o-mini", row_id)
    ]
    assert models_by_name(engine)["gpt-4o-mini"]["description"] != "now failing its test"


def test_when_the_attempts_cannot_be_recorded_apply_warns_instead_of_pointing_at_the_audit_trail(
    run_cli: Any, registry_dir: Path, database_url: str, engine: Any, fake_provider: Any
) -> None:
    fake_provider.set_model("gpt-4o-mini", status=401, api_key="another-key")
    with engine.begin() as connection:
        connection.execute(text(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$"
        ))
        connection.execute(text(
            "CREATE TRIGGER refuse BEFORE INSERT ON registry_audit_events FOR EACH ROW EXECUTE FUNCTION refuse()"
        ))
    result = run_cli("apply", str(registry_dir), "--database-url", database_url, "--auto-approve", env=APPLY_ENV)
    assert result.exit_code == 1
    assert "error: 1 connection test failed (gpt-4o-mini); nothing was written" in result.stderr
    assert "warning: the test attempts could not be recorded in the audit trail" in result.stderr
    assert "llm-registry audit --run" not in result.output
    assert models_by_name(engine) == {} and audit_events(engine) == []


def test_on_a_terminal_apply_with_nothing_to_do_does_not_ask(
    run_cli: Any, registry_dir: Path, database_url: str, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ("apply", str(registry_dir), "--database-url", database_url)
    assert run_cli(*args, "--auto-approve", env=APPLY_ENV).exit_code == 0
    before = snapshot(engine)
    monkeypatch.setattr("reconciler.commands.apply._stdin_is_terminal", lambda: True)
    result = run_cli(*args, env=APPLY_ENV, input="")
    assert result.exit_code == 0, result.output
    assert "Do you want to apply" not in result.output and "cancelled" not in result.output
    assert snapshot(engine) == before


def test_apply_on_a_database_without_the_schema_asks_for_db_upgrade(
    run_cli: Any, registry_dir: Path, unmigrated_database_url: str
) -> None:
    result = run_cli("apply", str(registry_dir), "--database-url", unmigrated_database_url, "--auto-approve", env=APPLY_ENV)
    assert result.exit_code == 1
    assert "error: the database has no llm-registry schema yet: run `llm-registry db upgrade` first" in result.stderr


def test_the_audit_events_of_a_whole_run_do_not_say_partial(run_cli: Any, registry_dir: Path, database_url: str, engine: Any) -> None:
    result = run_cli("apply", str(registry_dir), "--database-url", database_url, "--auto-approve", env=APPLY_ENV)
    assert result.exit_code == 0, result.output
    events = audit_events(engine)
    assert {e["event_type"] for e in events} == {"MODEL_CONNECTION_TESTED", "MODEL_CREATED"}
    assert [e["details"]["targets"] for e in events if "targets" in e["details"]] == []  # only --target runs carry it
