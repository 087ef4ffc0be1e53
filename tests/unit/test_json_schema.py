"""The JSON Schema catches in an editor what validate catches: checked with a real validator.

`jsonschema` (a dev dependency; LiteLLM depends on it too) is the same Draft 2020-12
check that `check-jsonschema` runs in CI and close to what yaml-language-server runs
in an editor.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from reconciler.spec import SCHEMA_ID
from reconciler.validate import validate_directory
from tests.factories import common_mistakes, registry_document, write_registry_file
from tests.unit.test_validate import RANGES, SERVES, for_provider

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "registry.schema.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA)


def schema_errors(*models: dict[str, Any]) -> list[str]:
    """What the editor would flag in a file holding `models` (with the reasons inside any anyOf)."""
    found: list[str] = []
    pending = list(VALIDATOR.iter_errors(registry_document(models)))
    while pending:
        error = pending.pop(0)
        found.append(error.message)
        pending.extend(error.context or ())
    return found


def test_the_schema_is_a_valid_draft_2020_12_schema_with_a_stable_id() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$id"] == SCHEMA_ID == "https://llm-registry.dev/schemas/registry.schema.json"


@pytest.mark.parametrize("path", sorted((ROOT / "registry.d").rglob("*.yaml")), ids=lambda p: p.name)
def test_the_example_files_pass(path: Path) -> None:
    assert [e.message for e in VALIDATOR.iter_errors(yaml.safe_load(path.read_text()))] == []


@pytest.mark.parametrize(("provider", "model_type"), [(p, t) for p, types in SERVES.items() for t in types])
def test_every_combination_the_matrix_allows_passes(provider: str, model_type: str) -> None:
    assert schema_errors(for_provider(provider, model_type)) == []


def test_null_parameters_pass() -> None:
    assert schema_errors(for_provider("ollama", "embedding", parameters={"normalize": None, "distance_metric": None})) == []


@pytest.mark.parametrize(
    ("factory", "parameter", "value"), [(f, p, v) for f, p, _, rejected, _ in RANGES for v in rejected]
)
def test_out_of_range_values_of_the_unit_tests_are_flagged(factory: Any, parameter: str, value: Any) -> None:
    assert schema_errors(factory(parameters={parameter: value}, provider="ollama", api_key=None, api_endpoint="http://x"))


def test_at_least_nine_in_ten_common_mistakes_are_flagged(tmp_path: Path) -> None:
    mistakes = common_mistakes()
    missed = []
    for index, (label, model) in enumerate(mistakes):
        directory = tmp_path / str(index)
        write_registry_file(directory, [model])
        assert not validate_directory(directory).ok, f"validate accepts: {label}"
        if not schema_errors(model):
            missed.append(label)
    # Two fields' values compared (max_output_tokens <= context_window) is beyond JSON Schema.
    assert missed == ["max_output_tokens above context_window"]
    assert len(missed) * 10 <= len(mistakes)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (for_provider("anthropic", "embedding"), "'anthropic' is not one of"),
        (for_provider("openai", "generation", api_key=None), "'api_key' is a required property"),
        (for_provider("ollama", "generation", api_key="${env:K}"), "'${env:K}' is not of type 'null'"),
        (for_provider("azure", "generation", api_endpoint=None), "'api_endpoint' is a required property"),
        (for_provider("azure", "generation", api_version=None), "'api_version' is a required property"),
        (for_provider("gemini", "generation", api_version="v1"), "'v1' is not of type 'null'"),
        (for_provider("ollama", "ner", api_endpoint="ftp://x"), "'ftp://x' does not match"),
        (for_provider("ollama", "ner", active=False, default=True), "True was expected"),
    ],
)
def test_the_provider_matrix_is_expressed(model: dict[str, Any], expected: str) -> None:
    assert any(expected in message for message in schema_errors(model)), schema_errors(model)
