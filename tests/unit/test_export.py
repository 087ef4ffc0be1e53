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
