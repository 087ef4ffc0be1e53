"""`llm-registry audit`: the filters that answer questions, rename-following, the JSON contract."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.cli.conftest import RunCli

EMB = "00000000-0000-0000-0000-00000000000a"
GEN = "00000000-0000-0000-0000-00000000000b"


def _events(engine: Any, run_id: str, actor: str, environment: str | None, *rows: tuple[str, str, str | None, dict[str, Any]]) -> None:
    """One run's events, as apply writes them (the table is append-only: INSERT only)."""
    from sqlalchemy import insert

    from reconciler.tables import registry_audit_events

    with engine.begin() as connection:
        connection.execute(
            insert(registry_audit_events),
            [
                {"run_id": run_id, "event_type": kind, "model_name": name, "model_id": model_id, "actor": actor,
                 "source_revision": "0123456789abcdef0123456789abcdef01234567-dirty", "environment": environment, "details": details}
                for kind, name, model_id, details in rows
            ],
        )  # fmt: skip


@pytest.fixture
def renamed_trail(engine: Any) -> None:
    """staging creates `emb-v1` and `gen`; production renames `emb-v1` to `emb`, tests it, deletes `gen`."""
    _events(
        engine, "run-1", "alice", "staging",
        ("MODEL_CREATED", "emb-v1", EMB, {}),
        ("MODEL_CREATED", "gen", GEN, {}),
    )  # fmt: skip
    _events(
        engine, "run-2", "ci-bot", "production",
        ("MODEL_UPDATED", "emb", EMB, {"changes": {"name": {"before": "emb-v1", "after": "emb"}}, "renamed_from": "emb-v1"}),
        ("MODEL_CONNECTION_TESTED", "emb", EMB, {"outcome": "success", "status": "ok", "latency_ms": 5}),
        ("MODEL_DELETED", "gen", GEN, {"knowledge_bases": []}),
    )  # fmt: skip


def _names(run_cli: RunCli, database_url: str, *args: str) -> list[tuple[str, str]]:
    result = run_cli("audit", "--database-url", database_url, "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return [(event["event_type"], event["model_name"]) for event in json.loads(result.stdout)["events"]]


@pytest.mark.db
def test_model_follows_a_rename_by_id_from_either_name(run_cli: RunCli, database_url: str, renamed_trail: None) -> None:
    expected = [("MODEL_CREATED", "emb-v1"), ("MODEL_UPDATED", "emb"), ("MODEL_CONNECTION_TESTED", "emb")]
    assert _names(run_cli, database_url, "--model", "emb") == expected
    assert _names(run_cli, database_url, "--model", "emb-v1") == expected
    assert _names(run_cli, database_url, "--model", "gen") == [("MODEL_CREATED", "gen"), ("MODEL_DELETED", "gen")]


@pytest.mark.db
def test_event_actor_and_environment_filters_combine(run_cli: RunCli, database_url: str, renamed_trail: None) -> None:
    assert _names(run_cli, database_url, "--event", "MODEL_DELETED") == [("MODEL_DELETED", "gen")]
    assert _names(run_cli, database_url, "--event", "model_created", "--event", "MODEL_DELETED") == [
        ("MODEL_CREATED", "emb-v1"), ("MODEL_CREATED", "gen"), ("MODEL_DELETED", "gen"),
    ]  # fmt: skip
    assert _names(run_cli, database_url, "--actor", "alice") == [("MODEL_CREATED", "emb-v1"), ("MODEL_CREATED", "gen")]
    assert _names(run_cli, database_url, "--environment", "production", "--model", "emb") == [
        ("MODEL_UPDATED", "emb"), ("MODEL_CONNECTION_TESTED", "emb"),
    ]  # fmt: skip
    assert _names(run_cli, database_url, "--actor", "alice", "--environment", "production") == []
    unknown = run_cli("audit", "--database-url", database_url, "--event", "MODEL_RENAMED")
    assert unknown.exit_code == 1 and "MODEL_RENAMED" in unknown.stderr


@pytest.mark.db
def test_until_is_inclusive_and_must_not_precede_since(run_cli: RunCli, database_url: str, renamed_trail: None, engine: Any) -> None:
    from sqlalchemy import text

    with engine.connect() as connection:
        first_run_end = connection.execute(text("SELECT max(occurred_at) FROM registry_audit_events WHERE run_id = 'run-1'")).scalar_one()
    until = first_run_end.isoformat()
    assert _names(run_cli, database_url, "--until", until) == [("MODEL_CREATED", "emb-v1"), ("MODEL_CREATED", "gen")]
    assert len(_names(run_cli, database_url, "--until", "1d")) == 0
    backwards = run_cli("audit", "--database-url", database_url, "--since", "1h", "--until", "2d")
    assert backwards.exit_code == 1 and "--until is before --since" in backwards.stderr
    bad = run_cli("audit", "--database-url", database_url, "--until", "yesterday")
    assert bad.exit_code == 1 and "--until 'yesterday' is neither a duration" in bad.stderr


@pytest.mark.db
def test_json_holds_every_field_of_every_event(run_cli: RunCli, database_url: str, renamed_trail: None) -> None:
    result = run_cli("audit", "--database-url", database_url, "--format", "json", "--run", "run-2", "--limit", "1")
    (event,) = json.loads(result.stdout)["events"]
    assert list(event) == [
        "id", "occurred_at", "run_id", "event_type", "model_name", "model_id", "actor", "source_revision", "environment", "details",
    ]  # fmt: skip
    assert event["environment"] == "production" and event["model_id"] == GEN
    assert event["occurred_at"].endswith("+00:00") and event["source_revision"] == "0123456789abcdef0123456789abcdef01234567-dirty"


@pytest.mark.db
def test_the_table_shows_environment_and_a_dirty_revision(run_cli: RunCli, database_url: str, renamed_trail: None) -> None:
    lines = run_cli("audit", "--database-url", database_url).stdout.splitlines()
    assert lines[0].split()[:8] == ["TIME", "(UTC)", "RUN", "EVENT", "MODEL", "ACTOR", "ENV", "REVISION"]
    assert "staging" in lines[1] and "0123456789ab-dirty" in lines[1]
