"""--target: a plan limited to some models and what they need (targeting.py, pure)."""

from __future__ import annotations

import pytest

from reconciler.errors import RegistryError
from reconciler.pipeline import plan_registry
from reconciler.render import plan_to_json_data, render_markdown, render_text
from reconciler.state import RegistryState
from tests.factories import embedding_model, generation_model, knowledge_base, ner_model, registry, stored_from


def test_a_target_beside_a_blocked_delete_is_planned_alone_and_said_to_be_partial() -> None:
    used = stored_from(embedding_model(name="old-embed"))
    fix = stored_from(ner_model(name="ner", default=True))
    state = RegistryState((used, fix), (knowledge_base("kb-a", embedding=used),))
    spec = registry(ner_model(name="ner", default=True, model_id="gliner-v2"), embedding_model(name="emb", default=True))
    whole = plan_registry(spec, state, {}).plan
    assert whole.is_blocked and {a.name for a in whole.actions} == {"emb", "ner", "old-embed"}
    partial = plan_registry(spec, state, {}, targets=["ner"]).plan
    assert [a.name for a in partial.actions] == ["ner"] and not partial.is_blocked
    assert partial.left_out == ("emb", "old-embed")
    line = "PARTIAL PLAN: only --target ner; 2 other changes left out: emb, old-embed."
    text = render_text(partial)
    assert text.splitlines()[0] == line and text.splitlines()[-1] == line
    assert line in render_markdown(partial)
    data = plan_to_json_data(partial)
    assert (data["partial"], data["targets"], data["left_out"]) == (True, ["ner"], ["emb", "old-embed"])


def test_a_default_moving_between_two_models_brings_both() -> None:
    old = stored_from(ner_model(name="ner-a", default=True))
    new = stored_from(ner_model(name="ner-b"))
    spec = registry(ner_model(name="ner-a"), ner_model(name="ner-b", default=True), embedding_model(name="emb", default=True))
    for target in ("ner-a", "ner-b"):
        plan = plan_registry(spec, RegistryState((old, new)), {}, targets=[target]).plan
        assert [a.name for a in plan.actions] == ["ner-a", "ner-b"]
        assert plan.target_extras == tuple(sorted({"ner-a", "ner-b"} - {target})) and plan.left_out == ("emb",)
        assert "(and what they need: " in render_text(plan)


def test_a_renamed_model_is_targeted_by_its_old_or_new_name() -> None:
    old = stored_from(ner_model(name="ner-old", default=True))
    spec = registry(ner_model(name="ner-new", default=True, previous_names=["ner-old"]), embedding_model(name="emb", default=True))
    for target in ("ner-old", "ner-new"):
        plan = plan_registry(spec, RegistryState((old,)), {}, targets=[target]).plan
        assert [a.name for a in plan.actions] == ["ner-new"]


def test_an_unknown_target_is_an_error_naming_it() -> None:
    spec = registry(ner_model(name="ner", default=True))
    with pytest.raises(RegistryError, match=r"--target: no model named 'nre' in the registry or the database \(known: ner\)"):
        plan_registry(spec, RegistryState(), {}, targets=["nre"])


def test_a_target_with_nothing_to_do_is_an_empty_partial_plan() -> None:
    row = stored_from(ner_model(name="ner", default=True))
    spec = registry(ner_model(name="ner", default=True), embedding_model(name="emb", default=True))
    plan = plan_registry(spec, RegistryState((row,)), {}, targets=["ner"]).plan
    assert not plan.has_changes and plan.partial and plan.left_out == ("emb",)


def test_a_partial_plan_warns_only_of_unchecked_keys_in_its_scope() -> None:
    # Both stored with a key; OPENAI_API_KEY unset here, so neither key can be compared.
    chat = generation_model(name="chat", default=True)
    other = generation_model(name="other-chat")
    state = RegistryState((stored_from(chat, fingerprint="fp-chat"), stored_from(other, fingerprint="fp-other")))
    spec = registry(chat, {**other, "description": "changed"}, embedding_model(name="emb", default=True))
    assert plan_registry(spec, state, {}).plan.unchecked_keys == ("chat", "other-chat")
    partial = plan_registry(spec, state, {}, targets=["chat"]).plan
    assert partial.unchecked_keys == ("chat",)  # other-chat is left out: no warning about it
    assert [w for w in partial.warnings if "not compared" in w] == [
        "api_key not compared for chat: its ${env:...} variable or LLM_REGISTRY_ENCRYPTION_KEY is unset here; "
        "apply resolves and compares it"
    ]
