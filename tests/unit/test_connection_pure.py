"""The pure parts of connection tests: endpoint translation, requests, classification, messages.

Classification is checked against LiteLLM's real exception classes, built the way
LiteLLM builds them for each case measured against the fake provider.
"""

from __future__ import annotations

import asyncio

import pytest

from reconciler.connection import (
    STATUSES,
    ConnectionResult,
    ConnectionTarget,
    build_request,
    check_completion,
    check_embedding,
    classify_exception,
    display_endpoint,
    embedding_length,
    failure_message,
    litellm_model,
    precheck,
    provider_detail,
    scrub,
    target_from_model,
    translate_endpoint,
)
from reconciler.spec import EmbeddingModel, GenerationModel
from tests.factories import CANARY_KEY, embedding_model, generation_model


@pytest.mark.parametrize(
    ("provider", "model_type", "endpoint", "expected"),
    [
        ("openai", "generation", None, None),
        ("openai", "generation", "https://api.openai.com", "https://api.openai.com/v1"),
        ("openai", "generation", "https://api.openai.com/", "https://api.openai.com/v1"),
        ("openai", "embedding", "https://api.openai.com/v1", "https://api.openai.com/v1"),
        ("openai", "embedding", "https://api.openai.com/v1/", "https://api.openai.com/v1"),
        ("openai", "generation", "https://api.openai.com/v1/chat/completions", "https://api.openai.com/v1"),
        ("openai", "generation", "http://vllm:8000/openai", "http://vllm:8000/openai/v1"),
        ("gemini", "embedding", None, None),
        ("gemini", "generation", "https://generativelanguage.googleapis.com", "https://generativelanguage.googleapis.com/v1beta"),
        ("gemini", "generation", "https://generativelanguage.googleapis.com/v1beta/", "https://generativelanguage.googleapis.com/v1beta"),
        ("gemini", "generation", "https://x.test/v1beta/models", "https://x.test/v1beta"),
        ("anthropic", "generation", "https://api.anthropic.com", "https://api.anthropic.com"),
        ("anthropic", "generation", "https://api.anthropic.com/v1", "https://api.anthropic.com"),
        ("anthropic", "ner", "https://api.anthropic.com/v1/", "https://api.anthropic.com"),
        ("anthropic", "generation", "https://api.anthropic.com/v1/messages", "https://api.anthropic.com"),
        ("cohere", "embedding", None, "https://api.cohere.com/v2/embed"),
        ("cohere", "generation", None, "https://api.cohere.com/v2/chat"),
        ("cohere", "embedding", "https://api.cohere.com", "https://api.cohere.com/v2/embed"),
        ("cohere", "embedding", "https://api.cohere.com/v1", "https://api.cohere.com/v2/embed"),
        ("cohere", "ner", "https://api.cohere.com/v2/", "https://api.cohere.com/v2/chat"),
        ("cohere", "generation", "https://api.cohere.com/v2/chat", "https://api.cohere.com/v2/chat"),
        ("azure", "embedding", "https://res.openai.azure.com", "https://res.openai.azure.com"),
        ("azure", "generation", "https://res.openai.azure.com/", "https://res.openai.azure.com"),
        ("azure", "generation", "https://res.openai.azure.com/openai", "https://res.openai.azure.com"),
        ("ollama", "embedding", "http://ollama:11434", "http://ollama:11434"),
        ("ollama", "generation", "http://ollama:11434/", "http://ollama:11434"),
        ("ollama", "ner", "http://ollama:11434/api", "http://ollama:11434"),
        ("ollama", "generation", "http://ollama:11434/api/chat", "http://ollama:11434"),
        # A query string or fragment cannot go into api_base (LiteLLM appends paths to it).
        ("openai", "generation", "https://gw.test/v1?tenant=a#x", "https://gw.test/v1"),
        ("azure", "generation", "https://res.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-02-01",
         "https://res.openai.azure.com"),
    ],
)
def test_translate_endpoint(provider: str, model_type: str, endpoint: str | None, expected: str | None) -> None:
    assert translate_endpoint(provider, model_type, endpoint) == expected


@pytest.mark.parametrize(
    ("provider", "model_type", "model_id", "expected"),
    [
        ("ollama", "embedding", "nomic-embed-text", "ollama/nomic-embed-text"),
        # `ollama/` (generate) reports an empty reply as success: chat it is.
        ("ollama", "generation", "llama3", "ollama_chat/llama3"),
        ("ollama", "ner", "gliner", "ollama_chat/gliner"),
        ("openai", "embedding", "text-embedding-3-small", "openai/text-embedding-3-small"),
        ("azure", "generation", "my-deployment", "azure/my-deployment"),
        ("gemini", "embedding", "models/text-embedding-004", "gemini/text-embedding-004"),
        ("anthropic", "generation", "claude-3-5-haiku", "anthropic/claude-3-5-haiku"),
        ("cohere", "generation", "command-r", "cohere/command-r"),
    ],
)
def test_litellm_model(provider: str, model_type: str, model_id: str, expected: str) -> None:
    assert litellm_model(provider, model_type, model_id) == expected


def _target(**overrides: object) -> ConnectionTarget:
    base: dict[str, object] = dict(
        name="m", type="generation", provider="openai", model_id="gpt-4o-mini",
        api_endpoint=None, api_version=None, api_key=CANARY_KEY, dimensions=None, key_source="OPENAI_API_KEY",
    )
    base.update(overrides)
    return ConnectionTarget(**base)  # type: ignore[arg-type]


def test_build_request_always_sets_timeout_and_no_retries() -> None:
    kind, kwargs = build_request(_target(), 7.5)
    assert kind == "completion"
    assert kwargs["timeout"] == 7.5 and kwargs["max_retries"] == 0
    assert kwargs["max_tokens"] == 1
    kind, kwargs = build_request(_target(type="embedding", dimensions=8, provider="cohere", model_id="embed-v3"), 2)
    assert kind == "embedding" and kwargs["input"] and kwargs["api_base"].endswith("/v2/embed")
    assert kwargs["encoding_format"] == "float"


def test_build_request_without_endpoint_or_key_leaves_both_to_litellm() -> None:
    # No api_base and no api_key at all (not None): LiteLLM's own defaults apply, as for a
    # model declared without them (an Ollama on its default port).
    kind, kwargs = build_request(_target(provider="ollama", api_key=None, key_source=None), 3)
    assert (kind, kwargs) == ("completion", {
        "model": "ollama_chat/gpt-4o-mini", "timeout": 3, "max_retries": 0,
        "messages": [{"role": "user", "content": "connection test"}], "max_tokens": 1,
    })
    _, with_both = build_request(_target(api_endpoint="https://api.openai.com"), 3)
    assert with_both["api_base"] == "https://api.openai.com/v1" and with_both["api_key"] == CANARY_KEY


def test_build_request_gives_a_zero_price_only_when_asked() -> None:
    _, plain = build_request(_target(), 1)
    assert "input_cost_per_token" not in plain and "output_cost_per_token" not in plain
    _, priced = build_request(_target(type="embedding", provider="ollama"), 1, zero_price=True)
    assert priced["input_cost_per_token"] == 0.0 and priced["output_cost_per_token"] == 0.0


def test_build_request_asks_for_the_declared_dimensions_only_where_the_model_takes_a_size() -> None:
    _, sized = build_request(_target(type="embedding", dimensions=512, model_id="text-embedding-3-large"), 1)
    assert sized["dimensions"] == 512
    _, fixed = build_request(_target(type="embedding", dimensions=1536, model_id="text-embedding-ada-002"), 1)
    assert "dimensions" not in fixed


def test_build_request_azure_passes_api_version() -> None:
    _, kwargs = build_request(_target(provider="azure", api_endpoint="https://r.test", api_version="2024-02-01"), 1)
    assert kwargs["api_version"] == "2024-02-01" and kwargs["model"] == "azure/gpt-4o-mini"


def test_target_repr_never_shows_the_key() -> None:
    target = _target()
    assert CANARY_KEY not in repr(target) and CANARY_KEY not in str(target)


def test_target_from_model_takes_key_source_from_reference() -> None:
    model = GenerationModel.model_validate(generation_model(name="gen", api_key="${env:MY_KEY}"))
    target = target_from_model(model, CANARY_KEY)
    assert target.key_source == "MY_KEY" and target.api_key == CANARY_KEY and target.dimensions is None
    embedding = EmbeddingModel.model_validate(embedding_model(name="emb", parameters={"dimensions": 384}))
    assert target_from_model(embedding, None).dimensions == 384


def test_missing_key_fails_before_any_network_call() -> None:
    status, message = precheck(_target(api_key=None, key_source="OPENAI_API_KEY"))  # type: ignore[misc]
    assert status == "authentication_error"
    assert message == "no API key: environment variable OPENAI_API_KEY is not set"
    assert precheck(_target(provider="ollama", api_key=None)) is None


def test_dimension_mismatch_message() -> None:
    assert check_embedding(_target(type="embedding", dimensions=768), 1024) == (
        "dimension_mismatch",
        "vector has 1024 dimensions, registry declares 768",
    )
    assert check_embedding(_target(type="embedding", dimensions=768), 768)[0] == "ok"
    assert check_embedding(_target(type="embedding", dimensions=768), 0)[0] == "provider_error"


def test_scrub_replaces_raw_and_url_encoded_key() -> None:
    key = "k+y/with=chars"
    text = f"a {key} b k%2By%2Fwith%3Dchars c"
    assert scrub(text, [key, None, ""]) == "a *** b *** c"


def test_scrub_short_keys_only_where_they_stand_alone() -> None:
    assert scrub("check the key k: k", ["k"]) == "check the key ***: ***"
    assert scrub(f"x{CANARY_KEY}y", [CANARY_KEY]) == "x***y"


def test_display_endpoint_drops_credentials_in_url() -> None:
    shown = display_endpoint(_target(provider="ollama", api_endpoint="http://user:secret@ollama:11434"))
    assert shown == "http://ollama:11434" and "secret" not in shown


def test_result_ok_property_and_statuses() -> None:
    assert ConnectionResult("m", "ok", 1, "").ok
    assert not ConnectionResult("m", "timeout_error", 1, "").ok
    assert STATUSES[0] == "ok" and len(set(STATUSES)) == 9


# --- classification with LiteLLM's own exception classes ---------------------------


@pytest.fixture(scope="module")
def litellm_exceptions():  # type: ignore[no-untyped-def]
    from reconciler.connection import _litellm

    return _litellm()


def test_refused_as_api_connection_error(litellm_exceptions) -> None:  # type: ignore[no-untyped-def]
    exc = litellm_exceptions.APIConnectionError(
        message="OllamaException - Cannot connect to host 127.0.0.1:1 ssl:default [Connect call failed ('127.0.0.1', 1)]",
        llm_provider="ollama", model="x",
    )
    assert classify_exception(exc) == "connection_error"


def test_refused_as_internal_server_error(litellm_exceptions) -> None:  # type: ignore[no-untyped-def]
    exc = litellm_exceptions.InternalServerError(
        message="InternalServerError: OpenAIException - Connection error.", llm_provider="openai", model="x"
    )
    assert exc.status_code == 500
    assert classify_exception(exc) == "connection_error"


def test_real_500_is_provider_error(litellm_exceptions) -> None:  # type: ignore[no-untyped-def]
    exc = litellm_exceptions.InternalServerError(
        message='OpenAIException - {"error": {"message": "The server had an error"}}', llm_provider="openai", model="x"
    )
    assert classify_exception(exc) == "provider_error"


def test_api_connection_error_without_transport_failure_is_provider_error(litellm_exceptions) -> None:  # type: ignore[no-untyped-def]
    # LiteLLM also wraps parse failures in APIConnectionError: not a connection problem.
    exc = litellm_exceptions.APIConnectionError(message="'NoneType' object is not subscriptable", llm_provider="x", model="x")
    assert classify_exception(exc) == "provider_error"


def test_cause_chain_connect_error_is_connection_error(litellm_exceptions) -> None:  # type: ignore[no-untyped-def]
    import httpx

    exc = litellm_exceptions.APIConnectionError(message="GeminiException - oops", llm_provider="gemini", model="x")
    exc.__cause__ = httpx.ConnectError("boom")
    assert classify_exception(exc) == "connection_error"


@pytest.mark.parametrize(
    ("name", "kwargs", "expected"),
    [
        ("AuthenticationError", {}, "authentication_error"),
        ("PermissionDeniedError", {"response": "403"}, "authentication_error"),
        ("NotFoundError", {}, "not_found"),
        ("RateLimitError", {}, "rate_limited"),
        ("Timeout", {}, "timeout_error"),
        ("BadRequestError", {}, "provider_error"),
        ("ServiceUnavailableError", {}, "provider_error"),
    ],
)
def test_classify_litellm_errors(litellm_exceptions, name: str, kwargs: dict, expected: str) -> None:  # type: ignore[no-untyped-def]
    import httpx

    cls = getattr(litellm_exceptions, name)
    if "response" in kwargs:  # these need a real response object
        request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
        kwargs = {"response": httpx.Response(int(kwargs["response"]), request=request)}
    exc = cls(message="something", llm_provider="openai", model="x", **kwargs)
    assert classify_exception(exc) == expected


def test_gemini_bad_key_400_is_authentication_error(litellm_exceptions) -> None:  # type: ignore[no-untyped-def]
    exc = litellm_exceptions.BadRequestError(
        message='GeminiException - {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT"}}',
        llm_provider="gemini", model="x",
    )
    assert classify_exception(exc) == "authentication_error"


def test_asyncio_timeout_is_timeout_error() -> None:
    assert classify_exception(asyncio.TimeoutError()) == "timeout_error"


def test_provider_detail_unwraps_and_scrubs(litellm_exceptions) -> None:  # type: ignore[no-untyped-def]
    exc = litellm_exceptions.AuthenticationError(
        message=f'AnthropicException - {{"type":"error","error":{{"type":"authentication_error","message":"bad key {CANARY_KEY}"}}}}',
        llm_provider="anthropic", model="x",
    )
    detail = provider_detail(exc, [CANARY_KEY])
    assert detail == "bad key ***"


def test_failure_messages_are_actionable_and_bounded(litellm_exceptions) -> None:  # type: ignore[no-untyped-def]
    target = _target(api_endpoint="https://api.openai.com")
    auth = litellm_exceptions.AuthenticationError(message="x" * 5000 + CANARY_KEY, llm_provider="openai", model="x")
    message = failure_message("authentication_error", target, auth, 30)
    assert message.startswith("authentication failed (HTTP 401): check the key in OPENAI_API_KEY")
    assert len(message) <= 300 and CANARY_KEY not in message
    assert failure_message("timeout_error", target, asyncio.TimeoutError(), 2.5) == (
        "no answer within 2.5 s from https://api.openai.com/v1: check api_endpoint and the network, or raise --timeout"
    )
    refused = litellm_exceptions.APIConnectionError(message="Connection error.", llm_provider="openai", model="x")
    assert failure_message("connection_error", target, refused, 30).startswith("cannot connect to https://api.openai.com/v1")
    missing = litellm_exceptions.NotFoundError(message="nope", llm_provider="openai", model="x")
    assert "model 'gpt-4o-mini' not found" in failure_message("not_found", target, missing, 30)


# --- messages from exceptions that are not LiteLLM's, and answers without a vector --------


class _OwnMessage(Exception):
    """An exception whose `message` attribute differs from its args (as the OpenAI SDK's do)."""

    message = "the provider's own text"


def test_provider_detail_prefers_the_message_attribute_then_the_first_argument() -> None:
    assert provider_detail(_OwnMessage("the generic text")) == "the provider's own text"
    assert provider_detail(RuntimeError("upstream said no")) == "upstream said no"
    assert provider_detail(RuntimeError(404)) == ""  # never str() of something that is not text


def test_provider_detail_drops_litellms_trailers_and_is_bounded() -> None:
    detail = provider_detail(RuntimeError("model overloaded. Received Model Group=gpt-4o\nAvailable Model Group Fallbacks=None"))
    assert detail == "model overloaded"
    long = provider_detail(RuntimeError("word " * 200))
    assert len(long) == 160 and long.endswith("...")


def test_an_answer_without_a_vector_has_no_length() -> None:
    class Item:
        embedding = None

    class Response:
        data = [Item()]

    assert embedding_length(Response()) is None
    assert check_embedding(_target(type="embedding"), embedding_length(Response()))[0] == "provider_error"


def test_a_type_outside_the_format_fails_before_any_request() -> None:
    assert precheck(_target(type="rerank")) == ("provider_error", "unknown model type 'rerank'")


# Transport failures are recognised by class name (connection.py stays importable without
# httpx or aiohttp): each name a transport below LiteLLM raises, stood in for by a class
# of that name with no text that would give it away.
TRANSPORT_CONNECTION_FAILURES = [
    "ConnectError", "ConnectionError", "ConnectionRefusedError", "ConnectionResetError", "ClientConnectorError",
    "ClientConnectionError", "ServerDisconnectedError", "ClientOSError", "gaierror", "RemoteProtocolError",
]
TRANSPORT_TIMEOUTS = [
    "Timeout", "TimeoutError", "APITimeoutError", "ReadTimeout", "ConnectTimeout", "PoolTimeout", "WriteTimeout",
    "TimeoutException", "ServerTimeoutError",
]


@pytest.mark.parametrize("name", TRANSPORT_CONNECTION_FAILURES)
def test_a_transport_failure_in_the_cause_chain_is_a_connection_error(name: str) -> None:
    wrapper = RuntimeError("litellm.APIError: something went wrong")
    wrapper.__cause__ = type(name, (Exception,), {})("")
    assert classify_exception(wrapper) == "connection_error"


@pytest.mark.parametrize("name", TRANSPORT_TIMEOUTS)
def test_a_transport_timeout_is_a_timeout_error(name: str) -> None:
    assert classify_exception(type(name, (Exception,), {})("")) == "timeout_error"


def test_display_endpoint_drops_a_user_name_without_password() -> None:
    # http://TOKEN@host: a token written as the user name is a credential too.
    shown = display_endpoint(_target(provider="ollama", api_endpoint=f"http://{CANARY_KEY}@ollama:11434"))
    assert shown == "http://ollama:11434"


def test_answers_without_data_or_choices_fail_the_test() -> None:
    class Empty:
        data: list = []
        choices: list = []

    assert embedding_length(Empty()) is None and embedding_length(object()) is None
    assert check_completion(Empty()) == ("provider_error", "provider error: the answer held no completion")
    assert check_completion(object())[0] == "provider_error"


def test_a_message_over_the_bound_is_cut_at_it() -> None:
    # A long model id, the endpoint and the provider's detail together pass 300 characters.
    target = _target(model_id="m" * 200, api_endpoint="https://api.openai.com")
    message = failure_message("not_found", target, RuntimeError("no such model " * 20), 30)
    assert len(message) == 300 and message.endswith("...")
    assert message.startswith("model '" + "m" * 200 + "' not found at https://api.openai.com/v1")


class _Status(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


def test_status_codes_that_name_a_timeout_or_an_unreachable_service() -> None:
    assert classify_exception(_Status(408, "request timeout")) == "timeout_error"
    unavailable = type("ServiceUnavailableError", (_Status,), {})
    assert classify_exception(unavailable(503, "Connection error.")) == "connection_error"
    assert classify_exception(unavailable(503, "overloaded")) == "provider_error"


def test_a_404_is_not_found_whatever_the_class() -> None:
    assert classify_exception(_Status(404, "no such deployment")) == "not_found"


@pytest.mark.parametrize("name", ["APIConnectionError", "InternalServerError", "APIError", "ServiceUnavailableError"])
def test_a_wrapper_that_says_it_cannot_connect_is_a_connection_error(name: str) -> None:
    # LiteLLM reports a refused connection in one of these, depending on the provider.
    assert classify_exception(type(name, (Exception,), {})("Cannot connect to host api.test:443")) == "connection_error"


def test_provider_detail_reads_a_top_level_message_of_a_json_payload() -> None:
    assert provider_detail(RuntimeError('Error code: 400 - {"message": "quota exceeded", "code": 7}')) == "quota exceeded"


def test_a_missing_key_named_by_a_phrase_is_not_called_a_variable() -> None:
    status, message = precheck(_target(api_key=None, key_source="the key stored in the registry"))
    assert (status, message) == ("authentication_error", "no API key for this model (provider openai needs one)")
