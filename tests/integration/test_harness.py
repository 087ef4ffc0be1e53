"""The test harness itself: a database handed to the next test is as fresh as a new clone."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from reconciler import db
from tests.conftest import MigratedDatabases, PostgresServer
from tests.dbutil import count_rows, insert_knowledge_base, insert_model

pytestmark = pytest.mark.db


def _use(pg_server: PostgresServer, name: str, statements: list[str] | None = None) -> None:
    engine = db.create_engine(pg_server.url_for(name))
    try:
        with engine.begin() as connection:
            model = insert_model(connection)
            insert_knowledge_base(connection, embedding_model_id=model)
            connection.execute(
                text("INSERT INTO registry_audit_events (run_id, event_type, model_name, actor) VALUES ('r', 'MODEL_CREATED', 'm', 'a')")
            )
            for statement in statements or []:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def test_a_reused_database_is_empty_and_still_guarded(pg_server: PostgresServer, _migrated_template: str) -> None:
    pool = MigratedDatabases(pg_server, _migrated_template)
    first = pool.acquire()
    _use(pg_server, first)
    pool.release(first)
    again = pool.acquire()
    assert again == first
    engine = db.create_engine(pg_server.url_for(again))
    try:
        with engine.connect() as connection:
            for table in ("llm_models", "knowledge_bases", "registry_audit_events"):
                assert count_rows(connection, table) == 0
            db.require_schema_at_head(connection)
            # the truncate guard is back on, and the audit ids start again at 1
            connection.execute(
                text("INSERT INTO registry_audit_events (run_id, event_type, model_name, actor) VALUES ('r', 'MODEL_CREATED', 'm', 'a') ")
            )
            assert connection.execute(text("SELECT id FROM registry_audit_events")).scalar_one() == 1
            connection.commit()
            with pytest.raises(Exception, match="append-only"):
                connection.execute(text("TRUNCATE registry_audit_events"))
    finally:
        engine.dispose()
        pool.release(again)
        for name in pool.free:
            pg_server.drop_database(name)


@pytest.mark.parametrize(
    "change",
    [
        "DROP TRIGGER registry_audit_events_append_only ON registry_audit_events",
        "ALTER TABLE llm_models DROP CONSTRAINT ck_llm_models_model_type",
        "CREATE TABLE leftover (x int)",
        "UPDATE llm_registry_schema_version SET version_num = '0000'",
        "CREATE SCHEMA other",
    ],
)
def test_a_database_a_test_changed_is_dropped_not_reused(
    pg_server: PostgresServer, _migrated_template: str, change: str
) -> None:
    pool = MigratedDatabases(pg_server, _migrated_template)
    first = pool.acquire()
    _use(pg_server, first, [change])
    pool.release(first)
    assert pool.free == []
    second = pool.acquire()
    assert second != first
    pool.release(second)
    for name in pool.free:
        pg_server.drop_database(name)


def test_a_connection_left_open_does_not_block_the_reset(pg_server: PostgresServer, _migrated_template: str) -> None:
    pool = MigratedDatabases(pg_server, _migrated_template)
    name = pool.acquire()
    engine = db.create_engine(pg_server.url_for(name))
    leftover = engine.connect()
    leftover.execute(text("LOCK TABLE llm_models IN ACCESS EXCLUSIVE MODE"))  # and holding a lock
    try:
        pool.release(name)
        assert pool.free == [name]
    finally:
        leftover.invalidate()
        engine.dispose()
        for free in pool.free:
            pg_server.drop_database(free)
