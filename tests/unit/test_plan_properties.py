"""Properties of the plan over random registries and databases (hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.load import Document
from reconciler.plan import KEY_UNKNOWN, compute_plan, simulate_apply
from reconciler.policy import apply_policies, types_without_default_after
from reconciler.spec import MODEL_ADAPTER, MODEL_TYPES, RECORD_FIELDS, desired_record
from reconciler.state import RegistryState
from reconciler.validate import validate_documents
from tests.factories import embedding_model, generation_model, knowledge_base, ner_model, stored_model

NAMES = [f"m{i}" for i in range(8)]


@st.composite
def definitions(draw: st.DrawFn, name: str) -> dict[str, Any]:
    kind = draw(st.sampled_from(["embedding", "generation", "ner"]))
    if kind == "embedding":
        return embedding_model(
            name=name,
            parameters={"dimensions": draw(st.sampled_from([384, 768, 1024])), "normalize": draw(st.booleans())},
            active=draw(st.booleans()),
        )
    if kind == "generation":
        return generation_model(
            name=name,
            provider=draw(st.sampled_from(["openai", "anthropic", "gemini"])),
            parameters={"temperature": draw(st.sampled_from([0.0, 0.5, 0.7, 2.0]))},
            description=draw(st.sampled_from(["", "x", "y"])),
        )
    return ner_model(name=name, parameters={"batch_size": draw(st.integers(1, 64))})


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[dict[str, Any]], RegistryState, dict[str, Any]]:
    """A valid registry, a database that overlaps it arbitrarily, and key fingerprints."""
    in_git = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=6))
    models = [draw(definitions(name)) for name in in_git]
    # Some git models rename a row that only the database has.
    free_old_names = [f"old-{name}" for name in in_git]
    rows = []
    for model in models:
        choice = draw(st.sampled_from(["absent", "same", "drifted", "renamed", "hand-made"]))
        if choice == "absent":
            continue
        record = desired_record(MODEL_ADAPTER.validate_python(model))
        record["api_key"] = draw(st.sampled_from([None, "fp-a", "fp-b"])) if model.get("api_key") else None
        if choice == "drifted":
            record["description"] = "drifted"
        row_name = model["name"]
        if choice == "renamed":
            row_name = free_old_names.pop(0) if free_old_names else row_name
            model["previous_names"] = [row_name] if row_name != model["name"] else []
        managed_by = None if choice == "hand-made" else "llm-registry"
        rows.append(stored_model(row_name, managed_by=managed_by, **record))
    for extra in draw(st.lists(st.sampled_from(["x1", "x2", "x3"]), unique=True, max_size=3)):
        rows.append(stored_model(extra, managed_by=draw(st.sampled_from([None, "llm-registry"]))))
    kbs = tuple(knowledge_base(embedding=row) for row in rows if draw(st.booleans()))
    keys = {m["name"]: draw(st.sampled_from(["fp-a", "fp-b", KEY_UNKNOWN])) for m in models if m.get("api_key")}
    return models, RegistryState(tuple(rows), kbs), keys


def spec_of(models: list[dict[str, Any]], files: int = 1) -> Any:
    documents = [
        Document(f"f{i}.yaml", {"version": 1, "models": models[i::files]}) for i in range(files)
    ]
    spec, diagnostics = validate_documents(documents)
    assert not [d for d in diagnostics if d.severity == "error"], diagnostics
    return spec


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_applying_a_plan_in_memory_leaves_an_empty_plan(scenario: Any) -> None:
    models, state, keys = scenario
    spec = spec_of(models)
    plan = compute_plan(spec, state, keys)
    after = simulate_apply(plan, state)
    again = compute_plan(spec, after, keys)
    assert again.actions == ()
    assert again.unmanaged == plan.unmanaged


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_the_no_default_warning_sees_what_simulate_apply_sees(scenario: Any) -> None:
    # The policy computes the defaults after the plan without simulate_apply's rows; blocked
    # actions (which apply skips) included, so the two must agree on every plan.
    models, state, keys = scenario
    plan = apply_policies(compute_plan(spec_of(models), state, keys), state)
    after = simulate_apply(plan, state).models
    expected = [
        model_type for model_type in MODEL_TYPES
        if any(r.record["type"] == model_type and r.record["is_active"] for r in after)
        and not any(r.record["type"] == model_type and r.record["is_default"] for r in after)
    ]  # fmt: skip
    assert types_without_default_after(plan, state) == expected


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.randoms(use_true_random=False), st.integers(1, 4))
def test_plan_does_not_depend_on_file_order_or_split(scenario: Any, random: Any, files: int) -> None:
    models, state, keys = scenario
    shuffled = list(models)
    random.shuffle(shuffled)
    reference = apply_policies(compute_plan(spec_of(models), state, keys), state)
    other = apply_policies(compute_plan(spec_of(shuffled, files), state, keys), state)
    strip = lambda plan: [(a.kind, a.name, a.changes, a.blocked, a.warnings) for a in plan.actions]  # noqa: E731
    assert strip(reference) == strip(other)
    assert reference.spec_fingerprint == other.spec_fingerprint
    assert reference.state_fingerprint == other.state_fingerprint


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_no_plan_ever_holds_a_key_fingerprint_in_a_change(scenario: Any) -> None:
    models, state, keys = scenario
    plan = apply_policies(compute_plan(spec_of(models), state, keys), state)
    for action in plan.actions:
        for change in action.changes:
            assert change.before not in ("fp-a", "fp-b") and change.after not in ("fp-a", "fp-b")


def naive_plan(spec: Any, state: RegistryState, keys: dict[str, Any]) -> tuple[dict[str, tuple[str, dict[str, tuple[Any, Any]]]], list[str]]:
    """A second, deliberately plain diff written from DESIGN.md's plan semantics (the
    oracle for compute_plan): (name -> (kind, {field: (before, after)}), unmanaged
    rows left alone); api_key values are reduced to whether they changed."""
    rows = {row.name: row for row in state.models}
    claimed = {model.name for model in spec.models if model.name in rows}
    expected: dict[str, tuple[str, dict[str, tuple[Any, Any]]]] = {}
    for model in spec.models:
        desired = desired_record(model)
        row, old_name = rows.get(model.name), None
        if row is None:
            for candidate in model.previous_names:
                if candidate in rows and candidate not in claimed:
                    row, old_name = rows[candidate], candidate
                    break
        if row is None:
            expected[model.name] = ("create", {f: (None, desired[f]) for f in desired if desired[f] is not None and f != "api_key"})
            continue
        claimed.add(row.name)
        changes = {f: (row.record[f], desired[f]) for f in desired if f != "api_key" and desired[f] != row.record[f]}
        wanted = keys.get(model.name) if model.api_key is not None else None
        stored = row.record["api_key"]
        if (wanted == KEY_UNKNOWN and stored is None) or (wanted != KEY_UNKNOWN and wanted != stored):
            changes["api_key"] = ("?", "?")
        if old_name is not None:
            changes["name"] = (old_name, model.name)
        if row.managed_by != "llm-registry":
            changes["managed_by"] = (row.managed_by, "llm-registry")
        if changes:
            expected[model.name] = ("update", changes)
    for row in state.models:
        if row.name not in claimed and row.managed_by == "llm-registry":
            expected[row.name] = ("delete", {})
    return expected, sorted(row.name for row in state.models if row.name not in claimed and row.managed_by != "llm-registry")


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_the_plan_agrees_with_a_naive_diff(scenario: Any) -> None:
    models, state, keys = scenario
    spec = spec_of(models)
    plan = compute_plan(spec, state, keys)
    actual = {}
    for action in plan.actions:
        changes = {
            c.field: ("?", "?") if c.field == "api_key" else (c.before, c.after)
            for c in action.changes
            if not (action.kind == "create" and c.field == "api_key")
        }
        actual[action.name] = (action.kind, {} if action.kind == "delete" else changes)
    assert (actual, list(plan.unmanaged)) == naive_plan(spec, state, keys)


def _documented_digest(document: Any) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_fingerprints_are_digests_of_their_documented_json(scenario: Any) -> None:
    # Plan files carry both: computed row by row, they must stay the digest of the whole document.
    models, state, keys = scenario
    spec = spec_of(models)
    plan = compute_plan(spec, state, keys)
    assert plan.state_fingerprint == _documented_digest(
        {
            "models": sorted(
                ([m.id, m.name, m.managed_by, [m.record[f] for f in RECORD_FIELDS]] for m in state.models), key=lambda row: row[1]
            ),
            "knowledge_bases": sorted([kb.id, kb.name, kb.embedding_model_id, kb.generation_model_id] for kb in state.knowledge_bases),
        }
    )
    assert plan.spec_fingerprint == _documented_digest(
        [[m.name, sorted(m.previous_names), [desired_record(m)[f] for f in RECORD_FIELDS]] for m in spec.models]
    )
