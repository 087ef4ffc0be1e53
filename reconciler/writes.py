"""The write stage of apply: the plan's deletes, updates and creates, set-based, and their audit events.

A constant number of statements per kind, whatever the number of models:

1. one UPDATE clearing `is_default` on rows that stop being a default (the partial
   unique index "one default per type" cannot be deferred, so an old default must be
   cleared before a new one is set);
2. one DELETE for every deleted row (`id = ANY(...)`);
3. one UPDATE ... FROM unnest(arrays) for every updated row (a key column is set only
   where the key changed);
4. one COPY into llm_models for every created row (ids made here, uuid4, so that no
   RETURNING is needed).

Each distinct API key is encrypted once per run (`secrets.stored_keys`), in this
process: no statement carries a key or the passphrase. Every created or updated row
gets `applied_fingerprint` (`state.applied_fingerprint`) of exactly what was written.

If the database refuses the set-based writes (a constraint), they are rolled back to a
savepoint and replayed row by row in the order above, in another savepoint: the first
row the database refuses is named in the error, as apply always did; and should the
row-by-row order succeed where the set-based one did not (one UPDATE checks unique
indexes row by row, in whatever order it visits the rows), its result stands.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from reconciler import MANAGED_BY
from reconciler.audit import AuditEvent
from reconciler.errors import RegistryError
from reconciler.gc_pause import collector_paused
from reconciler.plan import KEY_CHANGED, Action, Plan
from reconciler.references import redact_endpoint
from reconciler.schema_names import MODEL_CREATED, MODEL_DELETED, MODEL_UPDATED
from reconciler.secrets import StoredKey, store_passphrase_check, stored_keys
from reconciler.spec import PARAMETER_FIELDS, RECORD_FIELDS, yaml_field_name
from reconciler.state import RegistryState, applied_fingerprint

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from reconciler.connection import ConnectionResult


@dataclass(frozen=True)
class RowWrite:
    """One row to write: its action, its id (new for a create) and its column values.

    `values` are keyed by llm_models column; they hold `api_key`/`api_key_fingerprint`
    only when the key is written (every create, an update that changes the key).
    """

    action: Action
    model_id: str
    values: Mapping[str, Any]
    clears_default: bool = False

    def __repr__(self) -> str:  # values hold ciphertext: nothing worth printing
        return f"RowWrite({self.action.kind} {self.action.name!r})"


def _clears_default(action: Action) -> bool:
    return action.kind == "update" and any(c.field == "is_default" and c.before and not c.after for c in action.changes)


def write_order(plan: Plan) -> list[Action]:
    """Updates that clear a default first, then deletes, other updates, creates (each by name)."""
    clearing = [a for a in plan.actions if _clears_default(a)]
    rest = [a for a in plan.actions if not _clears_default(a)]
    order = {"delete": 0, "update": 1, "create": 2}
    return clearing + sorted(rest, key=lambda a: (order[a.kind], a.name))


def prepare_writes(
    plan: Plan, state: RegistryState, keys: Mapping[str, str], passphrase: str | None
) -> list[RowWrite]:
    """The rows to write, in write order, with every value computed (keys encrypted once each)."""
    from reconciler.tables import column_name

    order = write_order(plan)
    writes_key = {a.name for a in order if a.kind == "create" or (a.kind == "update" and "api_key" in a.changed_fields())}
    stored: dict[str, StoredKey] = stored_keys({name: keys[name] for name in writes_key if name in keys}, passphrase)
    rows = {row.id: row for row in state.models}
    columns = [(f, column_name(f)) for f in RECORD_FIELDS if f != "api_key"]
    writes = []
    for action in order:
        if action.kind == "delete":
            writes.append(RowWrite(action, action.model_id or "", {}))
            continue
        assert action.desired is not None
        record = dict(action.desired)
        key = stored.get(action.name)
        if action.name in writes_key:
            record["api_key"] = key.fingerprint if key else None
        else:
            record["api_key"] = rows[action.model_id or ""].record.get("api_key")
        values: dict[str, Any] = {column: record[f] for f, column in columns}
        values.update(name=action.name, managed_by=MANAGED_BY, applied_fingerprint=applied_fingerprint(action.name, record))
        if action.name in writes_key:
            values.update(api_key=key.ciphertext if key else None, api_key_fingerprint=record["api_key"])
        model_id = action.model_id if action.kind == "update" else str(uuid.uuid4())
        writes.append(RowWrite(action, model_id or "", values, _clears_default(action)))
    return writes


# ----------------------------------------------------------------------------- set-based


def _column_types() -> dict[str, str]:
    """SQL type of each llm_models column, for the casts of the unnest() arrays."""
    from sqlalchemy.dialects import postgresql

    from reconciler.tables import llm_models

    dialect = postgresql.dialect()
    return {column.name: column.type.compile(dialect=dialect) for column in llm_models.columns}


def _write_set_based(connection: "Connection", writes: Sequence[RowWrite]) -> None:
    """Steps 1-4 of the module docstring, on the driver's cursor (COPY needs it)."""
    from reconciler.db import driver_cursor

    with driver_cursor(connection) as cursor:
        clearing = [w.model_id for w in writes if w.clears_default]
        if clearing:
            cursor.execute("UPDATE llm_models SET is_default = false WHERE id = ANY(%s::uuid[])", (clearing,))
        deletes = [w.model_id for w in writes if w.action.kind == "delete"]
        if deletes:
            cursor.execute("DELETE FROM llm_models WHERE id = ANY(%s::uuid[])", (deletes,))
        updates = [w for w in writes if w.action.kind == "update"]
        if updates:
            _update_rows(cursor, updates)
        creates = [w for w in writes if w.action.kind == "create"]
        if creates:
            columns = ["id", *creates[0].values]
            with cursor.copy(f"COPY llm_models ({', '.join(columns)}) FROM STDIN") as copy:
                for write in creates:
                    copy.write_row([write.model_id, *write.values.values()])


def _update_rows(cursor: Any, updates: Sequence[RowWrite]) -> None:
    """One UPDATE ... FROM unnest(one array per column): key columns only where `set_key`."""
    types = _column_types()
    key_columns = ("api_key", "api_key_fingerprint")
    columns = [c for c in updates[0].values if c not in key_columns]
    arrays: list[list[Any]] = [[w.model_id for w in updates]]
    arrays += [[w.values[c] for w in updates] for c in columns]
    arrays += [[w.values.get(c) for w in updates] for c in key_columns]
    arrays.append([key_columns[0] in w.values for w in updates])
    names = ["id", *columns, *key_columns, "set_key"]
    sql_types = ["uuid", *(types[c] for c in columns), *(types[c] for c in key_columns), "boolean"]
    assignments = [f"{c} = s.{c}" for c in columns]
    assignments += [f"{c} = CASE WHEN s.set_key THEN s.{c} ELSE m.{c} END" for c in key_columns]
    cursor.execute(
        f"UPDATE llm_models AS m SET {', '.join(assignments)} "
        f"FROM unnest({', '.join(f'%s::{t}[]' for t in sql_types)}) AS s({', '.join(names)}) "
        "WHERE m.id = s.id",
        arrays,
    )


# ----------------------------------------------------------------------------- row by row


def _write_row_by_row(connection: "Connection", writes: Sequence[RowWrite]) -> None:
    """The same writes one statement each, naming the first row the database refuses."""
    from sqlalchemy import delete, insert, update
    from sqlalchemy.exc import IntegrityError

    from reconciler.tables import llm_models

    for write in writes:
        action = write.action
        try:
            if write.clears_default:
                # as in the set-based order: every clearing row first (writes begin with them)
                connection.execute(update(llm_models).where(llm_models.c.id == write.model_id).values(**write.values))
            elif action.kind == "delete":
                connection.execute(delete(llm_models).where(llm_models.c.id == write.model_id))
            elif action.kind == "update":
                connection.execute(update(llm_models).where(llm_models.c.id == write.model_id).values(**write.values))
            else:
                connection.execute(insert(llm_models).values(id=write.model_id, **write.values))
        except IntegrityError as error:
            constraint = getattr(getattr(error.orig, "diag", None), "constraint_name", None)
            reason = f"violates {constraint}" if constraint else "violates a constraint"
            raise RegistryError(f"the database refused to {action.kind} {action.name!r} ({reason}); nothing was written") from None


def write_rows(connection: "Connection", writes: Sequence[RowWrite]) -> None:
    """Write the rows set-based; on a constraint violation, replay them row by row (see the module docstring)."""
    from sqlalchemy.exc import IntegrityError

    try:
        with connection.begin_nested():
            _write_set_based(connection, writes)
        return
    except IntegrityError:
        pass
    with connection.begin_nested():
        _write_row_by_row(connection, writes)


# ----------------------------------------------------------------------------- audit


# (record field, its YAML name, whether it is a parameter), once rather than per row.
_AUDITED_FIELDS = tuple((name, yaml_field_name(name), name in PARAMETER_FIELDS) for name in RECORD_FIELDS)


def _config_details(record: Mapping[str, Any]) -> dict[str, Any]:
    """A model's configuration for an audit record: YAML field names, key as `set`, unset parameters left out."""
    details = {shown: record[name] for name, shown, parameter in _AUDITED_FIELDS if not parameter or record[name] is not None}
    details["api_key"] = "set" if record["api_key"] is not None else None
    details["api_endpoint"] = redact_endpoint(record["api_endpoint"])
    return details


def _change_details(action: Action) -> dict[str, Any]:
    """Changed fields only, `{field: {before, after}}`; the key only as `changed`."""
    changes: dict[str, Any] = {}
    for change in action.changes:
        if change.field == "api_key":
            changes["api_key"] = "changed" if change.after == KEY_CHANGED else f"{change.before} -> {change.after}"
        else:
            before, after = change.before, change.after
            if change.field == "api_endpoint":  # a row made by hand may hold user:password@
                before, after = redact_endpoint(before), redact_endpoint(after)
            changes[yaml_field_name(change.field)] = {"before": before, "after": after}
    return changes


def audit_events(
    writes: Sequence[RowWrite],
    state: RegistryState,
    tested: Mapping[str, "ConnectionResult"],
    skip_connection_tests: bool,
) -> list[AuditEvent]:
    """One event per written row, in write order: MODEL_DELETED, MODEL_UPDATED, MODEL_CREATED."""
    rows = {row.id: row for row in state.models}
    events: list[AuditEvent] = []
    for write in writes:
        action = write.action
        test = tested.get(action.name)
        test_note: Any = test.status if test else ("skipped" if skip_connection_tests and action.kind != "delete" else None)
        if action.kind == "delete":
            row = rows[write.model_id]
            details: dict[str, Any] = {
                "knowledge_bases": list(action.knowledge_bases),
                "kb_count": len(action.knowledge_bases),
                "configuration": _config_details(row.record),
            }
            events.append(AuditEvent(MODEL_DELETED, action.name, write.model_id, details))
        elif action.kind == "update":
            details = {"changes": _change_details(action), "connection_test": test_note}
            if action.previous_name:
                details["renamed_from"] = action.previous_name
            if action.adopt:
                details["adopted"] = True
            events.append(AuditEvent(MODEL_UPDATED, action.name, write.model_id, details))
        else:
            assert action.desired is not None
            details = {"configuration": _config_details(action.desired), "connection_test": test_note}
            events.append(AuditEvent(MODEL_CREATED, action.name, write.model_id, details))
    return events


@collector_paused()  # 10,000 rows' values and events: no garbage cycles, only re-scans (see gc_pause)
def write_changes(
    connection: "Connection",
    plan: Plan,
    state: RegistryState,
    keys: Mapping[str, str],
    passphrase: str | None,
    tested: Mapping[str, "ConnectionResult"],
    skip_connection_tests: bool,
) -> list[AuditEvent]:
    """Execute the plan's writes (set-based, safe order); return the audit events describing them.

    With a passphrase and no passphrase check stored yet (`state.passphrase_probe` is
    None or a stored key), the check is stored too, in the same transaction.
    """
    writes = prepare_writes(plan, state, keys, passphrase)
    write_rows(connection, writes)
    probe = state.passphrase_probe
    if passphrase and (probe is None or probe.model is not None):
        store_passphrase_check(connection, passphrase)
    return audit_events(writes, state, tested, skip_connection_tests)
