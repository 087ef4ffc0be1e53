"""The registry as the page shows it: plain, display-ready data, never a key.

`build_registry_page` is pure (state and audit events in, `RegistryPage` out);
`gather_registry_page` is the I/O edge that reads them from PostgreSQL through
`state.read_state` and the `audit` readers, so that this module never names a column.

What a key looks like here: `ModelView.key_set`, a bool. Neither the ciphertext nor
the stored fingerprint reaches any of these dataclasses.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Collection, Iterable, Iterator, Mapping
from urllib.parse import urlsplit

from reconciler.gc_pause import collector_paused
from reconciler.schema_names import MODEL_CONNECTION_TESTED
from reconciler.spec import MODEL_TYPES, PARAMETER_FIELDS, PROVIDERS

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from reconciler.audit import StoredAuditEvent
    from reconciler.state import RegistryState

# How much history the page carries: enough for on-call, small enough for a CI artifact.
RECENT_EVENTS = 200
EVENTS_PER_MODEL = 10
TESTS_PER_MODEL = 5


@dataclass(frozen=True)
class EventView:
    """One audit event, display-ready. `details` is the recorded JSON (never a key: audit refuses one)."""

    id: int
    occurred_at: str
    run_id: str
    event_type: str
    model_name: str
    actor: str
    source_revision: str | None
    environment: str | None
    details: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ConnectionTestView:
    """One recorded connection test of a model (a MODEL_CONNECTION_TESTED event)."""

    occurred_at: str
    ok: bool
    status: str
    latency_ms: int | None
    message: str
    run_id: str


@dataclass(frozen=True)
class ModelView:
    """One model row as the page shows it."""

    name: str
    model_type: str
    provider: str
    model_id: str
    endpoint: str | None
    endpoint_host: str | None
    api_version: str | None
    description: str
    active: bool
    default: bool
    managed: bool
    managed_by: str | None
    key_set: bool
    parameters: tuple[tuple[str, str], ...]
    knowledge_bases: tuple[str, ...]
    tests: tuple[ConnectionTestView, ...]
    events: tuple[EventView, ...]

    @property
    def last_test(self) -> ConnectionTestView | None:
        """The most recent connection test, if any was recorded."""
        return self.tests[-1] if self.tests else None


@dataclass(frozen=True)
class RunView:
    """The events of one run (an apply or a `test`), with who ran it and from which revision."""

    run_id: str
    started_at: str
    actor: str
    source_revision: str | None
    environment: str | None
    events: tuple[EventView, ...]


@dataclass(frozen=True)
class RegistryPage:
    """Everything the registry page shows."""

    generated_at: str
    database: str
    models: tuple[ModelView, ...]
    runs: tuple[RunView, ...]
    model_types: tuple[str, ...] = MODEL_TYPES
    providers: tuple[str, ...] = PROVIDERS


def format_time(moment: datetime) -> str:
    """`2026-11-27 17:45:02Z`: UTC, to the second, as the audit command prints it."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def endpoint_parts(endpoint: str | None) -> tuple[str | None, str | None]:
    """(endpoint as it may be shown, host[:port]) of an API endpoint read from the database.

    The endpoint goes through `references.redact_endpoint` (a row made by hand may hold
    `https://user:pw@host/?api_key=...`: credentials become `***`); the host column
    shows the host and port only. An endpoint without a host gives no host.
    """
    from reconciler.references import redact_endpoint

    if not endpoint:
        return None, None
    shown = str(redact_endpoint(endpoint))
    try:
        parts = urlsplit(endpoint)
        host, port = parts.hostname, parts.port
    except ValueError:
        return shown, None
    if not host:
        return shown, None
    netloc = f"[{host}]" if ":" in host else host
    return shown, netloc if port is None else f"{netloc}:{port}"


def format_detail_value(value: Any) -> str:
    """A detail or parameter value as a reader reads it: strings bare, the rest as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _detail_lines(details: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """(label, text) per entry; MODEL_UPDATED's `changes` become one `field: before -> after` each."""
    lines: list[tuple[str, str]] = []
    for key in sorted(details):
        value = details[key]
        if key == "changes" and isinstance(value, Mapping):
            for field in sorted(value):
                change = value[field]
                if isinstance(change, Mapping) and {"before", "after"} <= set(change):
                    text = f"{format_detail_value(change['before'])} -> {format_detail_value(change['after'])}"
                else:
                    text = format_detail_value(change)
                lines.append((str(field), text))
        else:
            lines.append((str(key), format_detail_value(value)))
    return tuple(lines)


def event_view(event: "StoredAuditEvent") -> EventView:
    """An audit event as the page shows it."""
    return EventView(
        id=event.id,
        occurred_at=format_time(event.occurred_at),
        run_id=event.run_id,
        event_type=event.event_type,
        model_name=event.model_name,
        actor=event.actor,
        source_revision=event.source_revision,
        environment=getattr(event, "environment", None),
        details=_detail_lines(dict(event.details or {})),
    )


def connection_test_view(event: "StoredAuditEvent") -> ConnectionTestView:
    """A MODEL_CONNECTION_TESTED event as a test result."""
    details = dict(event.details or {})
    latency = details.get("latency_ms")
    return ConnectionTestView(
        occurred_at=format_time(event.occurred_at),
        ok=details.get("outcome") == "success",
        status=str(details.get("status") or details.get("outcome") or "unknown"),
        latency_ms=latency if isinstance(latency, int) and not isinstance(latency, bool) else None,
        message=str(details.get("message") or ""),
        run_id=event.run_id,
    )


def _runs(events: Iterable["StoredAuditEvent"]) -> tuple[RunView, ...]:
    """Events grouped by run, newest run first; a run's events oldest first."""
    by_run: dict[str, list[StoredAuditEvent]] = {}
    for event in sorted(events, key=lambda e: e.id):
        by_run.setdefault(event.run_id, []).append(event)
    runs = [
        RunView(
            run_id=run_id,
            started_at=format_time(run_events[0].occurred_at),
            actor=run_events[0].actor,
            source_revision=run_events[0].source_revision,
            environment=getattr(run_events[0], "environment", None),
            events=tuple(event_view(e) for e in run_events),
        )
        for run_id, run_events in by_run.items()
    ]
    runs.sort(key=lambda run: run.events[-1].id, reverse=True)
    return tuple(runs)


@collector_paused()
def build_registry_page(
    state: "RegistryState",
    *,
    recent_events: Iterable["StoredAuditEvent"] = (),
    model_events: Iterable["StoredAuditEvent"] = (),
    key_names: Collection[str] = frozenset(),
    database: str = "",
    generated_at: datetime | None = None,
) -> RegistryPage:
    """The page's data from the registry state and audit events (pure).

    `recent_events` feed the page of runs; `model_events` (any order, any mix of
    types) give each model its events and its connection tests, matched by row id
    (so a renamed model keeps its history) or, for events without one, by name.
    `key_names` (`state.stored_key_names`) names the rows that hold a key without a
    fingerprint (rows from the old admin page): they have a key all the same.
    """
    # A row's events carry its id whatever name it had then (renames keep the id); an
    # event without an id (a failed create's test) belongs to the row of its name.
    by_id: dict[str, list[StoredAuditEvent]] = {}
    by_name: dict[str, list[StoredAuditEvent]] = {}
    for event in sorted(model_events, key=lambda e: e.id):
        if event.model_id is not None:
            by_id.setdefault(str(event.model_id), []).append(event)
        else:
            by_name.setdefault(event.model_name, []).append(event)
    models = []
    for model in state.models:
        record = model.record
        endpoint, host = endpoint_parts(record.get("api_endpoint"))
        history = sorted([*by_id.get(model.id, []), *by_name.get(model.name, [])], key=lambda e: e.id)
        tests = [e for e in history if e.event_type == MODEL_CONNECTION_TESTED][-TESTS_PER_MODEL:]
        models.append(
            ModelView(
                name=model.name,
                model_type=str(record.get("type")),
                provider=str(record.get("provider")),
                model_id=str(record.get("model_id")),
                endpoint=endpoint,
                endpoint_host=host,
                api_version=record.get("api_version"),
                description=str(record.get("description") or ""),
                active=bool(record.get("is_active")),
                default=bool(record.get("is_default")),
                managed=model.managed,
                managed_by=model.managed_by,
                key_set=record.get("api_key") is not None or model.name in key_names,
                parameters=tuple(
                    (field, format_detail_value(record[field]))
                    for field in PARAMETER_FIELDS
                    if record.get(field) is not None
                ),
                knowledge_bases=state.kbs_using(model.id),
                tests=tuple(connection_test_view(e) for e in tests),
                events=tuple(event_view(e) for e in history[-EVENTS_PER_MODEL:]),
            )
        )
    return RegistryPage(
        generated_at=format_time(generated_at or datetime.now(timezone.utc)),
        database=database,
        models=tuple(models),
        runs=_runs(recent_events),
    )


def gather_registry_page(connection: "Connection", *, database: str = "") -> RegistryPage:
    """Read the registry and its recent audit trail from PostgreSQL into a `RegistryPage`.

    Run it inside one REPEATABLE READ transaction so that models, KBs and events agree;
    it only reads. `database` is the display form of the URL (password masked).
    """
    from reconciler.audit import read_audit_events, read_latest_events_by_model
    from reconciler.state import read_state, stored_key_names

    state = read_state(connection)
    recent = read_audit_events(connection, limit=RECENT_EVENTS)
    latest = read_latest_events_by_model(connection, limit_per_model=EVENTS_PER_MODEL)
    tests = read_latest_events_by_model(
        connection, limit_per_model=TESTS_PER_MODEL, event_type=MODEL_CONNECTION_TESTED
    )
    seen = {event.id for event in latest}
    return build_registry_page(
        state,
        recent_events=recent,
        model_events=[*latest, *(event for event in tests if event.id not in seen)],
        key_names=stored_key_names(connection),
        database=database,
    )


def display_database(engine: "Engine") -> str:
    """The engine's database as the page names it: `postgresql://user:***@host/db` (password masked)."""
    from reconciler.db import masked_url

    return masked_url(engine.url.set(drivername="postgresql"))


@contextlib.contextmanager
def read_only_transaction(engine: "Engine") -> Iterator["Connection"]:
    """A connection in one READ ONLY, REPEATABLE READ transaction, rolled back at the end.

    The page only reads; PostgreSQL refuses any write in this transaction
    (`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`), so a bug here cannot change
    the registry. REPEATABLE READ gives every query of one page the same snapshot.
    """
    with engine.connect() as connection:
        # Set before the first statement: the transaction SQLAlchemy then begins is read-only.
        connection.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        try:
            yield connection
        finally:
            connection.rollback()
