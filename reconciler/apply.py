"""Apply a plan: one locked, tested, audited transaction.

In this order, inside one transaction that is committed only at the very end:

1. take the registry's advisory lock (a second apply waits, naming the holder, and
   gives up after the lock timeout);
2. re-read the state and re-plan under the lock; for a saved plan, refuse one made for
   another database or environment (`planfile.check_saved_target`), and refuse unless
   the result is exactly the plan that was saved (`planfile.check_saved_plan`);
3. refuse a blocked plan (exit 3);
4. resolve every API key the registry references (all must be set) and the passphrase;
5. ask for confirmation (the caller decides how);
6. test the connection of every created or changed active model; one failure aborts;
7. write: defaults being cleared first, then deletes, updates and creates, so the
   one-default-per-type index holds after every statement;
8. write the audit events and commit (or, for a dry run, roll everything back).

Any failure on the way raises, and the transaction is rolled back: the database
and the audit table are exactly as they were.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from reconciler.audit import AuditEvent, connection_tested_event, new_run_id, record_aborted_tests, write_audit_events
from reconciler.connection import ConnectionResult, ConnectionTarget, run_connection_tests, target_from_model
from reconciler.db import INSUFFICIENT_PRIVILEGE, LOCK_NOT_AVAILABLE, ROLES_HINT, set_local_lock_timeout, sqlstate
from reconciler.errors import EXIT_BLOCKED, RegistryError
from reconciler.pipeline import plan_registry
from reconciler.plan import Plan
from reconciler.planfile import SavedPlan, check_saved_plan, check_saved_target
from reconciler.secrets import ENCRYPTION_KEY_ENV, encryption_passphrase, resolve_reference
from reconciler.spec import ModelDefinition, RegistrySpec, env_reference_name
from reconciler.state import read_state
from reconciler.target import database_identity
from reconciler.writes import write_changes

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

# Key of the transaction-level advisory lock that serialises applies:
# the first 8 bytes of sha256("llm-registry apply"), as a signed bigint.
APPLY_LOCK_KEY = int.from_bytes(hashlib.sha256(b"llm-registry apply").digest()[:8], "big", signed=True)
APPLICATION_NAME_PREFIX = "llm-registry apply"


@dataclass(frozen=True)
class ApplyOptions:
    """How to apply. `run_id`, `actor`, `revision` and `environment` go into every audit event."""

    actor: str
    revision: str | None
    environment: str | None = None
    run_id: str = field(default_factory=new_run_id)
    dry_run: bool = False
    skip_connection_tests: bool = False
    concurrency: int = 8
    timeout: float = 30.0
    lock_timeout: float = 60.0
    allow_delete_all: bool = False
    targets: tuple[str, ...] = ()  # --target: a partial run, recorded in every audit event
    # The plan's state and spec digests, for `--format json`; a saved plan always has them
    # checked. Without either, apply skips both (compute_plan's fingerprints=False).
    plan_digests: bool = False


@dataclass(frozen=True)
class ApplyOutcome:
    """What apply did (or, for a dry run, would have done)."""

    plan: Plan
    results: tuple[ConnectionResult, ...] = ()
    events: tuple[AuditEvent, ...] = ()
    committed: bool = False
    dry_run: bool = False
    declined: bool = False


class ConnectionTestsFailed(RegistryError):
    """At least one connection test failed: nothing was written but the attempts' audit events.

    `model_ids` maps the tested names to their existing row ids (None for creates);
    `recorded` says whether the attempts reached the audit trail.
    """

    def __init__(self, results: Sequence[ConnectionResult], model_ids: Mapping[str, str | None] | None = None) -> None:
        failed = [r for r in results if not r.ok]
        names = ", ".join(r.name for r in failed)
        super().__init__(f"{len(failed)} connection test{'s' * (len(failed) != 1)} failed ({names}); nothing was written")
        self.results = tuple(results)
        self.model_ids = dict(model_ids or {})
        self.recorded = False


class Hooks:
    """What apply tells its caller on the way; the CLI overrides these to print and prompt."""

    def waiting_for_lock(self, holder: str) -> None:
        """Another apply holds the lock; `holder` says who and since when."""

    def planned(self, plan: Plan) -> None:
        """The plan computed under the lock."""

    def confirm(self, plan: Plan) -> bool:
        """Whether to go on; the default approves (the CLI asks on a terminal)."""
        return True

    def testing(self, targets: Sequence[ConnectionTarget]) -> None:
        """Connection tests are about to run."""

    def tested(self, result: ConnectionResult) -> None:
        """One connection test finished."""


# ----------------------------------------------------------------------------- locking


def _lock_parts() -> tuple[int, int]:
    """The (classid, objid) under which pg_locks shows a bigint advisory lock."""
    unsigned = APPLY_LOCK_KEY & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF


def lock_holder(connection: "Connection") -> str | None:
    """Who holds the apply lock in this database: "run <id> by <actor> since <time>", or None."""
    from sqlalchemy import text

    classid, objid = _lock_parts()
    # pg_stat_activity is read once per transaction and then kept: apply asks again
    # after waiting, inside the same transaction, and must see who holds it now.
    connection.execute(text("SELECT pg_stat_clear_snapshot()"))
    row = connection.execute(
        text(
            "SELECT a.application_name, a.xact_start, a.usename, a.pid FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :classid AND l.objid = :objid "
            # Advisory locks are per database: a holder in another registry's database
            # does not block us and must never be named.
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.objsubid = 1 AND l.pid <> pg_backend_pid() LIMIT 1"
        ),
        {"classid": classid, "objid": objid},
    ).first()
    if row is None:
        return None
    application, since, user, pid = row
    if application and application.startswith(APPLICATION_NAME_PREFIX + " "):
        run_id, _, actor = application[len(APPLICATION_NAME_PREFIX) + 1 :].partition(" ")
        who = f"run {run_id} by {actor or 'unknown'}"
    else:
        who = f"{application or 'a session'} (database user {user}, pid {pid})"
    when = since.isoformat(timespec="seconds") if since else "an unknown time"
    return f"{who}, since {when}"


def acquire_lock(connection: "Connection", options: ApplyOptions, hooks: Hooks) -> None:
    """Take the apply lock for this transaction, waiting at most `options.lock_timeout` seconds."""
    from sqlalchemy import text

    # Name this session so that a waiting apply can say who holds the lock.
    label = f"{APPLICATION_NAME_PREFIX} {options.run_id} {options.actor}"[:63]  # PostgreSQL keeps 63 bytes
    connection.execute(text("SELECT set_config('application_name', :label, true)"), {"label": label})
    try_lock = text("SELECT pg_try_advisory_xact_lock(:key)")
    if connection.execute(try_lock, {"key": APPLY_LOCK_KEY}).scalar():
        return
    holder = lock_holder(connection) or "another session"
    hooks.waiting_for_lock(holder)
    deadline = time.monotonic() + options.lock_timeout
    while time.monotonic() < deadline:
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        if connection.execute(try_lock, {"key": APPLY_LOCK_KEY}).scalar():
            return
    holder = lock_holder(connection) or holder
    raise RegistryError(
        f"another apply holds the registry lock ({holder}); gave up after {options.lock_timeout:g} s "
        "(--lock-timeout). Nothing was written"
    )


# ----------------------------------------------------------------------------- keys


def resolve_keys(registry: RegistrySpec, environ: Mapping[str, str]) -> tuple[dict[str, str], str | None]:
    """Every referenced API key, and the passphrase when any key exists.

    Apply needs them all (to compare, store and test), so an unset variable is an
    error naming every missing one — before anything is written.
    """
    keys: dict[str, str] = {}
    missing: dict[str, list[str]] = {}
    values: dict[str, str | None] = {}  # many models share one reference: resolve each once
    for model in registry.models:
        if model.api_key is None:
            continue
        if model.api_key not in values:
            values[model.api_key] = resolve_reference(model.api_key, environ)
        value = values[model.api_key]
        if value is None:
            missing.setdefault(env_reference_name(model.api_key) or "?", []).append(model.name)
        else:
            keys[model.name] = value
    if missing:
        listing = "; ".join(f"{var} (for {', '.join(names)})" for var, names in sorted(missing.items()))
        raise RegistryError(f"API key variables are not set: {listing}. Apply needs every key; nothing was written")
    passphrase = encryption_passphrase(environ) if keys else None
    return keys, passphrase


def _test_targets(plan: Plan, registry: RegistrySpec, keys: Mapping[str, str]) -> list[ConnectionTarget]:
    models: dict[str, ModelDefinition] = registry.by_name()
    return [
        target_from_model(models[action.name], keys.get(action.name))
        for action in plan.actions
        if action.kind in ("create", "update") and action.desired is not None and action.desired["is_active"]
    ]


# ----------------------------------------------------------------------------- the run


def apply_registry(
    connection: "Connection",
    registry: RegistrySpec,
    environ: Mapping[str, str],
    options: ApplyOptions,
    hooks: Hooks | None = None,
    saved: SavedPlan | None = None,
) -> ApplyOutcome:
    """Run the whole apply on `connection` (which must not be in a transaction yet).

    Commits on success; rolls back for a dry run, a declined confirmation, a blocked
    plan (raises RegistryError with exit code 3) or any failure (re-raised).
    """
    hooks = hooks or Hooks()
    from reconciler.db import require_schema_at_head

    transaction = connection.begin()
    try:
        # No lock wait of ours (a row another session holds, a migration's table lock)
        # outlasts --lock-timeout; the advisory lock is polled by acquire_lock.
        set_local_lock_timeout(connection, options.lock_timeout)
        require_schema_at_head(connection)
        acquire_lock(connection, options, hooks)
        state = read_state(connection)
        keys, passphrase = resolve_keys(registry, environ)
        plan = plan_registry(
            registry, state, environ, allow_delete_all=options.allow_delete_all, targets=options.targets,
            fingerprints=options.plan_digests or saved is not None,
        ).plan
        if saved is not None:
            check_saved_target(saved, database_identity(connection), options.environment)
            check_saved_plan(saved, plan)
        hooks.planned(plan)
        if plan.is_blocked:
            raise RegistryError("the plan holds blocked changes (see above); nothing was written", EXIT_BLOCKED)
        if not plan.has_changes:
            transaction.rollback()
            return ApplyOutcome(plan, dry_run=options.dry_run)
        if not hooks.confirm(plan):
            transaction.rollback()
            return ApplyOutcome(plan, declined=True, dry_run=options.dry_run)

        results: list[ConnectionResult] = []
        if not options.skip_connection_tests:
            targets = _test_targets(plan, registry, keys)
            hooks.testing(targets)
            results = run_connection_tests(targets, concurrency=options.concurrency, timeout=options.timeout, on_result=hooks.tested)
            if any(not r.ok for r in results):
                raise ConnectionTestsFailed(results, {a.name: a.model_id for a in plan.actions})

        events = write_changes(connection, plan, state, keys, passphrase, {r.name: r for r in results}, options.skip_connection_tests)
        ids = {event.model_name: event.model_id for event in events}
        events = [connection_tested_event(r, ids.get(r.name)) for r in results] + events
        if options.targets:  # a partial run says so in the audit trail
            events = [replace(event, details={**event.details, "targets": list(options.targets)}) for event in events]
        write_audit_events(
            connection, events, run_id=options.run_id, actor=options.actor, source_revision=options.revision,
            environment=options.environment,
        )  # fmt: skip
        if options.dry_run:
            transaction.rollback()
        else:
            transaction.commit()
        return ApplyOutcome(plan, tuple(results), tuple(events), committed=not options.dry_run, dry_run=options.dry_run)
    except BaseException as error:
        _rollback_quietly(transaction)
        from sqlalchemy.exc import DBAPIError

        if isinstance(error, ConnectionTestsFailed) and not options.dry_run:
            error.recorded = _record_aborted_tests(connection, error, options)
        if isinstance(error, DBAPIError):
            raise _database_failure(error, options.lock_timeout) from None
        raise


def _record_aborted_tests(connection: "Connection", failed: ConnectionTestsFailed, options: ApplyOptions) -> bool:
    """The failed run's test attempts into the audit trail, after the rollback; False if that failed too."""
    from sqlalchemy.exc import DBAPIError

    try:
        record_aborted_tests(
            connection, failed.results, failed.model_ids,
            run_id=options.run_id, actor=options.actor, source_revision=options.revision,
        )
    except DBAPIError:
        return False
    return True


def _database_failure(error: Any, lock_timeout: float | None = None) -> RegistryError:
    """A database error mid-apply, as one clean line (parameters are never part of it)."""
    if sqlstate(error) == LOCK_NOT_AVAILABLE:
        waited = f" for {lock_timeout:g} s (--lock-timeout)" if lock_timeout is not None else ""
        return RegistryError(
            f"another session holds a lock apply needs (a registry row or table) and did not release it{waited}; "
            "the transaction was rolled back, nothing was written"
        )
    original = getattr(error, "orig", None) or error
    first_line = (str(original).strip().splitlines() or [type(original).__name__])[0]
    hint = f"; {ROLES_HINT}" if sqlstate(error) == INSUFFICIENT_PRIVILEGE else ""
    return RegistryError(
        f"database error during apply ({first_line}); the transaction was rolled back, nothing was written{hint}"
    )


def _rollback_quietly(transaction: Any) -> None:
    # The connection may be gone (killed, network): then the server has already rolled
    # back, and the original error is the one worth reporting.
    from sqlalchemy.exc import DBAPIError

    try:
        if transaction.is_active:
            transaction.rollback()
    except DBAPIError:
        pass

