"""`llm-registry audit`: the audit trail, filtered, as a table or JSON."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from reconciler.audit import AuditEvent, write_audit_events
from reconciler.commands.audit import parse_since
from reconciler.errors import RegistryError
from tests.cli.conftest import RunCli


@pytest.fixture
def trail(engine: Any) -> None:
    """Two runs: one creates two models, the next updates one and deletes the other."""
    with engine.begin() as connection:
        write_audit_events(
            connection,
            [
                AuditEvent("MODEL_CONNECTION_TESTED", "emb", None, {"outcome": "success", "status": "ok", "latency_ms": 12}),
                AuditEvent("MODEL_CREATED", "emb", "00000000-0000-0000-0000-00000000000a", {"configuration": {"api_key": None}}),
                AuditEvent("MODEL_CREATED", "gen", "00000000-0000-0000-0000-00000000000b", {"configuration": {"api_key": "set"}}),
            ],
            run_id="run-1", actor="alice", source_revision="0123456789abcdef0123456789abcdef01234567",
        )  # fmt: skip
    with engine.begin() as connection:
        write_audit_events(
            connection,
            [
                AuditEvent("MODEL_UPDATED", "emb", "00000000-0000-0000-0000-00000000000a", {"changes": {"batch_size": {"before": 32, "after": 64}, "api_key": "changed"}}),
                AuditEvent("MODEL_DELETED", "gen", "00000000-0000-0000-0000-00000000000b", {"knowledge_bases": []}),
            ],
            run_id="run-2", actor="ci-bot", source_revision=None,
        )  # fmt: skip


@pytest.mark.db
def test_the_table(run_cli: RunCli, database_url: str, trail: None) -> None:
    result = run_cli("audit", "--database-url", database_url)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["TIME", "(UTC)", "RUN"]
    assert len(lines) == 6
    assert "MODEL_CONNECTION_TESTED" in lines[1] and "ok 12 ms" in lines[1]
    assert "0123456789ab" in lines[1] and "0123456789abc" not in lines[1]
    assert "changed: api_key, batch_size" in lines[4]
    assert "used by 0 KB(s)" in lines[5]


@pytest.mark.db
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--model", "emb"), [("run-1", "MODEL_CONNECTION_TESTED"), ("run-1", "MODEL_CREATED"), ("run-2", "MODEL_UPDATED")]),
        (("--run", "run-2"), [("run-2", "MODEL_UPDATED"), ("run-2", "MODEL_DELETED")]),
        (("--model", "gen", "--run", "run-1"), [("run-1", "MODEL_CREATED")]),
        (("--since", "1h"), None),
        (("--since", "2999-01-01"), []),
        (("--limit", "1"), [("run-2", "MODEL_DELETED")]),
        (("--model", "nothing"), []),
    ],
)
def test_filters(run_cli: RunCli, database_url: str, trail: None, args: tuple[str, ...], expected: Any) -> None:
    result = run_cli("audit", "--database-url", database_url, "--format", "json", *args)
    assert result.exit_code == 0, result.output
    events = json.loads(result.stdout)["events"]
    got = [(event["run_id"], event["event_type"]) for event in events]
    assert got == expected if expected is not None else len(got) == 5


@pytest.mark.db
def test_json_records(run_cli: RunCli, database_url: str, trail: None) -> None:
    events = json.loads(run_cli("audit", "--database-url", database_url, "--format", "json").stdout)["events"]
    updated = events[3]
    assert updated["details"]["changes"]["api_key"] == "changed"
    assert updated["actor"] == "ci-bot" and updated["source_revision"] is None
    assert updated["model_id"] == "00000000-0000-0000-0000-00000000000a"
    assert datetime.fromisoformat(updated["occurred_at"]).tzinfo is not None


@pytest.mark.db
def test_an_empty_trail_and_a_bad_since(run_cli: RunCli, database_url: str) -> None:
    assert run_cli("audit", "--database-url", database_url).stdout.strip() == "No audit events."
    result = run_cli("audit", "--database-url", database_url, "--since", "last tuesday")
    assert result.exit_code == 1
    assert "--since 'last tuesday'" in result.stderr and "Traceback" not in result.output


def test_parse_since() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
    assert parse_since("24h", now) == now - timedelta(hours=24)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("2w", now) == now - timedelta(weeks=2)
    assert parse_since("2026-11-01", now) == datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert parse_since("2026-11-01T08:00Z", now) == datetime(2026, 11, 1, 8, tzinfo=timezone.utc)
    assert parse_since("2026-11-01T08:00+01:00", now) == datetime(2026, 11, 1, 7, tzinfo=timezone.utc)
    with pytest.raises(RegistryError):
        parse_since("yesterday", now)
