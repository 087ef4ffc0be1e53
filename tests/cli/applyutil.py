"""Shared pieces of the apply tests: a registry on the fake provider, database snapshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler.secrets import ENCRYPTION_KEY_ENV
from tests.dbutil import TEST_PASSPHRASE
from tests.factories import CANARY_KEY, embedding_model, generation_model, write_registry_file
from tests.fakes.provider import FakeProvider

# The environment of an apply that has every key: the canary is the OpenAI key.
APPLY_ENV = {ENCRYPTION_KEY_ENV: TEST_PASSPHRASE, "OPENAI_API_KEY": CANARY_KEY, "NO_COLOR": "1"}


def story_models(fake: FakeProvider, **overrides: Any) -> list[dict[str, Any]]:
    """The story's two models (AC-7.9.5, 7.9.6), every parameter set, served by the fake provider."""
    fake.set_model("nomic-embed-text", dimensions=768)
    fake.set_model("gpt-4o-mini", api_key=CANARY_KEY)
    embedding = embedding_model(name="nomic-embed", api_endpoint=fake.url, default=True, description="Local embeddings")
    generation = generation_model(name="gpt-4o-mini", api_endpoint=fake.url, default=True, parameters={"top_k": 40})
    for model in (embedding, generation):
        model.update(overrides.get(model["name"], {}))
    return [embedding, generation]


def write_story_registry(directory: Path, fake: FakeProvider, **overrides: Any) -> Path:
    """registry.d with the story's models; returns the directory."""
    write_registry_file(directory, story_models(fake, **overrides))
    return directory


def snapshot(engine: Any) -> dict[str, list[dict[str, Any]]]:
    """Every row of the registry's tables, for "the database is exactly as it was" checks."""
    from sqlalchemy import text

    with engine.connect() as connection:
        return {
            table: [dict(row) for row in connection.execute(text(f"SELECT * FROM {table} ORDER BY 1")).mappings()]
            for table in ("llm_models", "knowledge_bases", "registry_audit_events", "llm_registry_encryption")
        }


def models_by_name(engine: Any) -> dict[str, dict[str, Any]]:
    """llm_models rows keyed by name."""
    return {row["name"]: row for row in snapshot(engine)["llm_models"]}


def audit_events(engine: Any) -> list[dict[str, Any]]:
    """registry_audit_events rows, oldest first."""
    return snapshot(engine)["registry_audit_events"]
