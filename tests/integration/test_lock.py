"""The apply lock is per database: another registry's applies neither block nor get named."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from reconciler import db
from reconciler.apply import APPLY_LOCK_KEY, ApplyOptions, Hooks, acquire_lock, lock_holder

OTHER = "llm-registry apply 20261126T000000Z-0th3rdb0 mallory"
OURS = "llm-registry apply 20261126T010203Z-deadbeef bob"


def _hold(connection: Connection, application_name: str) -> None:
    connection.execute(text("SELECT set_config('application_name', :name, false)"), {"name": application_name})
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPLY_LOCK_KEY})


def test_a_holder_in_another_database_is_never_named(database_url: str, unmigrated_database_url: str) -> None:
    ours, other = db.create_engine(database_url), db.create_engine(unmigrated_database_url)
    try:
        with other.connect() as elsewhere, ours.connect() as asking:
            _hold(elsewhere, OTHER)
            assert lock_holder(asking) is None  # and, in the same transaction, a holder that comes later:
            with ours.connect() as here:
                _hold(here, OURS)
                holder = lock_holder(asking)
                here.rollback()
            assert holder is not None and holder.startswith("run 20261126T010203Z-deadbeef by bob, since ")
            elsewhere.rollback()
    finally:
        ours.dispose()
        other.dispose()


def test_a_lock_held_in_another_database_does_not_block(database_url: str, unmigrated_database_url: str) -> None:
    ours, other = db.create_engine(database_url), db.create_engine(unmigrated_database_url)
    waited: list[str] = []

    class Recording(Hooks):
        def waiting_for_lock(self, holder: str) -> None:
            waited.append(holder)

    try:
        with other.connect() as elsewhere, ours.connect() as connection:
            _hold(elsewhere, OTHER)
            with connection.begin():
                acquire_lock(connection, ApplyOptions(actor="alice", revision=None, lock_timeout=0), Recording())
                held = connection.execute(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid() "
                        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                    )
                ).scalar_one()
            elsewhere.rollback()
    finally:
        ours.dispose()
        other.dispose()
    assert waited == []
    assert held == 1
