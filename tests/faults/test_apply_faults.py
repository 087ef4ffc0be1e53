"""Fault injection: apply interrupted at random points never leaves a half-applied registry.

Each trial starts `llm-registry apply` as a real process on a fresh database holding
an earlier version of the registry (so the plan creates, updates and deletes), hurts
it at a random moment -- kill -9, SIGINT, SIGTERM, pg_terminate_backend of its
session -- and then checks, once the server has let go of the session:

- the database is exactly as before (every row of every table) or exactly as a
  clean apply leaves it (same models, one audit event per change and per test);
- the audit rows match the models table (every event of the run names a row that
  exists with that id, or a delete of a row that is gone);
- the apply lock is free and no session of the apply is left.

Random moments come from a seed printed with each trial (`pytest -s` shows it; a
failure message repeats it): rerun one with LLM_REGISTRY_FAULT_SEED=<seed>. The number
of kill -9 trials is LLM_REGISTRY_FAULT_TRIALS (default 3, and a third as many of
each other fault; CI keeps the suite to a minute or two).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from sqlalchemy import text

from reconciler import db
from reconciler.apply import APPLY_LOCK_KEY
from tests.cli.applyutil import APPLY_ENV, snapshot
from tests.dbutil import insert_knowledge_base
from tests.factories import CANARY_KEY, embedding_model, generation_model, ner_model, write_registry_file
from tests.fakes.provider import FakeProvider

TRIALS = int(os.environ.get("LLM_REGISTRY_FAULT_TRIALS", "3"))
OTHER_TRIALS = max(1, TRIALS // 3)  # per signal, and for pg_terminate_backend
FIXED_SEED = os.environ.get("LLM_REGISTRY_FAULT_SEED")
# Columns that differ between two correct applies of the same registry.
VOLATILE = {"id", "created_at", "updated_at", "api_key", "api_key_encrypted", "occurred_at", "run_id", "model_id",
            "embedding_model_id", "generation_model_id", "applied_fingerprint"}
SESSION_GONE_WAIT = 60  # a hang guard, not a timing assertion


def seeds(count: int) -> list[int]:
    """Trial seeds: the fixed one when given, else fresh ones (printed by each trial)."""
    if FIXED_SEED:
        return [int(FIXED_SEED)]
    return [random.SystemRandom().randrange(1, 2**31) for _ in range(count)]


# --------------------------------------------------------------------------------- the registry


def version_one(fake: FakeProvider) -> list[dict[str, Any]]:
    """What the database holds before each trial (applied cleanly)."""
    models = [embedding_model(name=f"emb-{i:02d}", api_endpoint=fake.url, default=i == 0) for i in range(6)]
    models += [generation_model(name=f"gen-{i:02d}", api_endpoint=fake.url, default=i == 0) for i in range(6)]
    models += [ner_model(name="ner-old", api_endpoint=fake.url, default=True)]
    models += [generation_model(name="gen-gone", api_endpoint=fake.url)]
    return models


def version_two(fake: FakeProvider) -> list[dict[str, Any]]:
    """What each trial applies: updates, creates, a delete, a rename and a default moved."""
    models = [embedding_model(name=f"emb-{i:02d}", api_endpoint=fake.url, default=i == 1,
                              parameters={"batch_size": 64 if i % 2 else 32}) for i in range(6)]
    models += [generation_model(name=f"gen-{i:02d}", api_endpoint=fake.url, default=i == 0,
                                parameters={"temperature": 0.2 if i < 3 else 0.7}) for i in range(6)]
    models += [generation_model(name=f"gen-new-{i:02d}", api_endpoint=fake.url) for i in range(12)]
    models += [ner_model(name="ner-new", previous_names=["ner-old"], api_endpoint=fake.url, default=True)]
    return models  # gen-gone of version one is deleted


def serve(fake: FakeProvider, latency: float) -> None:
    fake.set_model("nomic-embed-text", dimensions=768, latency=latency)
    fake.set_model("gpt-4o-mini", api_key=CANARY_KEY, latency=latency)
    fake.set_model("gliner", latency=latency)


@dataclass
class Trial:
    """A database at version one, the directory of version two, and what 'after' looks like."""

    url: str
    engine: Any
    directory: Path
    before: dict[str, list[dict[str, Any]]]


def normalized(state: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """A snapshot without what differs between two correct runs (ids, times, run ids, ciphertext)."""
    models = sorted(tuple(sorted((k, str(v)) for k, v in row.items() if k not in VOLATILE)) for row in state["llm_models"])
    kbs = sorted(tuple(sorted((k, str(v)) for k, v in row.items() if k not in VOLATILE)) for row in state["knowledge_bases"])
    events = Counter((row["event_type"], row["model_name"]) for row in state["registry_audit_events"])
    return {"models": models, "kbs": kbs, "events": events}


@pytest.fixture
def make_trial(pg_server: Any, _migrated_databases: Any, tmp_path: Path, fake_provider: FakeProvider) -> Iterator[Callable[[], Trial]]:
    """Fresh databases at version one (each with a KB on a model), released at the end."""
    made: list[tuple[str, Any]] = []
    v1_dir = write_registry_file(tmp_path / "v1", version_one(fake_provider)).parent
    v2_dir = write_registry_file(tmp_path / "v2", version_two(fake_provider)).parent

    def make() -> Trial:
        name = _migrated_databases.acquire()
        url = pg_server.url_for(name)
        engine = db.create_engine(url)
        made.append((name, engine))
        done = run_apply(v1_dir, url, "--skip-connection-tests")
        assert done.returncode == 0, done.stdout + done.stderr
        with engine.begin() as connection:
            model_id = connection.execute(text("SELECT id FROM llm_models WHERE name = 'emb-00'")).scalar_one()
            insert_knowledge_base(connection, "kb-support", embedding_model_id=str(model_id))
        return Trial(url, engine, v2_dir, snapshot(engine))

    yield make
    for name, engine in made:
        engine.dispose()
        _migrated_databases.release(name)


def apply_argv(directory: Path, url: str) -> list[str]:
    return [sys.executable, "-m", "reconciler", "apply", str(directory), "--database-url", url, "--auto-approve",
            "--actor", "fault", "--revision", "f00d"]


def run_apply(directory: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **APPLY_ENV}
    return subprocess.run([*apply_argv(directory, url), *extra], capture_output=True, text=True, env=env, timeout=300, check=False)


def start_apply(directory: Path, url: str) -> subprocess.Popen[str]:
    env = {**os.environ, **APPLY_ENV}
    return subprocess.Popen(apply_argv(directory, url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


_AFTER: dict[str, dict[str, Any]] = {}  # fake provider URL -> normalized state (one reference run per session)
_DURATION: list[float] = []  # seconds the reference apply took: the range of the random moments


@pytest.fixture
def expected_after(make_trial: Callable[[], Trial], fake_provider: FakeProvider) -> dict[str, Any]:
    """The normalized state a clean apply of version two leaves."""
    if fake_provider.url not in _AFTER:
        reference = make_trial()
        serve(fake_provider, 0.0)
        started = time.monotonic()
        done = run_apply(reference.directory, reference.url)
        _DURATION.append(time.monotonic() - started)
        assert done.returncode == 0, done.stdout + done.stderr
        _AFTER[fake_provider.url] = normalized(snapshot(reference.engine))
    return _AFTER[fake_provider.url]


# --------------------------------------------------------------------------------- invariants


def apply_sessions(engine: Any) -> list[int]:
    """Sessions of an apply in this test's database (never anybody else's)."""
    with engine.connect() as connection:
        return list(
            connection.execute(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name LIKE 'llm-registry apply %' AND pid <> pg_backend_pid()"
                )
            ).scalars()
        )


def wait_until_sessions_gone(engine: Any, seed: int) -> None:
    deadline = time.monotonic() + SESSION_GONE_WAIT
    while apply_sessions(engine):
        assert time.monotonic() < deadline, f"seed {seed}: the apply's session outlived its process"
        time.sleep(0.05)


def assert_before_or_after(trial: Trial, after: dict[str, Any], seed: int, outcome: str) -> str:
    """'before' or 'after'; fails on anything in between. Also checks audit/models agreement and the lock."""
    wait_until_sessions_gone(trial.engine, seed)
    now = snapshot(trial.engine)
    if now == trial.before:
        state = "before"
    else:
        assert normalized(now) == after, f"seed {seed} ({outcome}): the database is neither before nor after the apply"
        state = "after"
        _audit_matches_models(trial.before, now, seed)
    with trial.engine.connect() as connection:
        free = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": APPLY_LOCK_KEY}).scalar_one()
        assert free, f"seed {seed}: the apply lock is still held"
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": APPLY_LOCK_KEY})
    return state


def _audit_matches_models(before: dict[str, list[dict[str, Any]]], state: dict[str, list[dict[str, Any]]], seed: int) -> None:
    rows = {str(row["id"]): row["name"] for row in state["llm_models"]}
    earlier = {row["id"] for row in before["registry_audit_events"]}
    new = [row for row in state["registry_audit_events"] if row["id"] not in earlier]
    runs = {row["run_id"] for row in new}
    assert len(runs) == 1, f"seed {seed}: the changes of one apply are in {len(runs)} runs"
    for event in new:
        if event["event_type"] in ("MODEL_CREATED", "MODEL_UPDATED"):
            assert rows.get(str(event["model_id"])) == event["model_name"], f"seed {seed}: {event['event_type']} of a missing row"
        elif event["event_type"] == "MODEL_DELETED":
            assert str(event["model_id"]) not in rows, f"seed {seed}: a deleted row is still there"


# --------------------------------------------------------------------------------- trials


_STARTUP: list[float] = []  # seconds Python takes to load the command's module, before any line of it runs


def python_startup() -> float:
    """How long `python -c "import reconciler.cli"` takes here (measured once): the moments
    that belong to the interpreter and its import system, not to the program."""
    if not _STARTUP:
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", "import reconciler.cli"], check=True, env={**os.environ, **APPLY_ENV})
        _STARTUP.append(time.monotonic() - started)
    return _STARTUP[0]


def _hurt_at_random(
    trial: Trial, after: dict[str, Any], fake: FakeProvider, seed: int, hurt: Callable[[subprocess.Popen[str]], None], label: str,
    *, after_startup: bool = False,
) -> tuple[str, int | None]:
    rng = random.Random(seed)
    latency = rng.choice([0.0, 0.05, 0.2])
    serve(fake, latency)
    # From "just started" (importing, locking) to past the commit: a clean run took
    # _DURATION on this machine, so a fifth of the moments fall after it. A signal the
    # program handles (SIGINT, SIGTERM) is sent once the interpreter has loaded it
    # (`after_startup`, twice the measured load time): before that, Python's own
    # default handling applies, which no program can change.
    earliest = 2 * python_startup() if after_startup else 0.0
    delay = rng.uniform(earliest, max(earliest, 1.25 * (_DURATION[0] if _DURATION else 6.0)) + latency)
    print(f"\n[fault] {label}: seed {seed}, provider latency {latency:g}s, after {delay:.2f}s")
    process = start_apply(trial.directory, trial.url)
    try:
        time.sleep(delay)
        if process.poll() is None:
            hurt(process)
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert "Traceback" not in stderr, f"seed {seed}: {stderr[-2000:]}"
    assert CANARY_KEY not in stdout + stderr
    state = assert_before_or_after(trial, after, seed, label)
    print(f"[fault] {label}: seed {seed}: exit {process.returncode}, database {state}")
    if process.returncode == 0:
        assert state == "after", f"seed {seed}: exit 0 but nothing was written"
    return state, process.returncode


@pytest.mark.parametrize("seed", seeds(TRIALS))
def test_kill_9_at_a_random_moment(seed: int, make_trial: Callable[[], Trial], expected_after: dict[str, Any], fake_provider: FakeProvider) -> None:
    trial = make_trial()
    state, code = _hurt_at_random(trial, expected_after, fake_provider, seed, lambda p: p.send_signal(signal.SIGKILL), "kill -9")
    assert code in (0, -signal.SIGKILL)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sigint_and_sigterm_at_a_random_moment(
    signum: int, make_trial: Callable[[], Trial], expected_after: dict[str, Any], fake_provider: FakeProvider
) -> None:
    for seed in seeds(OTHER_TRIALS):
        trial = make_trial()
        state, code = _hurt_at_random(
            trial, expected_after, fake_provider, seed, lambda p: p.send_signal(signum), signal.Signals(signum).name, after_startup=True
        )
        if signum == signal.SIGINT:
            # 130, or death by SIGINT itself (what a shell also shows as 130): Python
            # re-raises an interrupt that lands in interpreter shutdown, after the commit.
            assert code in (0, 130, -signal.SIGINT), f"seed {seed}: Ctrl-C should exit 130, not {code}"
            if code == -signal.SIGINT:
                assert state == "after", f"seed {seed}: killed by SIGINT before the work was done"
        else:
            assert code in (0, -signal.SIGTERM, 143), f"seed {seed}: exit {code}"


def test_our_backend_terminated_at_a_random_moment(
    make_trial: Callable[[], Trial], expected_after: dict[str, Any], fake_provider: FakeProvider
) -> None:
    for seed in seeds(OTHER_TRIALS):
        trial = make_trial()

        def terminate(process: subprocess.Popen[str]) -> None:
            with trial.engine.connect() as connection:
                for pid in apply_sessions(trial.engine):
                    connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

        state, code = _hurt_at_random(trial, expected_after, fake_provider, seed, terminate, "pg_terminate_backend")
        assert (code, state) in ((0, "after"), (1, "before")), f"seed {seed}: exit {code}, database {state}"


def test_concurrent_applies_apply_once(make_trial: Callable[[], Trial], expected_after: dict[str, Any], fake_provider: FakeProvider) -> None:
    trial = make_trial()
    serve(fake_provider, 0.2)
    processes = [start_apply(trial.directory, trial.url) for _ in range(3)]
    outputs = [process.communicate(timeout=300) for process in processes]
    codes = [process.returncode for process in processes]
    assert codes == [0, 0, 0], outputs
    applied = [out for out, _ in outputs if "Apply complete:" in out]
    unchanged = [out for out, _ in outputs if "No changes." in out]
    assert len(applied) == 1 and len(unchanged) == 2, outputs
    assert assert_before_or_after(trial, expected_after, 0, "concurrent") == "after"


def test_a_row_lock_held_by_another_session_delays_but_never_splits_the_apply(
    make_trial: Callable[[], Trial], expected_after: dict[str, Any], fake_provider: FakeProvider
) -> None:
    trial = make_trial()
    serve(fake_provider, 0.0)
    holder = trial.engine.connect()
    try:
        holder.execute(text("SELECT * FROM llm_models WHERE name = 'gen-00' FOR UPDATE"))
        process = start_apply(trial.directory, trial.url)
        # Wait until the apply is blocked on the row (or done, if it never needed it).
        deadline = time.monotonic() + 120
        blocked = False
        while time.monotonic() < deadline and process.poll() is None and not blocked:
            with trial.engine.connect() as probe:
                blocked = bool(
                    probe.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                            "AND application_name LIKE 'llm-registry apply %' AND wait_event_type = 'Lock'"
                        )
                    ).scalar_one()
                )
            time.sleep(0.05)
        assert snapshot_models_unchanged(trial), "a blocked apply made part of its changes visible"
        holder.rollback()
        stdout, stderr = process.communicate(timeout=300)
    finally:
        holder.close()
    assert process.returncode == 0, stdout + stderr
    assert blocked, "the apply never waited for the locked row"
    assert assert_before_or_after(trial, expected_after, 0, "row lock") == "after"


def snapshot_models_unchanged(trial: Trial) -> bool:
    return snapshot(trial.engine) == trial.before


def test_the_trial_registry_really_changes_every_kind(make_trial: Callable[[], Trial], expected_after: dict[str, Any]) -> None:
    trial = make_trial()
    before = normalized(trial.before)
    assert before != expected_after
    events = expected_after["events"] - before["events"]
    kinds = {kind for kind, _ in events}
    assert {"MODEL_CREATED", "MODEL_UPDATED", "MODEL_CONNECTION_TESTED"} <= kinds, kinds
