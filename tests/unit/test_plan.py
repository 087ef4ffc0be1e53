"""The diff engine: plain data in, plain data out (DESIGN.md, "Plan semantics")."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from reconciler import MANAGED_BY
from reconciler.diagnostics import Location
from reconciler.plan import KEY_CHANGED, KEY_NONE, KEY_SET, KEY_UNKNOWN, FieldChange, compute_plan, simulate_apply, spec_fingerprint
from reconciler.state import RegistryState, StoredModel
from tests.factories import embedding_model, generation_model, knowledge_base, ner_model, registry, stored_from, stored_model


def test_a_model_only_in_git_is_created_with_every_set_field() -> None:
    model = embedding_model(name="nomic-embed")
    plan = compute_plan(registry(model), RegistryState(), {})
    (action,) = plan.actions
    assert (action.kind, action.name, action.model_type, action.provider) == ("create", "nomic-embed", "embedding", "ollama")
    assert FieldChange("dimensions", None, 768) in action.changes
    assert FieldChange("api_endpoint", None, "http://localhost:11434") in action.changes
    assert "api_key" not in action.changed_fields()  # ollama has no key
    assert action.location == Location("models.yaml", 1, 1)
    assert plan.count("create") == 1 and plan.has_changes


def test_identical_row_is_no_change() -> None:
    model = generation_model(name="gpt")
    plan = compute_plan(registry(model), RegistryState((stored_from(model, fingerprint="fp1"),)), {"gpt": "fp1"})
    assert plan.actions == () and plan.unchanged == ("gpt",) and not plan.has_changes


def test_omitted_field_equal_to_its_default_is_no_change() -> None:
    written = embedding_model(name="e", parameters={"dimensions": 768})
    del written["parameters"]["normalize"], written["parameters"]["batch_size"]
    row = stored_from(embedding_model(name="e"), normalize=True, batch_size=32)
    assert compute_plan(registry(written), RegistryState((row,)), {}).actions == ()


def test_update_lists_each_changed_field_before_and_after() -> None:
    model = generation_model(name="gpt", parameters={"temperature": 0.2}, description="new")
    row = stored_from(generation_model(name="gpt"), fingerprint="fp1")
    (action,) = compute_plan(registry(model), RegistryState((row,)), {"gpt": "fp1"}).actions
    assert action.kind == "update" and action.model_id == row.id
    assert action.changes == (
        FieldChange("description", "", "new"),
        FieldChange("temperature", 0.7, 0.2),
    )


def test_api_key_is_compared_by_fingerprint_and_shown_only_as_changed() -> None:
    model = generation_model(name="gpt")
    row = stored_from(model, fingerprint="old-fingerprint")
    (action,) = compute_plan(registry(model), RegistryState((row,)), {"gpt": "new-fingerprint"}).actions
    assert action.changes == (FieldChange("api_key", KEY_SET, KEY_CHANGED),)
    assert "fingerprint" not in repr(action.changes)


def test_api_key_added_and_removed() -> None:
    with_key = generation_model(name="gpt")
    row_without = stored_from(with_key, fingerprint=None)
    (added,) = compute_plan(registry(with_key), RegistryState((row_without,)), {"gpt": "fp"}).actions
    assert added.changes == (FieldChange("api_key", KEY_NONE, KEY_SET),)

    to_ollama = generation_model(name="gpt", provider="ollama", api_key=None, api_endpoint="http://o:11434")
    row_with = stored_from(to_ollama, fingerprint="fp")
    (removed,) = compute_plan(registry(to_ollama), RegistryState((row_with,)), {}).actions
    assert removed.changes == (FieldChange("api_key", KEY_SET, KEY_NONE),)


def test_unresolvable_key_is_known_at_apply_for_a_create_and_not_compared_for_an_update() -> None:
    new, old = generation_model(name="new"), generation_model(name="old")
    state = RegistryState((stored_from(old, fingerprint="fp"),))
    plan = compute_plan(registry(new, old), state, {"new": KEY_UNKNOWN, "old": KEY_UNKNOWN})
    (create,) = plan.actions
    assert FieldChange("api_key", None, KEY_UNKNOWN) in create.changes
    assert plan.unchanged == ("old",) and plan.unchecked_keys == ("old",)


def test_managed_row_missing_from_git_is_deleted_with_its_kbs() -> None:
    gone = stored_model("gone")
    kb = knowledge_base("support", embedding=gone)
    (action,) = compute_plan(registry(), RegistryState((gone,), (kb,)), {}).actions
    assert (action.kind, action.name, action.model_id, action.knowledge_bases) == ("delete", "gone", gone.id, ("support",))


def test_unmanaged_row_is_listed_never_deleted() -> None:
    hand_made = stored_model("hand-made", managed_by=None)
    plan = compute_plan(registry(), RegistryState((hand_made,)), {})
    assert plan.actions == () and plan.unmanaged == ("hand-made",)


def test_git_model_with_the_name_of_an_unmanaged_row_adopts_it() -> None:
    model = embedding_model(name="hand-made")
    row = stored_from(model, managed_by=None)
    row = StoredModel(row.id, row.name, None, row.record)
    (action,) = compute_plan(registry(model), RegistryState((row,)), {}).actions
    assert action.kind == "update" and action.adopt and action.model_id == row.id
    assert action.changes == (FieldChange("managed_by", None, MANAGED_BY),)


def test_previous_names_rename_in_place_keeping_the_id() -> None:
    model = embedding_model(name="nomic-v2", previous_names=["nomic-v1"])
    old_row = stored_from({**model, "name": "nomic-v1", "previous_names": []})
    kb = knowledge_base("kb", embedding=old_row)
    (action,) = compute_plan(registry(model), RegistryState((old_row,), (kb,)), {}).actions
    assert action.kind == "update" and action.model_id == old_row.id
    assert action.previous_name == "nomic-v1" and action.changes == (FieldChange("name", "nomic-v1", "nomic-v2"),)
    assert action.knowledge_bases == ("kb",)


def test_rename_target_already_present_keeps_identity_by_name() -> None:
    model = embedding_model(name="new", previous_names=["old"])
    new_row, old_row = stored_from(model), stored_from({**model, "name": "old", "previous_names": []})
    plan = compute_plan(registry(model), RegistryState((new_row, old_row)), {})
    assert [(a.kind, a.name) for a in plan.actions] == [("delete", "old")]


def test_previous_names_absent_from_the_database_are_skipped() -> None:
    # A fresh environment: git still lists the old names, the database never had them.
    model = embedding_model(name="nomic-v3", previous_names=["nomic-v1", "nomic-v2"])
    (action,) = compute_plan(registry(model), RegistryState(), {}).actions
    assert (action.kind, action.name, action.previous_name) == ("create", "nomic-v3", None)
    # Only the second old name is in the database: that row is renamed.
    old_row = stored_from({**model, "name": "nomic-v2", "previous_names": []})
    (action,) = compute_plan(registry(model), RegistryState((old_row,)), {}).actions
    assert (action.kind, action.model_id, action.previous_name) == ("update", old_row.id, "nomic-v2")


def test_type_change_and_default_moves_are_field_changes() -> None:
    a = embedding_model(name="a", default=False)
    b = embedding_model(name="b", default=True)
    state = RegistryState((stored_from(a, is_default=True), stored_from(b, is_default=False)))
    plan = compute_plan(registry(a, b), state, {})
    assert [(x.name, x.changes) for x in plan.actions] == [
        ("a", (FieldChange("is_default", True, False),)),
        ("b", (FieldChange("is_default", False, True),)),
    ]


def test_plan_is_in_name_order_and_records_fingerprints() -> None:
    plan = compute_plan(registry(ner_model(name="zeta"), embedding_model(name="alpha")), RegistryState(), {})
    assert [a.name for a in plan.actions] == ["alpha", "zeta"]
    assert len(plan.state_fingerprint) == 64 and len(plan.spec_fingerprint) == 64


def test_state_fingerprint_moves_with_the_database() -> None:
    model = embedding_model(name="e")
    row = stored_from(model)
    before = compute_plan(registry(model), RegistryState((row,)), {})
    edited = StoredModel(row.id, row.name, row.managed_by, {**row.record, "batch_size": 64})
    after = compute_plan(registry(model), RegistryState((edited,)), {})
    linked = compute_plan(registry(model), RegistryState((row,), (knowledge_base("kb", embedding=row),)), {})
    assert len({before.state_fingerprint, after.state_fingerprint, linked.state_fingerprint}) == 3
    assert before.spec_fingerprint == after.spec_fingerprint


def test_a_plan_without_fingerprints_is_the_same_plan_with_empty_digests() -> None:
    kept, changed = embedding_model(name="e"), generation_model(name="g", description="new")
    state = RegistryState((stored_from(kept), stored_from(generation_model(name="g")), stored_model("gone")))
    spec, keys = registry(kept, changed, ner_model(name="n")), {"g": "fp"}
    full = compute_plan(spec, state, keys)
    shown = compute_plan(spec, state, keys, fingerprints=False)
    assert (shown.state_fingerprint, shown.spec_fingerprint) == ("", "")
    assert len(full.state_fingerprint) == 64 and len(full.spec_fingerprint) == 64
    assert shown == replace(full, state_fingerprint="", spec_fingerprint="")


def test_the_definitions_alone_give_the_plans_spec_fingerprint() -> None:
    # What apply checks a saved plan's definitions against (planfile.py): the same digest
    # from the definitions alone, another one for other definitions.
    spec = registry(embedding_model(name="e", default=True), generation_model(name="g", previous_names=["g-old"]))
    plan = compute_plan(spec, RegistryState((stored_model("gone"),)), {"g": "fp"})
    assert spec_fingerprint(spec) == plan.spec_fingerprint
    assert spec_fingerprint(registry(embedding_model(name="e", default=True))) != plan.spec_fingerprint


def test_simulated_apply_of_a_plan_leaves_nothing_to_plan() -> None:
    spec = registry(embedding_model(name="e", default=True), generation_model(name="g"), ner_model(name="n"))
    state = RegistryState((stored_model("gone"), stored_model("hand", managed_by=None)))
    keys = {"g": "fp"}
    after = simulate_apply(compute_plan(spec, state, keys), state)
    again = compute_plan(spec, after, keys)
    assert again.actions == () and again.unmanaged == ("hand",)
