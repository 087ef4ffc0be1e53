"""Every failure path of apply leaves the database and the audit table exactly as they were."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from reconciler.apply import APPLY_LOCK_KEY
from tests.cli.applyutil import APPLY_ENV, models_by_name, snapshot, story_models
from tests.factories import CANARY_KEY, embedding_model, write_registry_file


def apply(run_cli: Any, target: Path, url: str, *args: str, env: dict[str, str | None] | None = None) -> Any:
    merged = {**APPLY_ENV, **(env or {})}
    return run_cli("apply", str(target), "--database-url", url, "--auto-approve", *args, env=merged)


def wait_for_apply_backend(engine: Any, timeout: float = 20) -> int:
    """The pid of the backend an apply is running on, once it has taken the lock."""
    deadline = time.monotonic() + timeout
    with engine.connect() as connection:
        while time.monotonic() < deadline:
            pid = connection.execute(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name LIKE 'llm-registry apply %' AND pid <> pg_backend_pid()"
                )
            ).scalar()
            if pid:
                return int(pid)
            connection.rollback()
            time.sleep(0.05)
    raise AssertionError("apply never took the lock")


def test_a_failed_connection_test_writes_nothing_but_the_attempts(run_cli: Any, registry_dir: Path, database_url: str, engine: Any, fake_provider: Any) -> None:
    fake_provider.set_model("gpt-4o-mini", status=401, api_key="another-key", echo="masked-openai")
    before = snapshot(engine)
    result = apply(run_cli, registry_dir, database_url)
    assert result.exit_code == 1
    assert "FAIL gpt-4o-mini" in result.stdout and "authentication_error" in result.stdout
    assert "1 connection test failed (gpt-4o-mini); nothing was written" in result.stderr
    assert CANARY_KEY not in result.output
    after = snapshot(engine)
    assert {table: rows for table, rows in after.items() if table != "registry_audit_events"} == {
        table: rows for table, rows in before.items() if table != "registry_audit_events"
    }
    # The attempts, success or failure, in a short transaction of their own after the rollback.
    events = after["registry_audit_events"]
    assert [(e["event_type"], e["model_name"], e["details"]["outcome"], e["details"]["status"]) for e in events] == [
        ("MODEL_CONNECTION_TESTED", "gpt-4o-mini", "failure", "authentication_error"),
        ("MODEL_CONNECTION_TESTED", "nomic-embed", "success", "ok"),
    ]
    assert len({e["run_id"] for e in events}) == 1 and f"llm-registry audit --run {events[0]['run_id']}" in result.stderr
    assert all(e["details"]["apply"] == "aborted: connection tests failed" and e["model_id"] is None for e in events)
    assert "Incorrect API key provided: ***" in events[0]["details"]["message"]
    assert CANARY_KEY[:8] not in str(events) and CANARY_KEY[-4:] not in events[0]["details"]["message"]


def test_a_row_lock_held_elsewhere_does_not_hold_apply_past_its_lock_timeout(run_cli: Any, tmp_path: Path, database_url: str, engine: Any, fake_provider: Any) -> None:
    models = story_models(fake_provider)
    directory = write_registry_file(tmp_path / "r", models).parent
    assert apply(run_cli, directory, database_url).exit_code == 0
    models[0]["description"] = "changed while a row is locked"
    write_registry_file(directory, models)
    before = snapshot(engine)
    holder = engine.connect()  # another session of this test's own database
    holder.execute(text("SELECT id FROM llm_models WHERE name = 'nomic-embed' FOR UPDATE"))
    release = threading.Timer(30, holder.rollback)  # without the bound, apply would wait for this, then succeed
    release.start()
    try:
        result = apply(run_cli, directory, database_url, "--lock-timeout", "1", "--skip-connection-tests")
    finally:
        release.cancel()
        holder.rollback()
        holder.close()
    assert result.exit_code == 1
    assert (
        "error: another session holds a lock apply needs (a registry row or table) and did not release it "
        "for 1 s (--lock-timeout); the transaction was rolled back, nothing was written"
    ) in result.stderr
    assert snapshot(engine) == before


def test_a_constraint_violation_midway_rolls_back_the_earlier_writes(run_cli: Any, tmp_path: Path, database_url: str, engine: Any, fake_provider: Any) -> None:
    models = story_models(fake_provider)
    # Creates run in name order: 'gpt-4o-mini', then 'nomic-embed' fails after the first insert.
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE llm_models ADD CONSTRAINT test_poison CHECK (name <> 'nomic-embed')"))
    before = snapshot(engine)
    result = apply(run_cli, write_registry_file(tmp_path / "r", models).parent, database_url)
    assert result.exit_code == 1
    assert "the database refused to create 'nomic-embed' (violates test_poison); nothing was written" in result.stderr
    assert snapshot(engine) == before


def _applied_with_poison(run_cli: Any, tmp_path: Path, database_url: str, engine: Any, fake_provider: Any) -> tuple[list[Any], Any, Path]:
    """The story's models and 'all-minilm', applied; then a CHECK that refuses the description 'poison'."""
    models = story_models(fake_provider)
    extra = embedding_model(name="all-minilm", api_endpoint=fake_provider.url)
    directory = write_registry_file(tmp_path / "r", [*models, extra]).parent
    assert apply(run_cli, directory, database_url, "--skip-connection-tests").exit_code == 0
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE llm_models ADD CONSTRAINT test_poison CHECK (description <> 'poison')"))
    return models, extra, directory


# The row-by-row replay after a refused set-based write: (the definitions to apply, made
# from the story's models and 'all-minilm'; the row the database refuses).
REPLAYS: dict[str, tuple[Any, str]] = {
    # 'all-minilm' deleted, 'gpt-4o-mini' updated, then 'nomic-embed' refused.
    "an update after a delete and an update": (
        lambda models, extra: [{**models[0], "description": "poison"}, {**models[1], "description": "fine"}], "nomic-embed",
    ),
    # 'nomic-embed' (the embedding default) deleted, 'all-minilm' made the default in its
    # place, then 'gpt-4o-mini' refused. Without the delete first the default would clash.
    "deletes before updates": (lambda models, extra: [{**extra, "default": True}, {**models[1], "description": "poison"}], "gpt-4o-mini"),
    # 'nomic-embed' stops being the default (its row alone), 'all-minilm' takes it, then 'gpt-4o-mini' is refused.
    "the old default's row alone, then a later row": (
        lambda models, extra: [{**models[0], "default": False}, {**extra, "default": True}, {**models[1], "description": "poison"}],
        "gpt-4o-mini",
    ),
    # The default moves from 'nomic-embed' (written first, as it stops being a default) to 'all-minilm'.
    "the old default's own row": (
        lambda models, extra: [{**models[0], "default": False, "description": "poison"}, models[1], {**extra, "default": True}],
        "nomic-embed",
    ),
}


@pytest.mark.parametrize(("definitions", "refused"), REPLAYS.values(), ids=REPLAYS.keys())
def test_the_replay_names_the_refused_row_and_writes_nothing(
    run_cli: Any, tmp_path: Path, database_url: str, engine: Any, fake_provider: Any, definitions: Any, refused: str
) -> None:
    models, extra, directory = _applied_with_poison(run_cli, tmp_path, database_url, engine, fake_provider)
    write_registry_file(directory, definitions(models, extra))
    before = snapshot(engine)
    result = apply(run_cli, directory, database_url, "--skip-connection-tests")
    assert result.exit_code == 1
    assert f"the database refused to update {refused!r} (violates test_poison); nothing was written" in result.stderr
    assert snapshot(engine) == before


def test_connection_killed_midway_writes_nothing(run_subprocess: Any, registry_dir: Path, database_url: str, engine: Any, fake_provider: Any) -> None:
    fake_provider.set_model("gpt-4o-mini", api_key=CANARY_KEY, latency=3.0)
    before = snapshot(engine)

    def kill_it() -> None:
        pid = wait_for_apply_backend(engine)
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    killer = threading.Thread(target=kill_it)
    killer.start()
    result = run_subprocess("apply", str(registry_dir), "--database-url", database_url, "--auto-approve", env=APPLY_ENV)
    killer.join()
    assert result.exit_code == 1, result.output
    assert "the transaction was rolled back, nothing was written" in result.stderr
    assert "Traceback" not in result.output and CANARY_KEY not in result.output
    assert snapshot(engine) == before


def test_a_second_apply_waits_for_the_lock_then_gives_up_naming_the_holder(run_cli: Any, registry_dir: Path, database_url: str, engine: Any) -> None:
    before = snapshot(engine)
    with engine.connect() as holder:
        holder.execute(text("SELECT set_config('application_name', 'llm-registry apply 20261126T010203Z-deadbeef bob', false)"))
        holder.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPLY_LOCK_KEY})
        started = time.monotonic()
        result = apply(run_cli, registry_dir, database_url, "--lock-timeout", "1")
        waited = time.monotonic() - started
        holder.rollback()
    assert result.exit_code == 1
    assert "Waiting for the registry lock, held by run 20261126T010203Z-deadbeef by bob, since " in result.stderr
    assert "another apply holds the registry lock (run 20261126T010203Z-deadbeef by bob" in result.stderr
    assert "gave up after 1 s (--lock-timeout). Nothing was written" in result.stderr
    assert waited >= 1.0
    assert snapshot(engine) == before


def test_an_apply_proceeds_once_the_lock_is_released(run_cli: Any, registry_dir: Path, database_url: str, engine: Any) -> None:
    holder = engine.connect()
    holder.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPLY_LOCK_KEY})
    threading.Timer(0.5, holder.rollback).start()
    result = apply(run_cli, registry_dir, database_url, "--lock-timeout", "10")
    holder.close()
    assert result.exit_code == 0, result.output
    assert "Waiting for the registry lock" in result.stderr
    assert set(models_by_name(engine)) == {"nomic-embed", "gpt-4o-mini"}


def test_a_saved_plan_is_applied_exactly(run_cli: Any, registry_dir: Path, tmp_path: Path, database_url: str, engine: Any) -> None:
    planfile = tmp_path / "registry.plan"
    planned = run_cli("plan", str(registry_dir), "--database-url", database_url, "--out", str(planfile), env=APPLY_ENV)
    assert planned.exit_code == 0, planned.output
    assert CANARY_KEY not in planfile.read_text()
    # Without a terminal, a saved plan needs no --auto-approve: it was reviewed when it was made.
    result = run_cli("apply", str(planfile), "--database-url", database_url, env=APPLY_ENV)
    assert result.exit_code == 0, result.output
    assert set(models_by_name(engine)) == {"nomic-embed", "gpt-4o-mini"}


def test_a_stale_plan_is_refused_when_the_database_moved(run_cli: Any, registry_dir: Path, tmp_path: Path, database_url: str, engine: Any) -> None:
    planfile = tmp_path / "registry.plan"
    run_cli("plan", str(registry_dir), "--database-url", database_url, "--out", str(planfile), env=APPLY_ENV)
    from tests.dbutil import insert_model

    with engine.begin() as connection:
        insert_model(connection, name="sneaked-in", managed_by=None)
    before = snapshot(engine)
    result = run_cli("apply", str(planfile), "--database-url", database_url, env=APPLY_ENV)
    assert result.exit_code == 1
    assert "plan is stale: re-run plan (the database has changed since the plan was made)" in result.stderr
    assert snapshot(engine) == before


def test_a_stale_plan_is_refused_when_a_key_changed(run_cli: Any, registry_dir: Path, tmp_path: Path, database_url: str, engine: Any) -> None:
    planfile = tmp_path / "registry.plan"
    run_cli("plan", str(registry_dir), "--database-url", database_url, "--out", str(planfile), env=APPLY_ENV)
    result = run_cli("apply", str(planfile), "--database-url", database_url, env={**APPLY_ENV, "OPENAI_API_KEY": "sk-another-key"})
    assert result.exit_code == 1
    assert "plan is stale: re-run plan (an API key is not the one the plan was made with)" in result.stderr
    assert models_by_name(engine) == {}


def test_a_plan_made_on_an_empty_database_is_stale_once_it_is_not(run_cli: Any, registry_dir: Path, tmp_path: Path, database_url: str, engine: Any) -> None:
    planfile = tmp_path / "registry.plan"
    run_cli("plan", str(registry_dir), "--database-url", database_url, "--out", str(planfile), env=APPLY_ENV)
    assert apply(run_cli, registry_dir, database_url).exit_code == 0
    before = snapshot(engine)
    result = run_cli("apply", str(planfile), "--database-url", database_url, env=APPLY_ENV)
    assert result.exit_code == 1 and "plan is stale" in result.stderr
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    ("unset", "message"),
    [
        ("LLM_REGISTRY_ENCRYPTION_KEY", "LLM_REGISTRY_ENCRYPTION_KEY is not set"),
        ("OPENAI_API_KEY", "API key variables are not set: OPENAI_API_KEY (for gpt-4o-mini)"),
    ],
)
def test_a_missing_secret_is_named_and_nothing_is_written(run_cli: Any, registry_dir: Path, database_url: str, engine: Any, monkeypatch: pytest.MonkeyPatch, unset: str, message: str) -> None:
    monkeypatch.delenv(unset, raising=False)
    before = snapshot(engine)
    env = {k: v for k, v in APPLY_ENV.items() if k != unset}
    result = run_cli("apply", str(registry_dir), "--database-url", database_url, "--auto-approve", env=env)
    assert result.exit_code == 1
    assert message in result.stderr
    assert snapshot(engine) == before


def test_ctrl_c_during_apply_writes_nothing(registry_dir: Path, database_url: str, engine: Any, fake_provider: Any) -> None:
    fake_provider.set_model("gpt-4o-mini", api_key=CANARY_KEY, latency=5.0)
    before = snapshot(engine)
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", str(registry_dir), "--database-url", database_url, "--auto-approve"],
        env={**os.environ, **APPLY_ENV}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for_apply_backend(engine)
        # Inside the connection tests once the slow model's request has arrived (a fixed
        # sleep would race LiteLLM's import on a busy machine).
        deadline = time.monotonic() + 120
        while fake_provider.request_count("gpt-4o-mini") == 0 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130, stdout + stderr
    assert "Interrupted." in stderr and "Traceback" not in stderr
    assert snapshot(engine) == before
