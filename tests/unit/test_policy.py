"""Policies: what the plan refuses (exit 3) and what it warns about."""

from __future__ import annotations

from dataclasses import replace

import pytest

from reconciler.plan import compute_plan
from reconciler.policy import apply_policies
from reconciler.state import RegistryState
from tests.factories import embedding_model, generation_model, knowledge_base, stored_model
from tests.factories import registry, stored_from


def planned(spec, state, *, keys=None, allow_delete_all=False):  # noqa: ANN001, ANN202 - test helper
    return apply_policies(compute_plan(spec, state, keys or {}), state, allow_delete_all=allow_delete_all)


def test_delete_of_a_model_used_by_kbs_is_blocked_naming_every_kb() -> None:
    keep = embedding_model(name="keep", default=True)
    used = stored_model("used")
    kbs = (knowledge_base("support", embedding=used), knowledge_base("legal", generation=used))
    plan = planned(registry(keep), RegistryState((stored_from(keep), used), kbs))
    (action,) = plan.blocked
    assert action.kind == "delete" and action.name == "used"
    assert "used by 2 knowledge bases: legal, support" in action.blocked[0]
    assert plan.is_blocked and plan.count("delete") == 0


def test_delete_of_an_unused_model_is_not_blocked() -> None:
    keep = embedding_model(name="keep", default=True)
    plan = planned(registry(keep), RegistryState((stored_from(keep), stored_model("unused"))))
    assert plan.count("delete") == 1 and not plan.is_blocked


@pytest.mark.parametrize(
    ("field", "parameters", "top_level"),
    [
        ("dimensions", {"dimensions": 1024}, {}),
        ("distance_metric", {"distance_metric": "euclidean"}, {}),
        ("normalize", {"normalize": False}, {}),
        ("model_id", {}, {"model_id": "mxbai-embed-large"}),
        ("provider", {}, {"provider": "openai", "api_key": "${env:OPENAI_API_KEY}", "api_endpoint": None}),
    ],
)
def test_vector_breaking_change_of_a_used_embedding_model_is_blocked(field: str, parameters: dict, top_level: dict) -> None:
    before = embedding_model(name="emb", default=True)
    row = stored_from(before)
    after = embedding_model(name="emb", default=True, parameters=parameters, **top_level)
    plan = planned(registry(after), RegistryState((row,), (knowledge_base("kb-a", embedding=row),)))
    (action,) = plan.blocked
    assert field in action.blocked[0] and "kb-a" in action.blocked[0]


def test_vector_breaking_change_of_an_unused_embedding_model_is_allowed() -> None:
    before = embedding_model(name="emb", default=True)
    after = embedding_model(name="emb", default=True, parameters={"dimensions": 1024})
    plan = planned(registry(after), RegistryState((stored_from(before),)))
    assert plan.count("update") == 1 and not plan.is_blocked


def test_harmless_change_of_a_used_embedding_model_is_allowed() -> None:
    before = embedding_model(name="emb", default=True)
    row = stored_from(before)
    after = embedding_model(name="emb", default=True, parameters={"batch_size": 64}, description="faster")
    plan = planned(registry(after), RegistryState((row,), (knowledge_base(embedding=row),)))
    assert plan.count("update") == 1 and not plan.is_blocked


def test_type_change_of_a_used_model_is_blocked() -> None:
    before = generation_model(name="m", provider="ollama", api_key=None, api_endpoint="http://o:11434")
    row = stored_from(before)
    after = embedding_model(name="m")
    plan = planned(registry(after), RegistryState((row,), (knowledge_base("kb", generation=row),)))
    assert "type cannot change" in plan.blocked[0].blocked[0]


def test_a_type_change_beside_other_changes_names_type_as_the_only_blocking_field() -> None:
    before = generation_model(name="m", provider="ollama", api_key=None, api_endpoint="http://o:11434")
    row = stored_from(before)
    after = embedding_model(name="m")
    plan = planned(registry(after), RegistryState((row,), (knowledge_base("kb", generation=row),)))
    (action,) = plan.blocked
    first, advice = action.blocked
    assert first == "used by 1 knowledge base: kb; a model's type cannot change while KBs use it"
    assert advice.startswith("only type blocks this change; the other changes (model_id, ")
    assert "type" not in advice.split("(", 1)[1].split(")", 1)[0].split(", ")


def test_a_generation_model_a_kb_uses_may_change_its_model_id_and_provider() -> None:
    # Only an embedding model's vector fields make a KB's stored vectors meaningless.
    before = generation_model(name="g", default=True)
    row = stored_from(before)
    after = generation_model(name="g", default=True, model_id="gpt-4o", provider="azure",
                             api_version="2024-06-01", api_endpoint="https://example.openai.azure.com")
    plan = planned(registry(after), RegistryState((row,), (knowledge_base("kb", generation=row),)))
    (action,) = plan.actions
    assert action.kind == "update" and {"model_id", "provider"} <= set(action.changed_fields())
    assert not plan.is_blocked and action.blocked == ()


def test_deactivating_a_used_model_warns() -> None:
    before = generation_model(name="g")
    row = stored_from(before, fingerprint="fp")
    after = generation_model(name="g", active=False)
    plan = planned(registry(after), RegistryState((row,), (knowledge_base("kb-x", generation=row),)), keys={"g": "fp"})
    (action,) = plan.actions
    assert not action.is_blocked
    assert action.warnings == ("deactivates a model used by 1 knowledge base: kb-x",)


def test_changing_another_field_of_an_already_inactive_used_model_does_not_warn_of_deactivation() -> None:
    before = generation_model(name="g", active=False, description="old")
    row = stored_from(before, fingerprint="fp")
    after = generation_model(name="g", active=False, description="new")
    plan = planned(registry(after), RegistryState((row,), (knowledge_base("kb-x", generation=row),)), keys={"g": "fp"})
    (action,) = plan.actions
    assert [c.field for c in action.changes] == ["description"]
    assert action.warnings == ()


def test_a_blocked_delete_of_the_default_keeps_it_the_default() -> None:
    # The delete is refused, so after this plan the model is still there and still the default.
    used = embedding_model(name="used", default=True)
    row = stored_from(used)
    other = embedding_model(name="other")
    plan = planned(registry(other), RegistryState((row, stored_from(other)), (knowledge_base("kb", embedding=row),)))
    (blocked,) = plan.blocked
    assert blocked.name == "used" and blocked.kind == "delete"
    assert not any("no embedding model is the default" in warning for warning in plan.warnings), plan.warnings


def test_leaving_a_type_without_a_default_warns() -> None:
    before = embedding_model(name="e", default=True)
    plan = planned(registry(embedding_model(name="e", default=False)), RegistryState((stored_from(before),)))
    assert "after this plan no embedding model is the default" in plan.warnings


def test_deleting_the_default_warns_that_its_type_is_left_without_one() -> None:
    gone = embedding_model(name="gone", default=True)
    other = embedding_model(name="other")
    plan = planned(registry(other), RegistryState((stored_from(gone), stored_from(other))))
    assert [(a.kind, a.name) for a in plan.actions] == [("delete", "gone")] and not plan.is_blocked
    assert "after this plan no embedding model is the default" in plan.warnings


def test_deleting_every_managed_model_is_refused_unless_allowed() -> None:
    state = RegistryState((stored_model("a"), stored_model("b"), stored_model("hand", managed_by=None)))
    refused = planned(registry(), state)
    assert refused.is_blocked and "deletes every model llm-registry manages (2)" in refused.refusals[0]
    assert all(a.is_blocked for a in refused.actions)
    allowed = planned(registry(), state, allow_delete_all=True)
    assert not allowed.is_blocked and allowed.count("delete") == 2


def test_default_colliding_with_an_unmanaged_default_is_blocked() -> None:
    hand = stored_model("hand", managed_by=None, is_default=True)
    plan = planned(registry(embedding_model(name="new", default=True)), RegistryState((hand,)))
    (action,) = plan.blocked
    assert action.name == "new" and "'hand' (not managed by llm-registry) is already the default embedding model" in action.blocked[0]


def test_adoption_warns() -> None:
    model = embedding_model(name="hand", default=True)
    row = stored_from(model, managed_by=None)
    from reconciler.state import StoredModel

    row = StoredModel(row.id, row.name, None, row.record)
    (action,) = planned(registry(model), RegistryState((row,))).actions
    assert action.adopt and "adopts a row that was created by hand" in action.warnings[0]


def _legacy_embedding_row():  # noqa: ANN202 - test helper
    """A KB-used embedding row from the old admin page: normalize and distance_metric NULL."""
    return stored_from(
        embedding_model(name="legacy-embed"), managed_by=None, normalize=None, distance_metric=None, batch_size=None
    )


def test_adopting_a_kb_used_legacy_row_that_omits_its_null_parameters_changes_nothing_but_ownership() -> None:
    row = _legacy_embedding_row()
    written = embedding_model(name="legacy-embed", parameters={"dimensions": 768})
    for omitted in ("normalize", "distance_metric", "batch_size"):
        del written["parameters"][omitted]
    state = RegistryState((row,), (knowledge_base("docs", embedding=row),))
    (action,) = planned(registry(written), state).actions
    assert action.adopt and not action.is_blocked
    assert action.changed_fields() == ("managed_by",)
    assert action.desired["normalize"] is None and action.desired["distance_metric"] is None


def test_null_in_the_file_says_not_set_and_matches_a_null_column() -> None:
    row = _legacy_embedding_row()
    written = embedding_model(name="legacy-embed", parameters={"normalize": None, "distance_metric": None, "batch_size": None})
    state = RegistryState((row,), (knowledge_base("docs", embedding=row),))
    (action,) = planned(registry(written), state).actions
    assert action.changed_fields() == ("managed_by",) and not action.is_blocked


def test_writing_a_value_over_a_null_column_of_a_kb_used_embedding_is_still_blocked() -> None:
    row = _legacy_embedding_row()
    written = embedding_model(name="legacy-embed", parameters={"normalize": True, "distance_metric": None, "batch_size": None})
    state = RegistryState((row,), (knowledge_base("docs", embedding=row),))
    (action,) = planned(registry(written), state).actions
    assert action.changed_fields() == ("managed_by", "normalize") and action.is_blocked


def test_an_omitted_parameter_still_takes_its_default_on_a_new_row_and_over_a_set_column() -> None:
    written = embedding_model(name="e", parameters={"dimensions": 768})
    del written["parameters"]["batch_size"]
    (create,) = planned(registry(written), RegistryState()).actions
    assert create.desired["batch_size"] == 32
    row = stored_from(embedding_model(name="e"), batch_size=64)
    (update,) = planned(registry(written), RegistryState((row,))).actions
    assert update.changed_fields() == ("batch_size",) and update.desired["batch_size"] == 32


def test_adopting_a_row_whose_key_has_no_fingerprint_yet_is_blocked_naming_db_upgrade() -> None:
    model = generation_model(name="gpt", default=True)
    row = stored_from(model)
    waiting = replace(row, managed_by=None, record={**row.record, "api_key": None}, key_pending=True)
    plan = planned(registry(model), RegistryState((waiting,)), keys={"gpt": "f" * 64})
    (action,) = plan.blocked
    assert action.adopt
    assert action.blocked == (
        "its stored API key has no fingerprint yet (it was stored before llm-registry), so this plan cannot "
        "compare it: run `llm-registry db upgrade` with LLM_REGISTRY_ENCRYPTION_KEY set first",
    )
    fingerprinted = replace(row, managed_by=None)
    assert not planned(registry(model), RegistryState((fingerprinted,)), keys={"gpt": row.record["api_key"]}).is_blocked


def test_a_blocked_change_beside_harmless_fields_names_which_fields_block() -> None:
    row = stored_from(embedding_model(name="emb", default=True))
    after = embedding_model(name="emb", default=True, parameters={"dimensions": 1024, "batch_size": 64})
    plan = planned(registry(after), RegistryState((row,), (knowledge_base("kb-a", embedding=row),)))
    (action,) = plan.blocked
    assert action.blocked[-1] == (
        "only parameters.dimensions blocks this change; the other changes (parameters.batch_size) are not blocked: "
        "make them in a separate change without the blocked fields"
    )


def test_a_blocked_change_of_blocking_fields_only_has_no_separate_change_advice() -> None:
    row = stored_from(embedding_model(name="emb", default=True))
    after = embedding_model(name="emb", default=True, parameters={"dimensions": 1024})
    plan = planned(registry(after), RegistryState((row,), (knowledge_base("kb-a", embedding=row),)))
    (action,) = plan.blocked
    assert len(action.blocked) == 1 and "separate change" not in action.blocked[0]


def test_a_rename_or_an_adoption_beside_a_blocked_change_is_no_separate_change() -> None:
    # The name and ownership go with the row: the advice lists only fields that could change on their own.
    old = embedding_model(name="emb-v1", default=True)
    renamed = stored_from(old)
    hand_made = stored_from(embedding_model(name="hand", default=False), managed_by=None)
    kbs = (knowledge_base("kb-a", embedding=renamed), knowledge_base("kb-b", embedding=hand_made))
    after = (
        embedding_model(name="emb-v2", default=True, previous_names=["emb-v1"], parameters={"dimensions": 1024}),
        embedding_model(name="hand", default=False, parameters={"dimensions": 1024}),
    )
    plan = planned(registry(*after), RegistryState((renamed, hand_made), kbs))
    by_name = {action.name: action for action in plan.blocked}
    assert by_name["emb-v2"].changed_fields() == ("name", "dimensions")
    assert by_name["hand"].changed_fields() == ("managed_by", "dimensions")
    for action in by_name.values():
        assert len(action.blocked) == 1 and "separate change" not in action.blocked[0], action.blocked


def test_a_delete_and_a_create_of_the_same_model_hint_at_a_rename_and_the_delete_stays_blocked() -> None:
    row = stored_from(embedding_model(name="nomic-v1", default=True))
    renamed = embedding_model(name="nomic", default=True)
    plan = planned(registry(renamed), RegistryState((row,), (knowledge_base("kb-a", embedding=row),)))
    by_name = {action.name: action for action in plan.actions}
    hint = "add `previous_names: [nomic-v1]` to 'nomic' to keep its id and KB links"
    assert by_name["nomic"].warnings[0] == f"looks like a rename of 'nomic-v1': {hint}"
    assert by_name["nomic-v1"].warnings[0] == f"looks like a rename to 'nomic': {hint}"
    assert by_name["nomic-v1"].is_blocked and "kb-a" in by_name["nomic-v1"].blocked[0]


def test_no_rename_hint_for_a_different_model() -> None:
    row = stored_from(embedding_model(name="old", default=True))
    other = embedding_model(name="new", default=True, model_id="mxbai-embed-large")
    plan = planned(registry(other), RegistryState((row,)), allow_delete_all=True)
    assert not any("rename" in warning for action in plan.actions for warning in action.warnings)


def test_an_updated_row_neither_takes_nor_gives_a_rename_hint() -> None:
    # Only a create can be the new name of a row, and only a deleted row its old name: "kept" is
    # updated beside a delete ("twin") and a create ("new") of the same type, provider and model_id.
    kept = embedding_model(name="kept", default=True)
    twin = embedding_model(name="twin")
    new = embedding_model(name="new")
    state = RegistryState((stored_from(kept), stored_from(twin)))
    plan = planned(registry({**kept, "description": "edited"}, new), state)
    warnings = {action.name: (action.kind, action.warnings) for action in plan.actions}
    hint = "add `previous_names: [twin]` to 'new' to keep its id and KB links"
    assert warnings == {
        "kept": ("update", ()),
        "new": ("create", (f"looks like a rename of 'twin': {hint}",)),
        "twin": ("delete", (f"looks like a rename to 'new': {hint}",)),
    }
