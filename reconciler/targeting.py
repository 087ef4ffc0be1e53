"""`--target NAME`: limit a plan to some models and what they need. Pure, no I/O.

For emergencies: apply one urgent fix while another change (a blocked delete, a
review still open) waits. A target is a model name in git or in the database (a
renamed model by its new or old name). What a target needs comes along:

- a default that moves between two models of one type: the model losing the default
  and the one gaining it go together (the database allows one default per type, and
  applying half of the move would leave the type without its default or refuse).

Everything else is left out and listed, so that the output can say loudly that
the plan is partial.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable

from reconciler.errors import RegistryError
from reconciler.plan import Action, Plan
from reconciler.spec import RegistrySpec
from reconciler.state import RegistryState


def known_names(registry: RegistrySpec, state: RegistryState) -> set[str]:
    """Every name a target may be: models in git, their previous names, rows in the database."""
    names = {model.name for model in registry.models}
    names |= {old for model in registry.models for old in model.previous_names}
    return names | {row.name for row in state.models}


def check_targets(targets: Iterable[str], registry: RegistrySpec, state: RegistryState) -> None:
    """A RegistryError naming each target that is neither in git nor in the database."""
    known = known_names(registry, state)
    unknown = [name for name in dict.fromkeys(targets) if name not in known]
    if unknown:
        listing = ", ".join(sorted(known)[:20]) + (", ..." if len(known) > 20 else "")
        raise RegistryError(
            f"--target: no model named {', '.join(map(repr, unknown))} in the registry or the database "
            f"(known: {listing or '(none)'}); nothing was planned"
        )


def _default_move(action: Action) -> str | None:
    """`gains` or `loses` when the action moves its type's default, else None."""
    for change in action.changes:
        if change.field == "is_default" and bool(change.before) != bool(change.after):
            return "gains" if change.after else "loses"
    if action.kind == "create" and action.desired is not None and action.desired.get("is_default"):
        return "gains"
    return None


def needed_with(plan: Plan, chosen: set[str]) -> set[str]:
    """The chosen actions' names plus what they need (default moves), to a fixed point."""
    moves = {a.name: (a.model_type, move) for a in plan.actions if (move := _default_move(a)) is not None}
    selected = set(chosen)
    while True:
        types = {moves[name][0] for name in selected if name in moves}
        more = {name for name, (model_type, _) in moves.items() if model_type in types} - selected
        if not more:
            return selected
        selected |= more


def limit_to_targets(plan: Plan, targets: Iterable[str]) -> Plan:
    """The plan with only the targeted models' actions (and what they need); the rest listed as left out."""
    wanted = set(targets)
    chosen = {a.name for a in plan.actions if a.name in wanted or (a.previous_name is not None and a.previous_name in wanted)}
    selected = needed_with(plan, chosen)
    kept = tuple(a for a in plan.actions if a.name in selected)
    left_out = tuple(a.name for a in plan.actions if a.name not in selected)
    return replace(
        plan,
        actions=kept,
        targets=tuple(dict.fromkeys(targets)),
        target_extras=tuple(sorted(selected - chosen)),
        left_out=left_out,
        # A key the plan could not compare matters only for a model in scope.
        unchecked_keys=tuple(name for name in plan.unchecked_keys if name in wanted or name in selected),
    )
