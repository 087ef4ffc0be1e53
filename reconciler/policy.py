"""Policies over a plan: what is refused, and what a reviewer should be warned of. No I/O.

Blocked (exit 3, nothing is written):
- deleting a model that knowledge bases use (the original admin API's 409),
  naming every such KB;
- changing what makes a KB's stored vectors meaningful (an embedding model's
  provider, model_id, dimensions, distance_metric or normalize), or any model's
  type, while KBs use it;
- a default that would collide with a default on a row llm-registry does not manage;
- changing (or adopting) a row whose stored key has no fingerprint yet (the story's
  admin page stored it): the plan cannot tell whether git's key is the same;
- deleting every managed model at once, unless explicitly allowed.

Warned: deactivating a model KBs use; a model type left with active models but no default.
"""

from __future__ import annotations

from dataclasses import replace

from reconciler.plan import Action, Plan
from reconciler.secrets import ENCRYPTION_KEY_ENV
from reconciler.spec import MODEL_TYPES, yaml_field_name
from reconciler.state import RegistryState

# Fields whose change invalidates the vectors a KB has already stored.
VECTOR_FIELDS: tuple[str, ...] = ("provider", "model_id", "dimensions", "distance_metric", "normalize")


def _kb_list(names: tuple[str, ...]) -> str:
    count = len(names)
    return f"{count} knowledge base{'s' * (count != 1)}: {', '.join(names)}"


def _blocked_reasons(action: Action) -> list[str]:
    kbs = action.knowledge_bases
    if not kbs:
        return []
    if action.kind == "delete":
        return [f"used by {_kb_list(kbs)}; point them at another model before removing it"]
    reasons = []
    changed = set(action.changed_fields())
    blocking: list[str] = []
    if "type" in changed:
        blocking = ["type"]
        reasons.append(f"used by {_kb_list(kbs)}; a model's type cannot change while KBs use it")
    elif action.model_type == "embedding":
        blocking = [name for name in VECTOR_FIELDS if name in changed]
        if blocking:
            reasons.append(
                f"used by {_kb_list(kbs)}; changing {', '.join(blocking)} of an embedding model would make "
                "their stored vectors meaningless: register the new model under a new name and re-index those KBs onto it"
            )
    harmless = [c.field for c in action.changes if c.field not in blocking and c.field not in ("name", "managed_by")]
    if reasons and harmless:
        reasons.append(
            f"only {', '.join(map(yaml_field_name, blocking))} block{'s' * (len(blocking) == 1)} this change; "
            f"the other changes ({', '.join(map(yaml_field_name, harmless))}) are not blocked: "
            "make them in a separate change without the blocked fields"
        )
    return reasons


def _action_warnings(action: Action) -> list[str]:
    warnings = []
    if action.kind == "update" and action.knowledge_bases and action.desired and not action.desired["is_active"]:
        if any(c.field == "is_active" for c in action.changes):
            warnings.append(f"deactivates a model used by {_kb_list(action.knowledge_bases)}")
    if action.adopt:
        warnings.append("adopts a row that was created by hand: llm-registry will manage it from now on")
    return warnings


def _default_conflicts(plan: Plan, state: RegistryState) -> dict[str, str]:
    """Actions that would make a second default next to an unmanaged default row."""
    unmanaged_defaults = {
        row.record["type"]: row.name
        for row in state.models
        if not row.managed and row.record.get("is_default") and row.name in plan.unmanaged
    }
    conflicts = {}
    for action in plan.actions:
        if action.kind == "delete" or not action.desired or not action.desired["is_default"]:
            continue
        other = unmanaged_defaults.get(action.desired["type"])
        if other is not None:
            conflicts[action.name] = (
                f"{other!r} (not managed by llm-registry) is already the default {action.desired['type']} model; "
                f"declare {other!r} in git to adopt it, or clear its default by hand"
            )
    return conflicts


def apply_policies(plan: Plan, state: RegistryState, *, allow_delete_all: bool = False) -> Plan:
    """Return the plan with blocked reasons and warnings filled in."""
    conflicts = _default_conflicts(plan, state)
    managed = [row for row in state.models if row.managed]
    deletes = [a for a in plan.actions if a.kind == "delete"]
    delete_all = bool(managed) and len(deletes) == len(managed) and not allow_delete_all
    refusals: list[str] = []
    if delete_all:
        refusals.append(
            f"this plan deletes every model llm-registry manages ({len(managed)}): is the directory right? "
            "Pass --allow-delete-all if that is what you want"
        )

    unfingerprinted = {row.id for row in state.models if row.key_pending}
    hints = rename_hints(plan, state)
    actions = []
    for action in plan.actions:
        reasons = _blocked_reasons(action)
        if action.kind == "update" and action.model_id in unfingerprinted:
            reasons.append(
                "its stored API key has no fingerprint yet (it was stored before llm-registry), so this plan cannot "
                f"compare it: run `llm-registry db upgrade` with {ENCRYPTION_KEY_ENV} set first"
            )
        if action.name in conflicts:
            reasons.append(conflicts[action.name])
        if delete_all and action.kind == "delete":
            reasons.append("part of a plan that deletes every managed model (see --allow-delete-all)")
        warnings = hints.get(action.name, []) + _action_warnings(action)
        if reasons or warnings or action.blocked or action.warnings:
            action = replace(action, blocked=tuple(reasons), warnings=tuple(warnings))
        actions.append(action)  # most actions: nothing to add, the same object
    checked = replace(plan, actions=tuple(actions), refusals=tuple(refusals))
    return replace(checked, warnings=tuple(_plan_warnings(checked, state)))


def rename_hints(plan: Plan, state: RegistryState) -> dict[str, list[str]]:
    """A delete and a create of the same type, provider and model_id look like a rename without previous_names.

    Without `previous_names` the row is deleted and a new one made: a new id, and the
    KBs' links lost (the delete is blocked while KBs use it). Keyed by action name.
    """
    rows = {row.id: row for row in state.models}
    deleted: dict[tuple[str, str, str], list[str]] = {}
    for action in plan.actions:
        row = rows.get(action.model_id or "")
        if action.kind == "delete" and row is not None:
            deleted.setdefault((row.record["type"], row.record["provider"], row.record["model_id"]), []).append(action.name)
    hints: dict[str, list[str]] = {}
    for action in plan.actions:
        if action.kind != "create" or action.desired is None:
            continue
        for old in deleted.get((action.desired["type"], action.desired["provider"], action.desired["model_id"]), []):
            advice = f"add `previous_names: [{old}]` to {action.name!r} to keep its id and KB links"
            hints.setdefault(action.name, []).append(f"looks like a rename of {old!r}: {advice}")
            hints.setdefault(old, []).append(f"looks like a rename to {action.name!r}: {advice}")
    return hints


def types_without_default_after(plan: Plan, state: RegistryState) -> list[str]:
    """Model types that have an active model but no default once the plan's unblocked actions are applied.

    What `simulate_apply(plan, state)` would show (tests/unit/test_plan_properties.py checks that
    they agree), without building its rows: a plan of 10,000 creates spent most of its
    policies' time there.
    """
    after = {row.id: row.record for row in state.models}
    for action in plan.actions:
        if action.is_blocked:
            continue
        if action.kind == "delete":
            after.pop(action.model_id or "", None)
        elif action.desired is not None:
            row_id = action.model_id if action.kind == "update" and action.model_id in after else f"new:{action.name}"
            after[row_id] = action.desired
    active, defaults = set(), set()
    for record in after.values():
        if record["is_active"]:
            active.add(record["type"])
        if record["is_default"]:
            defaults.add(record["type"])
    return [model_type for model_type in MODEL_TYPES if model_type in active and model_type not in defaults]


def _plan_warnings(plan: Plan, state: RegistryState) -> list[str]:
    warnings = [f"after this plan no {model_type} model is the default" for model_type in types_without_default_after(plan, state)]
    if plan.unchecked_keys:
        warnings.append(
            f"api_key not compared for {', '.join(plan.unchecked_keys)}: its ${{env:...}} variable or "
            "LLM_REGISTRY_ENCRYPTION_KEY is unset here; apply resolves and compares it"
        )
    return warnings
