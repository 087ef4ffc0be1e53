"""The audit trail: written in the caller's transaction, read back with filters, never changed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from reconciler import audit
from reconciler.audit import AuditEvent, read_audit_events, write_audit_events

pytestmark = pytest.mark.db


def _write(connection: Connection, *events: AuditEvent, run_id: str = "run-1", actor: str = "alice") -> None:
    write_audit_events(connection, events, run_id=run_id, actor=actor, source_revision="abc123")


def test_write_then_read(connection: Connection) -> None:
    _write(
        connection,
        AuditEvent(audit.MODEL_CREATED, "a", "00000000-0000-0000-0000-000000000001", {"configuration": {"dimensions": 768}}),
        AuditEvent(audit.MODEL_UPDATED, "b", None, {"changes": {"batch_size": {"before": 32, "after": 64}, "api_key": "changed"}}),
    )
    events = read_audit_events(connection)
    assert [(e.event_type, e.model_name, e.run_id, e.actor, e.source_revision) for e in events] == [
        ("MODEL_CREATED", "a", "run-1", "alice", "abc123"),
        ("MODEL_UPDATED", "b", "run-1", "alice", "abc123"),
    ]
    assert events[0].model_id == "00000000-0000-0000-0000-000000000001"
    assert events[1].details["changes"]["batch_size"] == {"before": 32, "after": 64}
    assert events[0].occurred_at <= events[1].occurred_at  # clock_timestamp(): in the order written
    assert events[0].as_json()["occurred_at"].endswith("+00:00")
    assert write_audit_events(connection, [], run_id="r", actor="a", source_revision=None) == 0


def test_events_get_the_time_they_happened_not_the_transaction_start(connection: Connection) -> None:
    started = connection.execute(text("SELECT now()")).scalar_one()
    connection.execute(text("SELECT pg_sleep(0.05)"))  # e.g. the wait for the apply lock
    _write(connection, AuditEvent(audit.MODEL_CREATED, "a", None, {}))
    _write(connection, AuditEvent(audit.MODEL_CREATED, "b", None, {}))
    first, second = read_audit_events(connection)
    assert started + timedelta(seconds=0.05) <= first.occurred_at < second.occurred_at


def test_filters(engine: Engine) -> None:
    with engine.begin() as connection:
        _write(connection, AuditEvent(audit.MODEL_CREATED, "a"), AuditEvent(audit.MODEL_CREATED, "b"), run_id="run-1")
    with engine.begin() as connection:
        _write(connection, AuditEvent(audit.MODEL_DELETED, "a", details={"knowledge_bases": []}), run_id="run-2")
    with engine.connect() as connection:
        assert [e.run_id for e in read_audit_events(connection, model="a")] == ["run-1", "run-2"]
        assert [e.model_name for e in read_audit_events(connection, run_id="run-1")] == ["a", "b"]
        assert read_audit_events(connection, since=datetime.now(timezone.utc) + timedelta(minutes=1)) == []
        assert len(read_audit_events(connection, since=datetime.now(timezone.utc) - timedelta(minutes=5))) == 3
        assert len(read_audit_events(connection, since=datetime(2000, 1, 1))) == 3  # naive = UTC
        newest = read_audit_events(connection, limit=2)
        assert [e.event_type for e in newest] == ["MODEL_CREATED", "MODEL_DELETED"]


def test_a_rolled_back_transaction_leaves_no_record(engine: Engine) -> None:
    with engine.connect() as connection:
        _write(connection, AuditEvent(audit.MODEL_CREATED, "a"))
        connection.rollback()
        assert read_audit_events(connection) == []


def test_events_cannot_carry_a_key() -> None:
    from tests.factories import CANARY_KEY

    with pytest.raises(ValueError) as caught:
        AuditEvent(audit.MODEL_UPDATED, "m", None, {"changes": {"api_key": CANARY_KEY}})
    assert CANARY_KEY not in str(caught.value)
    with pytest.raises(ValueError):
        AuditEvent(audit.MODEL_CREATED, "m", None, {"configuration": {"api_key": {"after": CANARY_KEY}}})
    with pytest.raises(ValueError):  # inside a list, beside scalars
        AuditEvent(audit.MODEL_UPDATED, "m", None, {"changes": ["x", 1, None, {"api_key": [CANARY_KEY]}]})
    AuditEvent(audit.MODEL_UPDATED, "m", None, {"changes": {"api_key": "(none) -> (set)"}})
    AuditEvent(audit.MODEL_CREATED, "m", None, {"configuration": {"api_key": "set"}})
    with pytest.raises(ValueError, match="unknown audit event type"):
        AuditEvent("MODEL_RENAMED", "m")


def test_run_ids_and_actor() -> None:
    first, second = audit.new_run_id(), audit.new_run_id()
    assert first != second and len(first) == len(second)
    assert audit.default_actor({"GITHUB_ACTOR": "octocat"}) == "octocat"
    assert audit.default_actor({"LLM_REGISTRY_ACTOR": "me", "GITHUB_ACTOR": "octocat"}) == "me"
    assert audit.default_actor({})


def test_written_events_cannot_be_changed(engine: Engine) -> None:
    from sqlalchemy.exc import DBAPIError

    with engine.begin() as connection:
        _write(connection, AuditEvent(audit.MODEL_CREATED, "a"))
    with engine.connect() as connection, pytest.raises(DBAPIError, match="append-only"):
        connection.execute(text("UPDATE registry_audit_events SET details = '{}'"))
