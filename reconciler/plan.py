"""The diff engine: (RegistrySpec, RegistryState, key fingerprints) -> Plan. No I/O.

Semantics (DESIGN.md, "Plan semantics"):
- identity is the model name; a name in git and not in the database is a create,
  in both but different an update listing each changed field, a managed row no
  longer in git a delete;
- defaults are filled in on both sides before comparing (`spec.desired_record`),
  except that an omitted parameter leaves a NULL column unset (`spec.keep_unset_parameters`);
- rows without the `managed_by` mark are never touched unless git declares a model
  of that name (adoption); the others are listed as unmanaged;
- `previous_names` renames a row in place (same id, KB links intact);
- API keys are compared by keyed fingerprint and shown only as tokens such as
  "(set)" or "changed"; a key whose variable is unset at plan time is "(known at
  apply)" for a new model and not compared for an existing one.

Policies (blocked changes, warnings) are applied afterwards by `policy.py`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Mapping, NamedTuple, Sequence

from reconciler import MANAGED_BY
from reconciler.diagnostics import Location
from reconciler.gc_pause import collector_paused
from reconciler.spec import RECORD_FIELDS, FieldReference, ModelDefinition, RegistrySpec, desired_record, keep_unset_parameters
from reconciler.state import JsonArrayDigest, RegistryState, StoredModel, record_values, state_fingerprint

ActionKind = Literal["create", "update", "delete"]

# What a key fingerprint can be at plan time, besides the fingerprint itself.
KEY_UNKNOWN = "(known at apply)"

# Display tokens for API keys: a plan never holds a key or its fingerprint in a change.
KEY_NONE = "(none)"
KEY_SET = "(set)"
KEY_CHANGED = "changed"


_new_tuple = tuple.__new__


class FieldChange(NamedTuple):
    """One field of one model: `before -> after` (None before for a create).

    A named tuple rather than a frozen dataclass: a plan of 10,000 creates holds
    ~120,000 of them, and a tuple is made in a third of the time.
    """

    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Action:
    """What the plan does to one model.

    `desired` is the full record git asks for (create/update; its `api_key` is the
    `${env:NAME}` reference, never a value). `model_id` is the existing row's id.
    `blocked` holds the policy reasons that refuse this action; `warnings` what a
    reviewer should know but does not stop it. `drift` marks a row changed outside
    llm-registry since apply wrote it, `drift_fields` which fields (when they can be
    told; see drift.py).
    """

    kind: ActionKind
    name: str
    model_type: str
    provider: str
    changes: tuple[FieldChange, ...] = ()
    desired: Mapping[str, Any] | None = None
    model_id: str | None = None
    previous_name: str | None = None
    adopt: bool = False
    knowledge_bases: tuple[str, ...] = ()
    location: Location | None = None
    blocked: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    drift: bool = False
    drift_fields: tuple[str, ...] = ()

    @property
    def is_blocked(self) -> bool:
        """True when a policy refuses this action."""
        return bool(self.blocked)

    def changed_fields(self) -> tuple[str, ...]:
        """Names of the fields this action changes."""
        return tuple(change.field for change in self.changes)


@dataclass(frozen=True)
class Plan:
    """Every action, in name order, and what the reviewer needs around them.

    `key_fingerprints` records, per model with a key reference, the fingerprint the
    plan compared against (or KEY_UNKNOWN), so that apply can tell if keys moved.
    `unset_key_variables` names the referenced variables unset at plan time, so that a
    plan can say `(not set: known at apply)` rather than leave the reviewer guessing.
    `resolved_references` are the `${env:NAME}` fields resolved for this plan (shown).
    `new_unmanaged`: the unmanaged rows made since the last apply (drift.py).
    """

    actions: tuple[Action, ...] = ()
    unmanaged: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    unchecked_keys: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    refusals: tuple[str, ...] = ()
    state_fingerprint: str = ""
    spec_fingerprint: str = ""
    key_fingerprints: Mapping[str, str | None] = field(default_factory=dict)
    unset_key_variables: tuple[str, ...] = ()
    resolved_references: tuple[FieldReference, ...] = ()
    new_unmanaged: tuple[str, ...] = ()
    # --target (targeting.py): the names asked for, what they brought along, what was left out.
    targets: tuple[str, ...] = ()
    target_extras: tuple[str, ...] = ()
    left_out: tuple[str, ...] = ()

    def count(self, kind: ActionKind) -> int:
        """Actions of that kind that are not blocked."""
        return sum(1 for a in self.actions if a.kind == kind and not a.is_blocked)

    @property
    def blocked(self) -> tuple[Action, ...]:
        """The actions a policy refuses."""
        return tuple(a for a in self.actions if a.is_blocked)

    @property
    def has_changes(self) -> bool:
        """True when applying would change anything."""
        return bool(self.actions)

    @property
    def partial(self) -> bool:
        """True when --target limited the plan to some models."""
        return bool(self.targets)

    @property
    def is_blocked(self) -> bool:
        """True when any action is blocked or the whole plan is refused."""
        return bool(self.blocked) or bool(self.refusals)


def _key_token(fingerprint: str | None) -> str:
    return KEY_NONE if fingerprint is None else KEY_SET


def _key_change(desired_fp: str | None, stored_fp: str | None) -> FieldChange | None:
    """The api_key change between a planned and a stored fingerprint, as display tokens."""
    if desired_fp == KEY_UNKNOWN:
        # Unknown at plan time: only "none -> something" is certainly a change.
        return FieldChange("api_key", KEY_NONE, KEY_UNKNOWN) if stored_fp is None else None
    if desired_fp == stored_fp:
        return None
    if desired_fp is not None and stored_fp is not None:
        return FieldChange("api_key", KEY_SET, KEY_CHANGED)
    return FieldChange("api_key", _key_token(stored_fp), _key_token(desired_fp))


def _record_changes(desired: Mapping[str, Any], stored: Mapping[str, Any], desired_fp: str | None) -> list[FieldChange]:
    if desired_fp == stored.get("api_key") and {**desired, "api_key": desired_fp} == stored:
        return []  # the common case, one comparison in C: nothing differs
    changes = [
        FieldChange(name, stored.get(name), desired[name])
        for name in RECORD_FIELDS
        if name != "api_key" and desired[name] != stored.get(name)
    ]
    key_change = _key_change(desired_fp, stored.get("api_key"))
    if key_change is not None:
        changes.insert(RECORD_FIELDS.index("api_key"), key_change)
    return changes


def _create_changes(desired: Mapping[str, Any], desired_fp: str | None) -> tuple[FieldChange, ...]:
    key_token = KEY_UNKNOWN if desired_fp == KEY_UNKNOWN else KEY_SET  # never the reference itself
    # tuple.__new__ directly: NamedTuple's own __new__ is a Python function, and a plan
    # of 10,000 creates makes ~120,000 of these.
    return tuple([
        _new_tuple(FieldChange, (name, None, key_token if name == "api_key" else value))
        for name in RECORD_FIELDS
        if (value := desired[name]) is not None
    ])  # fmt: skip


def _find_row(model: ModelDefinition, rows: Mapping[str, StoredModel], claimed: set[str]) -> tuple[StoredModel | None, str | None]:
    """The row a definition maps to: by name, else by the first unclaimed previous name."""
    if model.name in rows:
        return rows[model.name], None
    for old_name in model.previous_names:
        if old_name in rows and old_name not in claimed:
            return rows[old_name], old_name
    return None, None


@collector_paused()
def compute_plan(
    registry: RegistrySpec,
    state: RegistryState,
    key_fingerprints: Mapping[str, str | None],
    *,
    fingerprints: bool = True,
) -> Plan:
    """Diff the registry in git against the database.

    `key_fingerprints` maps each model name to the keyed fingerprint of its resolved
    API key, None when the model has no key, or KEY_UNKNOWN when the key cannot be
    resolved now (variable or passphrase unset). With `fingerprints=False` the plan's
    `state_fingerprint` and `spec_fingerprint` stay empty: a plan that is only shown
    (not saved, not rendered as JSON) skips both digests, a fifth of its cost.
    """
    rows = state.by_name()
    claimed: set[str] = {model.name for model in registry.models if model.name in rows}
    actions: list[Action] = []
    unchanged: list[str] = []
    unchecked: list[str] = []
    planned_keys: dict[str, str | None] = {}

    # The spec's digest is taken on the way (see spec_fingerprint), so that no list of
    # every desired record is kept: at 100,000 models that list alone was ~150 MB.
    spec_digest = JsonArrayDigest(hashlib.sha256()) if fingerprints else None
    for model in registry.models:
        desired = desired_record(model)
        if spec_digest is not None:
            spec_digest.add(_spec_element(model, desired))
        desired_fp = key_fingerprints.get(model.name) if model.api_key is not None else None
        planned_keys[model.name] = desired_fp
        location = registry.locations.get(model.name)
        row, old_name = _find_row(model, rows, claimed)
        if row is None:
            actions.append(
                Action("create", model.name, model.type, model.provider, _create_changes(desired, desired_fp), desired, location=location)
            )
            continue
        claimed.add(row.name)
        desired = keep_unset_parameters(model, desired, row.record)
        if desired_fp == KEY_UNKNOWN and row.record.get("api_key") is not None:
            unchecked.append(model.name)
        changes = _record_changes(desired, row.record, desired_fp)
        if old_name is not None:
            changes.insert(0, FieldChange("name", old_name, model.name))
        adopt = not row.managed
        if adopt:
            changes.insert(0, FieldChange("managed_by", row.managed_by, MANAGED_BY))
        if changes:
            actions.append(
                Action(
                    "update", model.name, model.type, model.provider, tuple(changes), desired,
                    model_id=row.id, previous_name=old_name, adopt=adopt,
                    knowledge_bases=state.kbs_using(row.id), location=location,
                )
            )
        else:
            unchanged.append(model.name)

    unmanaged: list[str] = []
    for row in state.models:
        if row.name in claimed:
            continue
        if row.managed:
            actions.append(
                Action(
                    "delete", row.name, row.record["type"], row.record["provider"],
                    model_id=row.id, knowledge_bases=state.kbs_using(row.id),
                )
            )
        else:
            unmanaged.append(row.name)

    return Plan(
        actions=tuple(sorted(actions, key=lambda a: a.name)),
        unmanaged=tuple(sorted(unmanaged)),
        unchanged=tuple(sorted(unchanged)),
        unchecked_keys=tuple(sorted(unchecked)),
        state_fingerprint=state_fingerprint(state) if fingerprints else "",
        spec_fingerprint=spec_digest.finish().hexdigest() if spec_digest is not None else "",
        key_fingerprints=planned_keys,
    )


def spec_fingerprint(registry: RegistrySpec, records: Sequence[Mapping[str, Any]] | None = None) -> str:
    """A digest of what git declares (key references, not key values).

    The SHA-256 of `state.canonical_json` of the array of `[name, sorted(previous_names),
    record_values(desired_record)]` per model, in the registry's order. `records`, when the caller has
    them already, is `desired_record` of each model in order.
    """
    digest = JsonArrayDigest(hashlib.sha256())
    for index, model in enumerate(registry.models):
        digest.add(_spec_element(model, records[index] if records is not None else desired_record(model)))
    return digest.finish().hexdigest()


def _spec_element(model: ModelDefinition, record: Mapping[str, Any]) -> list[Any]:
    return [model.name, sorted(model.previous_names), record_values(record)]


def simulate_apply(plan: Plan, state: RegistryState, new_ids: Mapping[str, str] | None = None) -> RegistryState:
    """The state the database would hold after applying the plan's unblocked actions.

    Pure: used by the policies (what would the defaults be?) and by property tests
    (a plan applied in memory leaves nothing to plan). `new_ids` gives ids to created
    rows (default: `new:<name>`). Stored key fingerprints take the planned ones.
    """
    new_ids = new_ids or {}
    rows = {row.id: row for row in state.models}
    for action in plan.actions:
        if action.is_blocked:
            continue
        if action.kind == "delete":
            rows.pop(action.model_id or "", None)
            continue
        assert action.desired is not None
        record = dict(action.desired)
        fingerprint = plan.key_fingerprints.get(action.name)
        if action.kind == "update" and action.model_id in rows:
            if "api_key" in action.changed_fields():
                record["api_key"] = fingerprint  # KEY_UNKNOWN stands in for a key resolved at apply
            else:
                record["api_key"] = rows[action.model_id].record.get("api_key")
            rows[action.model_id] = StoredModel(action.model_id, action.name, MANAGED_BY, record)
        else:
            record["api_key"] = fingerprint
            row_id = new_ids.get(action.name, f"new:{action.name}")
            rows[row_id] = StoredModel(row_id, action.name, MANAGED_BY, record)
    return replace(state, models=tuple(rows.values()))
