"""apply_registry and its lock as a library caller sees them: who is named, what the defaults do, how a run ends."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from reconciler.apply import (
    APPLY_LOCK_KEY,
    ApplyOptions,
    ConnectionTestsFailed,
    Hooks,
    acquire_lock,
    apply_registry,
    lock_holder,
)
from reconciler.errors import EXIT_BLOCKED, RegistryError
from tests.cli.applyutil import APPLY_ENV, models_by_name, snapshot, story_models
from tests.factories import CANARY_KEY, generation_model, registry

pytestmark = pytest.mark.db


def _hold(connection: Connection, application_name: str) -> int:
    """Take the apply lock in `connection`'s transaction under that application name; its backend pid."""
    connection.execute(text("SELECT set_config('application_name', :name, false)"), {"name": application_name})
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPLY_LOCK_KEY})
    return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _lock_is_free(engine: Engine) -> bool:
    """Whether another session can take the apply lock right now (released again at once)."""
    with engine.connect() as other:
        taken = bool(other.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": APPLY_LOCK_KEY}).scalar())
        other.rollback()
    return taken


class Recording(Hooks):
    """Hooks that remember who apply waited for, and answer the confirmation with `approve`."""

    def __init__(self, approve: bool = True) -> None:
        self.approve = approve
        self.waited: list[str] = []

    def waiting_for_lock(self, holder: str) -> None:
        self.waited.append(holder)

    def confirm(self, plan: Any) -> bool:
        return self.approve


@pytest.mark.parametrize(
    ("application", "named"),
    [
        ("psql", "psql (database user {user}, pid {pid}), since "),
        ("", "a session (database user {user}, pid {pid}), since "),
        ("llm-registry apply 20261127T000000Z-0a1b2c3d", "run 20261127T000000Z-0a1b2c3d by unknown, since "),
    ],
    ids=["another-program", "no-application-name", "apply-without-actor"],
)
def test_a_holder_is_named_for_what_it_is(engine: Engine, application: str, named: str) -> None:
    with engine.connect() as holder, engine.connect() as asking:
        pid = _hold(holder, application)
        user = holder.execute(text("SELECT current_user")).scalar_one()
        described = lock_holder(asking)
        holder.rollback()
    assert described is not None and described.startswith(named.format(user=user, pid=pid)), described


def test_giving_up_names_the_session_that_holds_the_lock_then_not_the_first_one(engine: Engine) -> None:
    """The first holder lets go while we wait, and a queued session gets the lock: the error names that one."""
    release_second = threading.Event()
    second_holds = threading.Event()

    def second_session() -> None:
        with engine.connect() as second:
            _hold(second, "llm-registry apply 20261127T000002Z-00000002 bob")  # queues behind the first
            second_holds.set()
            release_second.wait(60)
            second.rollback()

    first = engine.connect()
    _hold(first, "llm-registry apply 20261127T000001Z-00000001 alice")
    queued = threading.Thread(target=second_session)
    queued.start()
    try:
        with engine.connect() as probe:  # the second session is waiting for the lock
            for _ in range(600):
                if probe.execute(text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                )).scalar_one():
                    break
                probe.rollback()
                time.sleep(0.05)

        class ReleasingFirst(Recording):
            def waiting_for_lock(self, holder: str) -> None:
                super().waiting_for_lock(holder)
                first.rollback()  # the lock goes straight to the queued second session

        hooks = ReleasingFirst()
        with engine.connect() as connection, connection.begin():
            with pytest.raises(RegistryError) as caught:
                acquire_lock(connection, ApplyOptions(actor="carol", revision=None, lock_timeout=1), hooks)
        assert second_holds.wait(30)
    finally:
        release_second.set()
        first.rollback()
        first.close()
        queued.join()
    assert [holder.split(", since ")[0] for holder in hooks.waited] == ["run 20261127T000001Z-00000001 by alice"]
    assert "another apply holds the registry lock (run 20261127T000002Z-00000002 by bob, since " in caught.value.message


def test_a_waiting_apply_polls_the_lock_a_few_times_a_second_not_in_a_busy_loop(engine: Engine) -> None:
    from sqlalchemy import event

    polls: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "pg_try_advisory_xact_lock" in statement:
            polls.append(statement)

    with engine.connect() as holder, engine.connect() as connection:
        _hold(holder, "llm-registry apply 20261127T000003Z-00000003 dave")
        event.listen(connection, "before_cursor_execute", count)
        with connection.begin(), pytest.raises(RegistryError):
            acquire_lock(connection, ApplyOptions(actor="erin", revision=None, lock_timeout=1), Recording())
        holder.rollback()
    # One at once, then one every 0.2 s until the second is up: at most 7 (fewer on a busy machine).
    assert 1 <= len(polls) <= 10


@pytest.mark.parametrize("run", ["nothing-to-do", "declined", "dry-run"])
def test_a_run_that_writes_nothing_ends_its_transaction_and_frees_the_lock(engine: Engine, fake_provider: Any, run: str) -> None:
    definitions = story_models(fake_provider)
    if run == "nothing-to-do":  # the database already holds the registry
        with engine.connect() as connection:
            apply_registry(connection, registry(*definitions), APPLY_ENV, ApplyOptions(actor="t", revision=None, skip_connection_tests=True))
    before = snapshot(engine)
    options = ApplyOptions(actor="t", revision=None, dry_run=run == "dry-run")
    with engine.connect() as connection:
        outcome = apply_registry(connection, registry(*definitions), APPLY_ENV, options, Recording(approve=run != "declined"))
        assert not connection.in_transaction()
        assert _lock_is_free(engine)
    assert (outcome.plan.has_changes, outcome.committed, outcome.declined, outcome.dry_run) == (
        run != "nothing-to-do", False, run == "declined", run == "dry-run"
    )
    if run == "dry-run":  # everything happened, tests and writes included, then the rollback
        assert [r.name for r in outcome.results] == ["gpt-4o-mini", "nomic-embed"]
        assert {e.event_type for e in outcome.events} == {"MODEL_CONNECTION_TESTED", "MODEL_CREATED"}
    else:
        assert outcome.events == () and outcome.results == ()
    assert snapshot(engine) == before


def test_by_default_apply_tests_every_connection_first(engine: Engine, fake_provider: Any) -> None:
    definitions = story_models(fake_provider)
    fake_provider.set_model("gpt-4o-mini", status=401, api_key="another-key")
    with engine.connect() as connection:
        with pytest.raises(ConnectionTestsFailed) as caught:
            apply_registry(connection, registry(*definitions), APPLY_ENV, ApplyOptions(actor="t", revision=None))
    assert [(r.name, r.ok) for r in caught.value.results] == [("gpt-4o-mini", False), ("nomic-embed", True)]
    assert models_by_name(engine) == {}


def test_by_default_at_most_eight_connection_tests_run_at_once(engine: Engine, fake_provider: Any) -> None:
    fake_provider.set_model("gpt-4o-mini", api_key=CANARY_KEY, latency=1.0)  # long enough for the tests to overlap
    leftover = fake_provider.max_in_flight  # requests an earlier test left unanswered (the server is the session's)
    definitions = [generation_model(name=f"gen-{index:02d}", api_endpoint=fake_provider.url) for index in range(12)]
    with engine.connect() as connection:
        outcome = apply_registry(connection, registry(*definitions), APPLY_ENV, ApplyOptions(actor="t", revision=None))
    assert outcome.committed and len(outcome.results) == 12
    assert fake_provider.max_in_flight <= leftover + 8


def test_by_default_apply_refuses_to_delete_every_model(engine: Engine, fake_provider: Any) -> None:
    definitions = story_models(fake_provider)
    with engine.connect() as connection:
        apply_registry(connection, registry(*definitions), APPLY_ENV, ApplyOptions(actor="t", revision=None, skip_connection_tests=True))
    before = snapshot(engine)
    with engine.connect() as connection:
        with pytest.raises(RegistryError) as caught:
            apply_registry(connection, registry(), APPLY_ENV, ApplyOptions(actor="t", revision=None, skip_connection_tests=True))
    assert caught.value.exit_code == EXIT_BLOCKED
    assert snapshot(engine) == before
