"""Audit and plan-file paths of apply that no other test walked: adoption, GITHUB_SHA, damaged plan files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.cli.applyutil import APPLY_ENV, audit_events, models_by_name, snapshot, story_models, write_story_registry
from tests.dbutil import insert_model
from tests.factories import write_registry_file

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_adopting_a_hand_made_row_is_audited_as_adoption(run_cli: Any, tmp_path: Path, database_url: str, engine: Any, fake_provider: Any) -> None:
    models = story_models(fake_provider)
    embedding = next(m for m in models if m["name"] == "nomic-embed")
    with engine.begin() as connection:
        row_id = insert_model(connection, name="nomic-embed", managed_by=None, model_id=embedding["model_id"],
                              api_endpoint=embedding["api_endpoint"], description="Local embeddings", is_default=True)
    directory = write_registry_file(tmp_path / "r", [embedding]).parent
    result = run_cli("apply", str(directory), "--database-url", database_url, "--auto-approve", env={**APPLY_ENV, "GITHUB_SHA": SHA})
    assert result.exit_code == 0, result.output
    assert "adopts a row that was created by hand" in result.stdout
    (updated,) = [e for e in audit_events(engine) if e["event_type"] == "MODEL_UPDATED"]
    assert str(updated["model_id"]) == row_id and updated["details"]["adopted"] is True
    assert updated["details"]["changes"]["managed_by"] == {"before": None, "after": "llm-registry"}
    row = models_by_name(engine)["nomic-embed"]
    assert str(row["id"]) == row_id and row["managed_by"] == "llm-registry"


def test_the_audit_record_of_a_deleted_row_hides_credentials_its_endpoint_holds(run_cli: Any, tmp_path: Path, database_url: str, engine: Any, fake_provider: Any) -> None:
    # A managed row edited by hand to hold user:password@ in its endpoint, then removed from git.
    with engine.begin() as connection:
        row_id = insert_model(connection, name="old-embed", api_endpoint="http://embed-user:s3cr3t-pw@localhost:11434")
    directory = write_story_registry(tmp_path / "r", fake_provider)
    result = run_cli("apply", str(directory), "--database-url", database_url, "--auto-approve", "--allow-delete-all", env=APPLY_ENV)
    assert result.exit_code == 0, result.output
    (deleted,) = [e for e in audit_events(engine) if e["event_type"] == "MODEL_DELETED"]
    assert str(deleted["model_id"]) == row_id
    assert deleted["details"]["configuration"]["api_endpoint"] == "http://***@localhost:11434"
    assert "s3cr3t-pw" not in str(deleted["details"]) and "s3cr3t-pw" not in result.output


def test_github_sha_is_the_source_revision_of_every_event(run_cli: Any, tmp_path: Path, database_url: str, engine: Any, fake_provider: Any) -> None:
    directory = write_story_registry(tmp_path / "r", fake_provider)
    result = run_cli("apply", str(directory), "--database-url", database_url, "--auto-approve", env={**APPLY_ENV, "GITHUB_SHA": SHA})
    assert result.exit_code == 0, result.output
    events = audit_events(engine)
    assert events and {e["source_revision"] for e in events} == {SHA}


@pytest.mark.parametrize(
    "damage",
    [lambda text: "", lambda text: text[: len(text) // 2], lambda text: "not json at all\n", lambda text: "[]\n",
     lambda text: text.replace("{", "[", 1)],
    ids=["empty", "truncated", "not-json", "a-list", "broken-structure"],
)
def test_a_damaged_plan_file_is_refused_and_nothing_changes(
    damage: Any, run_cli: Any, tmp_path: Path, database_url: str, engine: Any, fake_provider: Any
) -> None:
    directory = write_story_registry(tmp_path / "r", fake_provider)
    planfile = tmp_path / "registry.plan"
    planned = run_cli("plan", str(directory), "--database-url", database_url, "--out", str(planfile), env=APPLY_ENV)
    assert planned.exit_code in (0, 2), planned.output
    planfile.write_text(damage(planfile.read_text()))
    before = snapshot(engine)
    result = run_cli("apply", str(planfile), "--database-url", database_url, "--auto-approve", env=APPLY_ENV)
    assert result.exit_code == 1, result.output
    assert "error: " in result.stderr and str(planfile) in result.stderr
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert snapshot(engine) == before
    assert fake_provider.request_count() == 0
