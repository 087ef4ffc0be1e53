"""Factories for model definitions, registry directories and stored rows.

Use these instead of copying dictionaries into tests: each returns a valid default
that a test overrides only where the behaviour it checks lives.
"""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import yaml

from reconciler import MANAGED_BY
from reconciler.providers import PROVIDER_MATRIX
from reconciler.spec import RECORD_FIELDS
from reconciler.state import KnowledgeBase, StoredModel

if TYPE_CHECKING:
    from reconciler.spec import RegistrySpec

# A key that must never appear in any output, log, file, audit record or message.
CANARY_KEY = "sk-canary-3f9c1e7b5d2a4c6e8f0a1b2c3d4e5f60"

# The request kinds each provider serves, for connection tests and their benchmark (an
# NER model is tested with a completion, like a generation model).
REQUEST_KINDS: dict[str, tuple[str, ...]] = {
    provider: tuple(kind for kind in rules["types"] if kind != "ner") for provider, rules in PROVIDER_MATRIX.items()
}

_counter = itertools.count(1)

MODELINE = "# yaml-language-server: $schema=../schemas/registry.schema.json\n"


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if key == "parameters" and isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    # A None override removes the key, so tests can write "without api_key".
    return {key: value for key, value in merged.items() if value is not None}


def unique_name(prefix: str) -> str:
    """A valid model name that no other factory call returns."""
    return f"{prefix}-{next(_counter)}"


def embedding_model(**overrides: Any) -> dict[str, Any]:
    """An Ollama embedding model with every parameter (the story's EMBEDDING_MODEL_DEFAULTS)."""
    return _merge(
        {
            "name": unique_name("test-embedding"),
            "type": "embedding",
            "provider": "ollama",
            "model_id": "nomic-embed-text",
            "api_endpoint": "http://localhost:11434",
            "parameters": {
                "dimensions": 768,
                "max_tokens": 8192,
                "normalize": True,
                "distance_metric": "cosine",
                "batch_size": 32,
            },
        },
        overrides,
    )


def generation_model(**overrides: Any) -> dict[str, Any]:
    """An OpenAI generation model with every parameter (the story's GENERATION_MODEL_DEFAULTS)."""
    return _merge(
        {
            "name": unique_name("test-generation"),
            "type": "generation",
            "provider": "openai",
            "model_id": "gpt-4o-mini",
            "api_key": "${env:OPENAI_API_KEY}",
            "parameters": {
                "context_window": 128000,
                "max_output_tokens": 4096,
                "temperature": 0.7,
                "top_p": 1.0,
            },
        },
        overrides,
    )


def ner_model(**overrides: Any) -> dict[str, Any]:
    """An Ollama NER model."""
    return _merge(
        {
            "name": unique_name("test-ner"),
            "type": "ner",
            "provider": "ollama",
            "model_id": "gliner",
            "api_endpoint": "http://localhost:11434",
            "parameters": {"max_tokens": 512, "batch_size": 16},
        },
        overrides,
    )


def registry_document(models: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The content of one registry file."""
    return {"version": 1, "models": [dict(model) for model in models]}


def write_registry_file(directory: Path, models: Iterable[Mapping[str, Any]], filename: str = "models.yaml") -> Path:
    """Write one registry file (with the schema modeline) and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / filename
    path.write_text(MODELINE + yaml.safe_dump(registry_document(models), sort_keys=False))
    return path


def write_text_file(directory: Path, text: str, filename: str = "models.yaml") -> Path:
    """Write a registry file verbatim (for line-number and hostile-input tests)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / filename
    path.write_text(text)
    return path


def stored_model(
    name: str | None = None,
    *,
    managed_by: str | None = MANAGED_BY,
    row_id: str | None = None,
    **record: Any,
) -> StoredModel:
    """A row of llm_models as `read_state` returns it (an Ollama embedding model by default).

    `row_id` is the row's uuid; keyword arguments set record columns (`model_id` is the
    provider's model name, as in the table).
    """
    base: dict[str, Any] = {field: None for field in RECORD_FIELDS}
    base.update(
        type="embedding",
        provider="ollama",
        model_id="nomic-embed-text",
        api_endpoint="http://localhost:11434",
        is_active=True,
        is_default=False,
        description="",
        dimensions=768,
        max_tokens=8192,
        normalize=True,
        distance_metric="cosine",
        batch_size=32,
    )
    base.update(record)
    return StoredModel(
        id=row_id or str(uuid.uuid4()),
        name=name or unique_name("stored"),
        managed_by=managed_by,
        record=base,
    )


def knowledge_base(
    name: str | None = None,
    *,
    embedding: StoredModel | None = None,
    generation: StoredModel | None = None,
) -> KnowledgeBase:
    """A KB using the given models."""
    return KnowledgeBase(
        id=str(uuid.uuid4()),
        name=name or unique_name("kb"),
        embedding_model_id=embedding.id if embedding else None,
        generation_model_id=generation.id if generation else None,
    )


def common_mistakes() -> list[tuple[str, dict[str, Any]]]:
    """(what is wrong, a model with that mistake): the mistakes people make most in a registry file.

    `validate` refuses every one; the JSON Schema (an editor's check) must catch at least
    nine in ten. Each starts from a valid model and changes one thing.
    """
    return [
        ("misspelt key", generation_model(parameters={"temprature": 0.5})),
        ("anthropic embedding", embedding_model(provider="anthropic", api_endpoint=None, api_key="${env:ANTHROPIC_API_KEY}")),
        ("missing api_key", generation_model(api_key=None)),
        ("api_key on ollama", embedding_model(api_key="${env:OLLAMA_KEY}")),
        ("missing endpoint for ollama", embedding_model(api_endpoint=None)),
        ("azure without api_version", generation_model(provider="azure", api_endpoint="https://r.openai.azure.com")),
        ("api_version on openai", generation_model(api_version="2024-10-21")),
        ("plaintext key", generation_model(api_key=CANARY_KEY)),
        ("malformed reference", generation_model(api_key="$OPENAI_API_KEY")),
        ("endpoint not a URL", embedding_model(api_endpoint="localhost:11434")),
        ("temperature out of range", generation_model(parameters={"temperature": 3})),
        ("number in quotes", embedding_model(parameters={"dimensions": "768"})),
        ("inactive default", embedding_model(active=False, default=True)),
        ("unknown provider", generation_model(provider="mistral")),
        ("capital letters in name", embedding_model(name="Nomic-Embed")),
        ("embedding without dimensions", embedding_model(parameters={"dimensions": None})),
        ("generation without context_window", generation_model(parameters={"context_window": None})),
        ("max_output_tokens above context_window", generation_model(parameters={"context_window": 4096, "max_output_tokens": 8192})),
        ("unknown type", ner_model(type="ners")),
        ("batch_size zero", embedding_model(parameters={"batch_size": 0})),
    ]


def registry(*definitions: dict[str, Any]) -> "RegistrySpec":
    """A validated spec from definitions, as validate would build it (sorted, with locations)."""
    from reconciler.load import Document
    from reconciler.validate import validate_documents

    document = Document("models.yaml", {"version": 1, "models": list(definitions)})
    spec, diagnostics = validate_documents([document])
    assert not [d for d in diagnostics if d.severity == "error"], diagnostics
    return spec


def stored_from(definition: dict[str, Any], *, fingerprint: str | None = None, **columns: Any) -> StoredModel:
    """The row a definition becomes once applied (optionally with some columns different)."""
    from reconciler.spec import MODEL_ADAPTER, desired_record

    record = desired_record(MODEL_ADAPTER.validate_python(definition))
    record["api_key"] = fingerprint
    record.update(columns)
    return stored_model(definition["name"], **record)
