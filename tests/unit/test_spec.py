"""The pydantic models of the format, including the original story's schema checks.

These call `spec` directly (no files): what the format accepts in principle. The
messages and positions users see are tested in test_validate.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from reconciler import spec
from tests.factories import embedding_model, generation_model, ner_model


def errors_of(raw: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """(loc, type) of every error pydantic finds in one model; [] when it is valid."""
    try:
        spec.MODEL_ADAPTER.validate_python(raw)
    except ValidationError as exc:
        return [(tuple(e["loc"]), e["type"]) for e in exc.errors()]
    return []


# --------------------------------------------------------------------------- the story's checks


def test_model_type_enum_values() -> None:
    assert spec.MODEL_TYPES == ("embedding", "generation", "ner")
    for factory in (embedding_model, generation_model, ner_model):
        model = spec.MODEL_ADAPTER.validate_python(factory())
        assert model.type in spec.MODEL_TYPES
    assert [t for _, t in errors_of(ner_model(type="rerank"))] == ["union_tag_invalid"]


def test_model_provider_enum_values() -> None:
    assert spec.PROVIDERS == ("ollama", "openai", "azure", "gemini", "anthropic", "cohere")
    assert set(spec.PROVIDER_MATRIX) == set(spec.PROVIDERS)
    for provider in spec.PROVIDERS:
        assert errors_of(ner_model(provider=provider)) == []  # the matrix is checked by validate
    assert errors_of(ner_model(provider="mistral")) == [(("ner", "provider"), "literal_error")]
    assert errors_of(ner_model(provider="OpenAI")) == [(("ner", "provider"), "literal_error")]


def test_anthropic_embedding_rejected() -> None:
    assert "embedding" not in spec.PROVIDER_MATRIX["anthropic"]["types"]
    assert spec.PROVIDER_MATRIX["anthropic"]["types"] == ("generation", "ner")
    for provider in ("ollama", "openai", "azure", "gemini", "cohere"):
        assert "embedding" in spec.PROVIDER_MATRIX[provider]["types"]


@pytest.mark.parametrize(("dimensions", "ok"), [(1, True), (768, True), (65536, True), (0, False), (-1, False), (65537, False)])
def test_embedding_dimensions_range(dimensions: int, ok: bool) -> None:
    assert (errors_of(embedding_model(parameters={"dimensions": dimensions})) == []) is ok


@pytest.mark.parametrize(("temperature", "ok"), [(0.0, True), (0.7, True), (2.0, True), (2, True), (-0.01, False), (2.01, False)])
def test_generation_temperature_range(temperature: float, ok: bool) -> None:
    assert (errors_of(generation_model(parameters={"temperature": temperature})) == []) is ok


@pytest.mark.parametrize(("top_p", "ok"), [(0.0, True), (0.5, True), (1.0, True), (1, True), (-0.01, False), (1.01, False)])
def test_generation_top_p_range(top_p: float, ok: bool) -> None:
    assert (errors_of(generation_model(parameters={"top_p": top_p})) == []) is ok


# --------------------------------------------------------------------------- strictness and defaults


def test_unknown_keys_are_forbidden_at_every_level() -> None:
    assert errors_of(ner_model(colour="red")) == [(("ner", "colour"), "extra_forbidden")]
    assert errors_of(ner_model(parameters={"temperature": 1})) == [(("ner", "parameters", "temperature"), "extra_forbidden")]


@pytest.mark.parametrize(
    ("overrides", "error_type"),
    [({"active": "yes"}, "bool_type"), ({"active": 1}, "bool_type"), ({"model_id": 5}, "string_type"),
     ({"parameters": {"batch_size": "32"}}, "int_type"), ({"parameters": {"max_tokens": 1.0}}, "int_type")],
)
def test_no_type_coercion(overrides: dict[str, Any], error_type: str) -> None:
    assert [t for _, t in errors_of(ner_model(**overrides))] == [error_type]


def test_previous_names_accepts_a_yaml_list_and_keeps_items_strict() -> None:
    model = spec.MODEL_ADAPTER.validate_python(ner_model(previous_names=["old-a", "old-b"]))
    assert model.previous_names == ("old-a", "old-b")
    assert [t for _, t in errors_of(ner_model(previous_names=[1]))] == ["string_type"]
    assert [t for _, t in errors_of(ner_model(previous_names="old-a"))] == ["tuple_type"]


def test_registry_file_adapter_reads_a_whole_file() -> None:
    parsed = spec.REGISTRY_FILE_ADAPTER.validate_python({"version": 1, "models": [ner_model(), generation_model()]})
    assert [m.type for m in parsed.models] == ["ner", "generation"]


def test_the_file_model_reads_the_schema_version_that_validate_and_export_name() -> None:
    from typing import get_args

    assert get_args(spec.RegistryFile.model_fields["version"].annotation) == (spec.SCHEMA_VERSION,)


def test_defaults_fill_the_record() -> None:
    model = spec.MODEL_ADAPTER.validate_python(embedding_model(parameters=None) | {"parameters": {"dimensions": 384}})
    record = spec.desired_record(model)
    assert set(record) == set(spec.RECORD_FIELDS)
    assert record["is_active"] is True and record["is_default"] is False and record["description"] == ""
    assert (record["dimensions"], record["max_tokens"], record["normalize"], record["distance_metric"], record["batch_size"]) == (
        384, 8192, True, "cosine", 32,
    )
    assert record["context_window"] is None and record["temperature"] is None


def test_generation_defaults_and_float_record() -> None:
    model = spec.MODEL_ADAPTER.validate_python(generation_model(parameters=None) | {"parameters": {"context_window": 8192}})
    record = spec.desired_record(model)
    assert (record["temperature"], record["top_p"], record["top_k"], record["max_output_tokens"]) == (0.7, 1.0, None, None)
    model = spec.MODEL_ADAPTER.validate_python(generation_model(parameters={"temperature": 1}))
    assert isinstance(spec.desired_record(model)["temperature"], float)


@pytest.mark.parametrize("model_type", spec.MODEL_TYPES)
def test_the_record_holds_the_parameters_as_model_dump_gives_them(model_type: str) -> None:
    # desired_record reads the parameters' __dict__ (faster); pydantic's own dump is the reference.
    raw = {"embedding": embedding_model, "generation": generation_model, "ner": ner_model}[model_type]()
    model = spec.MODEL_ADAPTER.validate_python(raw)
    record = spec.desired_record(model)
    assert model.parameters.model_dump() == {name: record[name] for name in model.parameters.model_dump()}
    assert all(record[name] is None for name in spec.PARAMETER_FIELDS if name not in model.parameters.model_dump())


@pytest.mark.parametrize(
    ("reference", "name"),
    [("${env:OPENAI_API_KEY}", "OPENAI_API_KEY"), ("${env:_x1}", "_x1"), ("${env:1X}", None), ("OPENAI", None), ("${env:A-B}", None)],
)
def test_env_reference_name(reference: str, name: str | None) -> None:
    assert spec.env_reference_name(reference) == name


def test_json_schema_describes_the_file() -> None:
    schema = spec.json_schema()
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["properties"]["version"]["const"] == 1
    assert schema["required"] == ["version", "models"]
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"name": "e", "type": "embedding", "provider": "ollama", "model_id": "m", "api_endpoint": "http://h:1",
          "parameters": {"dimensions": 8}},
         {"max_tokens": 8192, "normalize": True, "distance_metric": "cosine", "batch_size": 32}),
        ({"name": "n", "type": "ner", "provider": "ollama", "model_id": "m", "api_endpoint": "http://h:1"},
         {"max_tokens": 8192, "batch_size": 32}),
        ({"name": "g", "type": "generation", "provider": "ollama", "model_id": "m", "api_endpoint": "http://h:1",
          "parameters": {"context_window": 1000}},
         {"max_output_tokens": None, "temperature": 0.7, "top_p": 1.0, "top_k": None}),
    ],
    ids=["embedding", "ner", "generation"],
)
def test_omitted_parameters_take_the_story_defaults(raw: dict[str, Any], expected: dict[str, Any]) -> None:
    record = spec.desired_record(spec.MODEL_ADAPTER.validate_python(raw))
    assert {name: record[name] for name in expected} == expected
