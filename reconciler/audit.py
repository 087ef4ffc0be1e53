"""The audit trail: one append-only row in registry_audit_events per change or connection test.

`apply` builds `AuditEvent`s and writes them with `write_audit_events` inside its own
transaction, so an apply that rolls back leaves no audit record of changes that did
not happen. `llm-registry audit` reads them back with `read_audit_events`.

Details never hold a key: an API key change is recorded as `{"api_key": "changed"}`.
`write_audit_events` refuses an `api_key` detail that is anything but a marker.
"""

from __future__ import annotations

import getpass
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from reconciler.schema_names import (  # noqa: F401 - the event types, re-exported for audit's readers
    AUDIT_EVENT_TYPES,
    MODEL_CONNECTION_TESTED,
    MODEL_CREATED,
    MODEL_DELETED,
    MODEL_UPDATED,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from reconciler.connection import ConnectionResult

# The only words an `api_key` entry of `details` may hold: a marker, or markers joined by
# " -> " ("(none) -> (set)"), or a mapping/list of those. Never a value.
API_KEY_MARKERS: frozenset[str] = frozenset(
    {"changed", "set", "removed", "unchanged", "none", "(set)", "(none)", "(known at apply)"}
)


@dataclass(frozen=True)
class AuditEvent:
    """One event to record.

    `details` by event type (a convention, the table takes any JSON object):
    MODEL_CREATED the created fields; MODEL_UPDATED `{"changes": {field: {"before", "after"}}}`
    with the changed fields only; MODEL_DELETED `{"knowledge_bases": [...]}`;
    MODEL_CONNECTION_TESTED `{"outcome", "latency_ms", "message"}`.
    """

    event_type: str
    model_name: str
    model_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.event_type not in AUDIT_EVENT_TYPES:
            raise ValueError(f"unknown audit event type {self.event_type!r}; expected one of {AUDIT_EVENT_TYPES}")
        _refuse_key_values(self.details)


@dataclass(frozen=True)
class StoredAuditEvent:
    """One row of registry_audit_events, as `read_audit_events` returns it."""

    id: int
    occurred_at: datetime
    run_id: str
    event_type: str
    model_name: str
    model_id: str | None
    actor: str
    source_revision: str | None
    details: Mapping[str, Any]
    environment: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The event as `audit --format json` prints it: every column, always every key (docs/audit.md).

        `occurred_at` is ISO 8601 in UTC; absent values are null, never missing keys.
        """
        return {
            "id": self.id,
            "occurred_at": self.occurred_at.astimezone(timezone.utc).isoformat(),
            "run_id": self.run_id,
            "event_type": self.event_type,
            "model_name": self.model_name,
            "model_id": self.model_id,
            "actor": self.actor,
            "source_revision": self.source_revision,
            "environment": self.environment,
            "details": dict(self.details),
        }


def _only_markers(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, str):
        return all(part.strip() in API_KEY_MARKERS for part in value.split("->"))
    if isinstance(value, Mapping):
        return all(_only_markers(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return all(_only_markers(item) for item in value)
    return False


_SCALARS = (str, int, float, type(None))


def _refuse_key_values(value: Any) -> None:
    """Refuse `api_key` entries that are not markers: a key must never reach the audit table."""
    if isinstance(value, _SCALARS):
        return
    if isinstance(value, dict) or isinstance(value, Mapping):  # dict first: the Mapping ABC check is slower
        if "api_key" in value and not _only_markers(value["api_key"]):
            # Say where, not what: the value may be a key.
            raise ValueError(f"an audit record's api_key detail may only hold {sorted(API_KEY_MARKERS)}, never a value")
        items = value.values()
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        return
    # Most entries are scalars (a created model's configuration): only containers are walked.
    for item in [item for item in items if not isinstance(item, _SCALARS)]:
        _refuse_key_values(item)


def connection_tested_event(result: "ConnectionResult", model_id: str | None) -> AuditEvent:
    """The MODEL_CONNECTION_TESTED event of one test, as `apply` and `test --from-db` record it."""
    return AuditEvent(
        MODEL_CONNECTION_TESTED,
        result.name,
        model_id,
        {
            "outcome": "success" if result.ok else "failure",
            "status": result.status,
            "latency_ms": result.latency_ms,
            "message": result.message,
        },
    )


def record_aborted_tests(
    connection: "Connection",
    results: Iterable["ConnectionResult"],
    model_ids: Mapping[str, str | None],
    *,
    run_id: str,
    actor: str,
    source_revision: str | None,
) -> int:
    """Record the connection tests of an apply that they aborted, in a short transaction of its own.

    Call it after the apply's transaction was rolled back: only these events are
    written (`details.apply` says the run was aborted), committed at once, so the
    trail shows every attempt, success or failure (the story's AC), and nothing else
    of the run. The caller's connection must not be in a transaction.
    """
    events = [
        AuditEvent(event.event_type, event.model_name, event.model_id, {**event.details, "apply": "aborted: connection tests failed"})
        for event in (connection_tested_event(result, model_ids.get(result.name)) for result in results)
    ]
    with connection.begin():
        return write_audit_events(connection, events, run_id=run_id, actor=actor, source_revision=source_revision)


def new_run_id() -> str:
    """A run id that sorts by time and is unique: `20261126T034100Z-1a2b3c4d`."""
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def default_actor(environ: Mapping[str, str] | None = None) -> str:
    """Who runs the command: `LLM_REGISTRY_ACTOR`, the CI's user (`GITHUB_ACTOR`), else the login name."""
    environ = os.environ if environ is None else environ
    for name in ("LLM_REGISTRY_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN"):
        if environ.get(name):
            return environ[name]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def write_audit_events(
    connection: "Connection",
    events: Iterable[AuditEvent],
    *,
    run_id: str,
    actor: str,
    source_revision: str | None,
    environment: str | None = None,
) -> int:
    """COPY the events (one statement) in the caller's transaction; returns how many.

    `environment` is the run's `--environment` (NULL when none was named).

    `occurred_at` is the column default, `clock_timestamp()`: the moment of the insert,
    so events of consecutive runs are in order whatever their transactions waited for.
    Nothing is committed here.
    """
    columns = ("run_id", "event_type", "model_name", "model_id", "actor", "source_revision", "environment", "details")
    rows = [
        (run_id, event.event_type, event.model_name, event.model_id, actor, source_revision, environment, event.details)
        for event in events
    ]
    if rows:
        _copy_rows(connection, columns, rows)
    return len(rows)


def _copy_rows(connection: "Connection", columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """COPY the rows into registry_audit_events, `details` (the last column) as JSON: one round
    trip, whatever their number (an apply of 10,000 models writes 10,000 events; executemany
    took ~1 s of it)."""
    import json

    from reconciler.db import driver_cursor

    encode = json.JSONEncoder().encode  # json.dumps's defaults, one encoder for every row
    with driver_cursor(connection) as cursor:
        with cursor.copy(f"COPY registry_audit_events ({', '.join(columns)}) FROM STDIN") as copy:
            for *values, details in rows:
                copy.write_row((*values, encode(dict(details))))


def read_audit_events(
    connection: "Connection",
    *,
    model: str | None = None,
    since: datetime | None = None,
    run_id: str | None = None,
    limit: int | None = None,
    until: datetime | None = None,
    event_types: Sequence[str] = (),
    actors: Sequence[str] = (),
    environment: str | None = None,
) -> list[StoredAuditEvent]:
    """The recorded events, oldest first, filtered; every filter given must hold.

    `model` follows the model through renames: the events of every row id ever
    recorded under that name (or the id of the row that has it now), whatever name
    each event carries, plus events under the name without an id. `since` and `until`
    are inclusive; `event_types` and `actors` match any of theirs. With `limit`, the
    newest `limit` matching events (still oldest first).
    """
    from sqlalchemy import or_, select

    from reconciler.tables import llm_models
    from reconciler.tables import registry_audit_events as events

    query = select(events)
    if model is not None:
        ids = select(events.c.model_id).where(events.c.model_name == model, events.c.model_id.is_not(None))
        current = select(llm_models.c.id).where(llm_models.c.name == model)
        query = query.where(
            or_(events.c.model_name == model, events.c.model_id.in_(ids), events.c.model_id.in_(current))
        )
    if since is not None:
        query = query.where(events.c.occurred_at >= _aware(since))
    if until is not None:
        query = query.where(events.c.occurred_at <= _aware(until))
    if event_types:
        query = query.where(events.c.event_type.in_(list(event_types)))
    if actors:
        query = query.where(events.c.actor.in_(list(actors)))
    if environment is not None:
        query = query.where(events.c.environment == environment)
    if run_id is not None:
        query = query.where(events.c.run_id == run_id)
    if limit is not None:
        newest = query.order_by(events.c.id.desc()).limit(limit).subquery()
        query = select(newest)
        order = newest.c.id
    else:
        order = events.c.id
    rows = connection.execute(query.order_by(order)).mappings()
    return [_stored_event(row) for row in rows]


def read_latest_events_by_model(
    connection: "Connection", *, limit_per_model: int, event_type: str | None = None
) -> list[StoredAuditEvent]:
    """The newest `limit_per_model` events of every row in llm_models (of `event_type` if given), oldest first.

    A row's events are those recorded with its id, under whatever name the row had
    then (a rename keeps the id, so its history follows it), and those recorded under
    its current name without an id (a create whose connection test failed). Events of
    rows no longer in the table are not included. One query whatever the number of rows:
    a LATERAL join on the (model_id, id) and (model_name, id) indexes.
    """
    from sqlalchemy import select, true, union_all

    from reconciler.tables import llm_models
    from reconciler.tables import registry_audit_events as events

    rows = select(llm_models.c.id, llm_models.c.name).subquery()

    def newest(*conditions: Any) -> Any:
        query = select(events).where(*conditions)
        if event_type is not None:
            query = query.where(events.c.event_type == event_type)
        # Correlated to the outer row (the LATERAL join): without it, each would scan every row again.
        return query.order_by(events.c.id.desc()).limit(limit_per_model).correlate(rows)

    by_id = newest(events.c.model_id == rows.c.id)
    by_name = newest(events.c.model_id.is_(None), events.c.model_name == rows.c.name)
    both = union_all(by_id, by_name).subquery()
    latest = select(both).order_by(both.c.id.desc()).limit(limit_per_model).lateral()
    query = select(latest).select_from(rows.join(latest, true())).order_by(latest.c.id)
    return [_stored_event(row) for row in connection.execute(query).mappings()]


def _stored_event(row: Mapping[str, Any]) -> StoredAuditEvent:
    return StoredAuditEvent(
        id=row["id"],
        occurred_at=row["occurred_at"],
        run_id=row["run_id"],
        event_type=row["event_type"],
        model_name=row["model_name"],
        model_id=None if row["model_id"] is None else str(row["model_id"]),
        actor=row["actor"],
        source_revision=row["source_revision"],
        details=row["details"],
        environment=row["environment"],
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
