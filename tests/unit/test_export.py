"""The exporter: rows -> registry files, pure. Its output validates and says exactly what the rows hold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.export import ExportModel, export_registry, key_variable, key_variables, model_document
from reconciler.spec import MODEL_ADAPTER, desired_record
from reconciler.validate import validate_directory
from tests.factories import embedding_model, generation_model, ner_model, stored_model


def _record(definition: dict[str, Any]) -> dict[str, Any]:
    return desired_record(MODEL_ADAPTER.validate_python(definition))


def test_key_variable_convention() -> None:
    assert key_variable("gpt-4o.mini") == "LLM_KEY_GPT_4O_MINI"
    assert key_variables(["a-b", "a.b", "c"]) == {"a-b": "LLM_KEY_A_B", "a.b": "LLM_KEY_A_B_2", "c": "LLM_KEY_C"}


def test_defaults_are_left_out_unless_explicit() -> None:
    record = _record(embedding_model(name="e", default=True))
    document, warnings = model_document(ExportModel("e", record))
    assert warnings == []
    assert list(document) == ["name", "type", "provider", "model_id", "api_endpoint", "default", "parameters"]
    assert document["parameters"] == {"dimensions": 768}
    explicit, _ = model_document(ExportModel("e", record), explicit=True)
    assert list(explicit) == [
        "name", "type", "provider", "model_id", "api_endpoint", "api_version", "active", "default", "description", "parameters"
    ]
    assert explicit["parameters"] == {"dimensions": 768, "max_tokens": 8192, "normalize": True, "distance_metric": "cosine", "batch_size": 32}


def test_null_columns_with_a_default_are_written_null_and_optional_ones_left_out() -> None:
    row = stored_model("legacy", normalize=None, distance_metric=None)
    document, _ = model_document(ExportModel("legacy", row.record))
    assert document["parameters"] == {"dimensions": 768, "normalize": None, "distance_metric": None}
    generation = _record(generation_model(name="g", parameters={"max_output_tokens": None, "temperature": None}))
    document, _ = model_document(ExportModel("g", generation, "LLM_KEY_G"))
    assert document["parameters"] == {"context_window": 128000, "temperature": None}
    assert document["api_key"] == "${env:LLM_KEY_G}"


def test_a_column_of_another_type_is_reported() -> None:
    row = stored_model("e", temperature=0.5)
    _, warnings = model_document(ExportModel("e", row.record))
    assert warnings == [
        "model 'e': column temperature holds 0.5, but embedding models take no temperature; "
        "the file cannot say it, so apply would clear it"
    ]


@pytest.mark.parametrize("split", ["provider", "type", "none"])
@pytest.mark.parametrize("explicit", [False, True])
def test_exported_files_validate_and_give_back_every_record(tmp_path: Path, split: str, explicit: bool) -> None:
    definitions = [
        embedding_model(name="e", default=True, description="it's: \"quoted\"\nand multi-line", parameters={"normalize": None}),
        generation_model(name="g", default=True, api_key="${env:G_KEY}", parameters={"top_k": 7, "temperature": 0.25}),
        generation_model(name="az", provider="azure", api_endpoint="https://r.openai.azure.com", api_version="2024-10-21", api_key="${env:AZ}"),
        ner_model(name="n", active=False, parameters={"batch_size": None}),
    ]
    models = [
        ExportModel(d["name"], _record(d), "LLM_KEY_" + d["name"].upper() if "api_key" in d else None) for d in definitions
    ]
    result = export_registry(models, split=split, explicit=explicit)  # type: ignore[arg-type]
    for exported in result.files:
        (tmp_path / exported.name).write_text(exported.text)
    validation = validate_directory(tmp_path)
    assert validation.ok, validation.diagnostics
    assert validation.spec is not None
    back = {model.name: desired_record(model) for model in validation.spec.models}
    for model in models:
        expected = dict(model.record, api_key=f"${{env:{model.key_variable}}}" if model.key_variable else None)
        assert back[model.name] == expected
    assert result.variables == (("LLM_KEY_AZ", "az"), ("LLM_KEY_G", "g"))


def test_an_empty_registry_is_one_empty_file() -> None:
    (only,) = export_registry([]).files
    assert only.name == "models.yaml" and only.text.endswith("version: 1\nmodels: []\n")


# ---------------------------------------------------------------- the round trip, as a property

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import tempfile  # noqa: E402

from reconciler.load import load_directory  # noqa: E402
from reconciler.plan import compute_plan  # noqa: E402
from reconciler.policy import apply_policies  # noqa: E402
from reconciler.providers import PROVIDER_MATRIX  # noqa: E402
from reconciler.state import RegistryState  # noqa: E402
from reconciler.validate import validate_documents  # noqa: E402
from tests.factories import knowledge_base  # noqa: E402

# Text, and strings that YAML readers take for something else unless quoted.
_TEXT = st.one_of(
    st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")), max_size=30),
    st.sampled_from(["1e5", "-.5", "0o17", "0x1F", "yes", "~", "null", "12:30", "2024-10-21", "a\nb", " lead", "#x", "${env:X}"]),
)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


@st.composite
def table_rows(draw: st.DrawFn, name: str) -> Any:
    """Any row the table accepts that the format can hold: NULL wherever the column allows it."""
    model_type = draw(st.sampled_from(["embedding", "generation", "ner"]))
    provider = draw(st.sampled_from([p for p, m in PROVIDER_MATRIX.items() if model_type in m["types"]]))
    matrix = PROVIDER_MATRIX[provider]
    columns: dict[str, Any] = {
        "type": model_type, "provider": provider,
        "model_id": draw(st.sampled_from(["m", "llama3:8b", "text-embedding-3-small", "models/x", "yes", "null", "1e5", "7"])),
        "api_endpoint": "http://h.test:1/x" if matrix["api_endpoint"] == "required" else draw(_maybe(st.just("https://p.test/v1"))),
        "api_version": "2024-10-21" if provider == "azure" else None,
        "api_key": draw(st.sampled_from(["fp-a", "fp-b"])) if matrix["api_key"] == "required" else None,
        "is_active": draw(st.booleans()), "is_default": False, "description": draw(_TEXT),
        "dimensions": None, "max_tokens": None, "normalize": None, "distance_metric": None, "batch_size": None,
        "context_window": None, "max_output_tokens": None, "temperature": None, "top_p": None, "top_k": None,
    }  # fmt: skip
    if model_type in ("embedding", "ner"):
        columns["max_tokens"] = draw(_maybe(st.integers(1, 2**31 - 1)))
        columns["batch_size"] = draw(_maybe(st.integers(1, 2048)))
    if model_type == "embedding":
        columns["dimensions"] = draw(st.integers(1, 65536))
        columns["normalize"] = draw(_maybe(st.booleans()))
        columns["distance_metric"] = draw(_maybe(st.sampled_from(["cosine", "dot_product", "euclidean"])))
    if model_type == "generation":
        columns["context_window"] = draw(st.integers(1, 2**31 - 1))
        columns["max_output_tokens"] = draw(_maybe(st.integers(1, columns["context_window"])))
        columns["temperature"] = draw(_maybe(st.floats(0.0, 2.0)))
        columns["top_p"] = draw(_maybe(st.floats(0.0, 1.0)))
        columns["top_k"] = draw(_maybe(st.integers(1, 1000)))
    return stored_model(name, managed_by=draw(st.sampled_from([None, "llm-registry"])), **columns)


@st.composite
def databases(draw: st.DrawFn) -> RegistryState:
    names = draw(st.lists(st.sampled_from(["a", "b-1", "c.2", "d_3", "e"]), unique=True, min_size=1, max_size=5))
    rows = [draw(table_rows(name)) for name in names]
    kbs = tuple(knowledge_base(embedding=row) for row in rows if row.record["type"] == "embedding" and draw(st.booleans()))
    return RegistryState(tuple(rows), kbs)


@settings(max_examples=200, deadline=None)
@given(databases(), st.sampled_from(["provider", "type", "none"]), st.booleans())
def test_export_then_plan_adopts_hand_made_rows_and_changes_nothing_else(state: RegistryState, split: str, explicit: bool) -> None:
    variables = key_variables([m.name for m in state.models if m.record["api_key"] is not None])
    result = export_registry(
        [ExportModel(m.name, m.record, variables.get(m.name), m.managed) for m in state.models], split=split, explicit=explicit  # type: ignore[arg-type]
    )
    assert result.warnings == ()
    with tempfile.TemporaryDirectory() as directory:
        for exported in result.files:
            (Path(directory) / exported.name).write_text(exported.text)
        documents, problems = load_directory(Path(directory))  # the registry's own (YAML 1.2) reader
    assert problems == []
    spec, diagnostics = validate_documents(documents)
    assert not [d for d in diagnostics if d.severity == "error"], diagnostics
    keys = {m.name: m.record["api_key"] for m in state.models if m.record["api_key"] is not None}
    plan = apply_policies(compute_plan(spec, state, keys), state)
    assert not plan.is_blocked
    for action in plan.actions:
        assert (action.kind, action.adopt, action.changed_fields()) == ("update", True, ("managed_by",))
    assert {a.name for a in plan.actions} == {m.name for m in state.models if not m.managed}
