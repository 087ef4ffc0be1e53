"""Per-provider facts: LiteLLM's model strings and which embedding models take a requested size."""

from __future__ import annotations

from reconciler.providers import KEY_REQUIRED, PROVIDER_MATRIX, provider_from_litellm, requests_dimensions


def test_key_required_follows_the_matrix() -> None:
    assert KEY_REQUIRED == {p for p, rules in PROVIDER_MATRIX.items() if rules["api_key"] == "required"}
    assert "ollama" not in KEY_REQUIRED


def test_model_strings() -> None:
    assert provider_from_litellm("ollama_chat/llama3") == ("ollama", "llama3")
    assert provider_from_litellm("cohere_chat/command-r") == ("cohere", "command-r")
    assert provider_from_litellm("claude-3-haiku-20240307") == ("anthropic", "claude-3-haiku-20240307")
    assert provider_from_litellm("text-embedding-3-small") == ("openai", "text-embedding-3-small")
    assert provider_from_litellm("bedrock/amazon.titan-embed-text-v2:0") is None
    assert provider_from_litellm("vertex_ai/gemini-pro") is None


def test_which_embedding_models_take_a_requested_size() -> None:
    assert requests_dimensions("openai", "text-embedding-3-small")
    assert not requests_dimensions("openai", "text-embedding-ada-002")
    assert requests_dimensions("azure", "embeddings-small") and not requests_dimensions("azure", "ada-002")
    assert requests_dimensions("gemini", "text-embedding-004") and requests_dimensions("gemini", "gemini-embedding-001")
    assert not requests_dimensions("gemini", "embedding-001")
    assert requests_dimensions("cohere", "embed-v4.0") and not requests_dimensions("cohere", "embed-english-v3.0")
    assert not requests_dimensions("ollama", "nomic-embed-text")
