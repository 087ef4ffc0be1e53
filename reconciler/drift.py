"""Drift: rows changed outside llm-registry since apply wrote them. Pure, no I/O.

Apply stores in each row it writes `state.applied_fingerprint(name, record)`. When the
digest of the row as it is now differs, someone changed the row by other means (SQL,
the old admin page). The plan then marks the row, and where it can, the fields:

the stored digest is of the record apply wrote (A); the row is now R; git asks for D.
A field that differs between R and D is either drift (R moved away from A) or a change
from git (D moved away from A). Assuming each field of A is R's or D's value, the set
of drifted fields S is the one for which "R with S taken from D" digests to the stored
value. The search tries subsets of the changed fields, smallest first; a row whose
drift it cannot place (a field changed both in git and by hand, or too many changed
fields) is still marked as drift, without fields.

Rows made by hand (no `managed_by`) that appeared since the last apply are reported
as new unmanaged rows.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations
from typing import Any, Mapping

from reconciler.plan import KEY_UNKNOWN, Action, Plan
from reconciler.spec import RECORD_FIELDS
from reconciler.state import RegistryState, StoredModel, applied_fingerprint

# 2**12 digests at most per drifted row: a few milliseconds.
MAX_SEARCHED_FIELDS = 12


def mark_drift(plan: Plan, state: RegistryState) -> Plan:
    """The plan with drifted actions marked (`drift`, `drift_fields`) and new unmanaged rows listed."""
    rows = {row.id: row for row in state.models}
    actions = []
    for action in plan.actions:
        row = rows.get(action.model_id or "")
        if row is not None and action.kind != "create" and is_drifted(row):
            actions.append(replace(action, drift=True, drift_fields=drifted_fields(action, row, plan.key_fingerprints)))
        else:
            actions.append(action)
    return replace(plan, actions=tuple(actions), new_unmanaged=new_unmanaged_rows(plan, state))


def is_drifted(row: StoredModel) -> bool:
    """True when apply wrote this row (it has a digest) and it no longer matches."""
    stored = row.applied_fingerprint
    return row.managed and stored is not None and stored != applied_fingerprint(row.name, row.record)


def drifted_fields(action: Action, row: StoredModel, key_fingerprints: Mapping[str, str | None]) -> tuple[str, ...]:
    """The fields changed outside llm-registry, in RECORD_FIELDS order; () when they cannot be told."""
    if action.kind != "update":
        return ()
    desired: dict[str, Any] = {}
    for change in action.changes:
        if change.field == "api_key":
            fingerprint = key_fingerprints.get(action.name)
            if fingerprint != KEY_UNKNOWN and action.desired is not None:
                desired["api_key"] = fingerprint if action.desired.get("api_key") is not None else None
        elif change.field in RECORD_FIELDS:
            desired[change.field] = change.after
    candidates = [name for name in RECORD_FIELDS if name in desired]
    if len(candidates) > MAX_SEARCHED_FIELDS:
        return ()
    for size in range(1, len(candidates) + 1):
        for subset in combinations(candidates, size):
            record = {**row.record, **{name: desired[name] for name in subset}}
            if applied_fingerprint(row.name, record) == row.applied_fingerprint:
                return subset
    return ()


def new_unmanaged_rows(plan: Plan, state: RegistryState) -> tuple[str, ...]:
    """Unmanaged rows created after the last apply that changed anything (none before any apply)."""
    since = state.last_applied_at
    if since is None:
        return ()
    by_name = state.by_name()
    return tuple(
        name for name in plan.unmanaged
        if (created := by_name[name].created_at) is not None and created > since
    )
