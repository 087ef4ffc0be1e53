"""Drift: a row changed outside llm-registry since apply wrote it (drift.py, pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from reconciler.pipeline import plan_registry
from reconciler.render import plan_to_json_data, render_markdown, render_text
from reconciler.state import RegistryState, StoredModel, applied_fingerprint
from tests.factories import generation_model, ner_model, registry, stored_from, stored_model


def applied(row: StoredModel) -> StoredModel:
    """The row as apply leaves it: its digest stored beside it."""
    return replace(row, applied_fingerprint=applied_fingerprint(row.name, row.record))


def hand_edited(row: StoredModel, **columns: Any) -> StoredModel:
    """The row after someone changed columns by SQL (the stored digest stays)."""
    return replace(row, record={**row.record, **columns})


def chat(**overrides: Any) -> dict[str, Any]:
    """The generation model of these tests, on ollama (no key)."""
    return generation_model(
        **{"name": "chat", "provider": "ollama", "api_key": None, "api_endpoint": "http://ollama:11434", "default": True, **overrides}
    )


CHAT = chat()
NER = ner_model(name="ner", default=True)


def plan_of(state: RegistryState, *definitions: dict[str, Any]) -> Any:
    return plan_registry(registry(*definitions), state, {}).plan


def test_a_hand_edit_is_drift_on_exactly_that_field() -> None:
    state = RegistryState(models=(hand_edited(applied(stored_from(CHAT)), temperature=0.2), applied(stored_from(NER))))
    plan = plan_of(state, CHAT, NER)
    (action,) = plan.actions
    assert (action.name, action.kind, action.drift, action.drift_fields) == ("chat", "update", True, ("temperature",))
    text = render_text(plan)
    assert "  # chat will be updated in place [DRIFT]" in text
    assert "~ parameters.temperature = 0.2 -> 0.7   (drift: changed outside llm-registry)" in text
    assert "Drift: 1 model changed outside llm-registry since the last apply:" in text
    assert "  - chat: parameters.temperature changed outside llm-registry since the last apply; applying sets git's values back" in text
    data = plan_to_json_data(plan)
    assert data["summary"]["drift"] == 1
    assert data["actions"][0]["drift"] is True and data["actions"][0]["drift_fields"] == ["parameters.temperature"]
    assert data["actions"][0]["changes"] == [{"field": "parameters.temperature", "before": 0.2, "after": 0.7, "drift": True}]
    assert "(drift)" in render_markdown(plan) and "[!WARNING]" in render_markdown(plan)


def test_drift_and_a_change_from_git_on_one_row_are_told_apart() -> None:
    state = RegistryState(models=(hand_edited(applied(stored_from(CHAT)), temperature=0.2),))
    proposed = chat(parameters={"top_p": 0.5})
    (action,) = plan_of(state, proposed).actions
    assert action.drift and action.drift_fields == ("temperature",)
    drift = {c["field"]: c["drift"] for c in plan_to_json_data(plan_of(state, proposed))["actions"][0]["changes"]}
    assert drift == {"parameters.temperature": True, "parameters.top_p": False}


def test_a_change_from_git_alone_is_not_drift() -> None:
    state = RegistryState(models=(applied(stored_from(CHAT)),))
    proposed = chat(description="new")
    (action,) = plan_of(state, proposed).actions
    assert not action.drift and action.drift_fields == ()
    assert "Drift" not in render_text(plan_of(state, proposed))


def test_a_field_changed_both_by_hand_and_in_git_is_drift_without_fields() -> None:
    state = RegistryState(models=(hand_edited(applied(stored_from(CHAT)), temperature=0.2),))
    proposed = chat(parameters={"temperature": 0.9})
    (action,) = plan_of(state, proposed).actions
    assert action.drift and action.drift_fields == ()
    assert "which fields cannot be told" in render_text(plan_of(state, proposed))


def test_rows_without_a_digest_or_not_managed_are_never_drift() -> None:
    never_applied = hand_edited(stored_from(CHAT), temperature=0.2)  # written before drift detection
    assert not plan_of(RegistryState(models=(never_applied,)), CHAT).actions[0].drift


def test_a_drifted_row_no_longer_in_git_is_a_drifted_delete() -> None:
    state = RegistryState(models=(hand_edited(applied(stored_from(CHAT)), description="by hand"), applied(stored_from(NER))))
    (action,) = plan_of(state, NER).actions
    assert (action.kind, action.drift) == ("delete", True)


def test_hand_made_rows_since_the_last_apply_are_new_unmanaged_rows() -> None:
    last_apply = datetime(2026, 11, 27, 12, tzinfo=timezone.utc)
    old = replace(stored_model("old-by-hand", managed_by=None), created_at=last_apply - timedelta(days=1))
    new = replace(stored_model("new-by-hand", managed_by=None), created_at=last_apply + timedelta(minutes=5))
    state = RegistryState(models=(old, new, applied(stored_from(NER))), last_applied_at=last_apply)
    plan = plan_of(state, NER)
    assert plan.unmanaged == ("new-by-hand", "old-by-hand") and plan.new_unmanaged == ("new-by-hand",)
    assert "New rows made by hand since the last apply (not managed, left untouched): new-by-hand" in render_text(plan)
    assert plan_to_json_data(plan)["new_unmanaged"] == ["new-by-hand"]
    never_applied = RegistryState(models=(old, new))
    assert plan_of(never_applied, NER).new_unmanaged == ()
