"""Embedding tests ask for the declared size where the model returns vectors of a requested size
(OpenAI text-embedding-3-*, Azure, Gemini, Cohere v4), through real LiteLLM against the fake provider."""

from __future__ import annotations

import pytest

from reconciler.connection import ConnectionTarget, run_connection_tests
from tests.factories import CANARY_KEY
from tests.fakes.provider import FakeProvider, requested_dimensions
from tests.integration.test_connection import natural_endpoint

NATIVE, DECLARED = 1536, 512


def _target(provider: str, model_id: str, base: str) -> ConnectionTarget:
    return ConnectionTarget(
        name=f"{provider}-{model_id}", type="embedding", provider=provider, model_id=model_id,
        api_endpoint=natural_endpoint(provider, base), api_version="2024-02-01" if provider == "azure" else None,
        api_key=None if provider == "ollama" else CANARY_KEY, dimensions=DECLARED,
    )  # fmt: skip


SIZED = [("openai", "text-embedding-3-small"), ("azure", "embeddings-small"), ("gemini", "text-embedding-004"), ("cohere", "embed-v4.0")]
FIXED = [("openai", "text-embedding-ada-002"), ("cohere", "embed-english-v3.0"), ("ollama", "nomic-embed-text"), ("gemini", "embedding-001")]


@pytest.mark.parametrize(("provider", "model_id"), SIZED)
def test_a_model_declared_at_512_is_asked_for_512(fake_provider: FakeProvider, provider: str, model_id: str) -> None:
    fake_provider.set_model(model_id, dimensions=NATIVE, resizable=True)
    (result,) = run_connection_tests([_target(provider, model_id, fake_provider.url)], timeout=10)
    assert (result.status, result.message) == ("ok", "512-dimension vector")
    (request,) = fake_provider.requests(model_id)
    assert requested_dimensions(provider, request.body) == DECLARED


@pytest.mark.parametrize(("provider", "model_id"), FIXED)
def test_a_model_of_one_fixed_size_is_not_asked_and_a_wrong_declaration_is_a_mismatch(
    fake_provider: FakeProvider, provider: str, model_id: str
) -> None:
    fake_provider.set_model(model_id, dimensions=NATIVE, resizable=True)
    (result,) = run_connection_tests([_target(provider, model_id, fake_provider.url)], timeout=10)
    assert (result.status, result.message) == ("dimension_mismatch", "vector has 1536 dimensions, registry declares 512")
    (request,) = fake_provider.requests(model_id)
    assert requested_dimensions(provider, request.body) is None
