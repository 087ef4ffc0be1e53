"""`llm-registry schema` and the checked-in schemas/registry.schema.json."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import RunCli

ROOT = Path(__file__).resolve().parents[2]
CHECKED_IN = ROOT / "schemas" / "registry.schema.json"


def test_checked_in_schema_is_current(run_cli: RunCli) -> None:
    result = run_cli("schema")
    assert result.exit_code == 0
    assert result.stdout == CHECKED_IN.read_text(), (
        "schemas/registry.schema.json is stale: run `llm-registry schema > schemas/registry.schema.json` and commit it"
    )


def test_schema_is_a_json_schema_of_a_registry_file(run_cli: RunCli) -> None:
    schema = json.loads(run_cli("schema").stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {"version", "models"}
    assert schema["additionalProperties"] is False
    models = schema["properties"]["models"]
    assert models["type"] == "array"
    assert set(models["items"]["discriminator"]["mapping"]) == {"embedding", "generation", "ner"}
    definitions = schema["$defs"]
    temperature = definitions["GenerationParameters"]["properties"]["temperature"]["anyOf"]
    assert temperature == [{"maximum": 2.0, "minimum": 0.0, "type": "number"}, {"type": "null"}]  # null: not set
    assert definitions["EmbeddingParameters"]["properties"]["dimensions"]["maximum"] == 65536
    assert definitions["EmbeddingParameters"]["additionalProperties"] is False


def test_schema_output_is_deterministic(run_cli: RunCli) -> None:
    assert run_cli("schema").stdout == run_cli("schema").stdout
