"""The page's data from a real PostgreSQL: what it reads, and that it cannot write."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from reconciler.audit import AuditEvent, read_latest_events_by_model, write_audit_events
from reconciler.page.data import gather_registry_page, read_only_transaction
from tests.dbutil import HOSTILE_MODEL_NAME, count_rows, insert_model, insert_page_registry

pytestmark = pytest.mark.db


def test_gather_reads_models_kbs_tests_and_runs(engine: Any) -> None:
    with engine.begin() as connection:
        insert_page_registry(connection)
    with read_only_transaction(engine) as connection:
        page = gather_registry_page(connection, database="postgresql://x")
    models = {model.name: model for model in page.models}
    assert list(models) == sorted(models)
    assert set(models) == {"nomic-embed", "gpt-4o-mini", "gliner", "old-embed", HOSTILE_MODEL_NAME}
    embed, chat = models["nomic-embed"], models["gpt-4o-mini"]
    assert embed.knowledge_bases == ("legal-kb", "support-kb") and chat.knowledge_bases == ("support-kb",)
    assert embed.default and embed.active and embed.managed and not embed.key_set
    assert chat.key_set and chat.endpoint is None
    assert not models["old-embed"].managed and not models["old-embed"].active
    assert [(t.ok, t.status, t.latency_ms) for t in embed.tests] == [(True, "ok", 12)]
    assert chat.last_test is not None and chat.last_test.status == "authentication_error" and not chat.last_test.ok
    assert [e.event_type for e in embed.events] == ["MODEL_CREATED", "MODEL_CONNECTION_TESTED"]
    assert [run.run_id for run in page.runs] == ["20261127T171500Z-bbbb0002", "20261127T170000Z-aaaa0001"]
    assert (page.runs[1].actor, page.runs[1].source_revision) == ("alice", "0123456789abcdef0123456789abcdef01234567")


def test_the_page_transaction_is_read_only_and_one_snapshot(engine: Any) -> None:
    with read_only_transaction(engine) as connection:
        assert connection.execute(text("SHOW transaction_read_only")).scalar_one() == "on"
        assert connection.execute(text("SHOW transaction_isolation")).scalar_one() == "repeatable read"
        with pytest.raises(DBAPIError, match="read-only transaction"):
            connection.execute(text("INSERT INTO knowledge_bases (name) VALUES ('sneaky')"))
    with engine.connect() as connection:
        assert count_rows(connection, "knowledge_bases") == 0


def test_latest_events_by_model_in_one_query(engine: Any) -> None:
    with engine.begin() as connection:
        model_id = insert_model(connection, name="busy")
        events = [
            AuditEvent("MODEL_CONNECTION_TESTED" if i % 3 == 0 else "MODEL_UPDATED", "busy", model_id, {"n": i})
            for i in range(15)
        ]
        write_audit_events(connection, events, run_id="r", actor="a", source_revision=None)
        write_audit_events(connection, [AuditEvent("MODEL_DELETED", "gone", None, {})], run_id="r", actor="a", source_revision=None)
    with engine.connect() as connection:
        latest = read_latest_events_by_model(connection, limit_per_model=4)
        tests = read_latest_events_by_model(connection, limit_per_model=2, event_type="MODEL_CONNECTION_TESTED")
    assert [e.details["n"] for e in latest] == [11, 12, 13, 14]
    assert [e.details["n"] for e in tests] == [9, 12]
    assert "gone" not in {e.model_name for e in latest}  # no longer in llm_models


def test_a_models_history_follows_it_through_renames(engine: Any) -> None:
    # Events carry the name of their time; the row's id ties them to it after a rename.
    with engine.begin() as connection:
        model_id = insert_model(connection, name="embed-v2")
        other_id = insert_model(connection, name="other")
        write = lambda *events: write_audit_events(connection, list(events), run_id="r", actor="a", source_revision=None)  # noqa: E731
        write(AuditEvent("MODEL_CREATED", "embed", model_id, {"n": 1}))  # under its old name
        write(AuditEvent("MODEL_CONNECTION_TESTED", "embed", model_id, {"n": 2, "outcome": "success"}))
        write(AuditEvent("MODEL_UPDATED", "embed-v2", model_id, {"n": 3, "renamed_from": "embed"}))
        write(AuditEvent("MODEL_CONNECTION_TESTED", "embed-v2", None, {"n": 4}))  # no id: a failed create's test
        write(AuditEvent("MODEL_DELETED", "embed-v2", "00000000-0000-0000-0000-00000000dead", {"n": 5}))  # an older row of that name
        write(AuditEvent("MODEL_CREATED", "other", other_id, {"n": 6}))
    with engine.connect() as connection:
        latest = read_latest_events_by_model(connection, limit_per_model=10)
        newest_two = read_latest_events_by_model(connection, limit_per_model=2)
        tests = read_latest_events_by_model(connection, limit_per_model=10, event_type="MODEL_CONNECTION_TESTED")
    assert [e.details["n"] for e in latest] == [1, 2, 3, 4, 6]
    assert [e.details["n"] for e in newest_two] == [3, 4, 6]
    assert [e.details["n"] for e in tests] == [2, 4]
    with read_only_transaction(engine) as connection:
        page = gather_registry_page(connection)
    models = {model.name: model for model in page.models}
    assert [e.event_type for e in models["embed-v2"].events] == ["MODEL_CREATED", "MODEL_CONNECTION_TESTED", "MODEL_UPDATED", "MODEL_CONNECTION_TESTED"]
    assert [e.event_type for e in models["other"].events] == ["MODEL_CREATED"]


def test_a_key_without_a_fingerprint_is_a_key(engine: Any) -> None:
    """A row from the old admin page holds a ciphertext and no fingerprint yet: the page says "set"."""
    with engine.begin() as connection:
        insert_model(connection, name="legacy-key", managed_by=None, ciphertext=b"\x01")
        insert_model(connection, name="no-key", managed_by=None)
    with read_only_transaction(engine) as connection:
        page = gather_registry_page(connection)
    assert {model.name: model.key_set for model in page.models} == {"legacy-key": True, "no-key": False}
