"""Connection tests: prove that each model answers before it reaches the registry.

An embedding model must embed one short string and return a vector of the length it
declares; a generation or NER model must return a one-token completion. Tests run
through the real LiteLLM client, concurrently (bounded), with a per-call timeout and
no retries, and every outcome is classified into one of `STATUSES` with a message a
person can act on.

LiteLLM is heavy (seconds to import) and has side effects at import, so it is
imported only by `_litellm()`, which first makes it offline and quiet. Nothing else
in the package imports it: `validate`, `plan` and `--help` stay fast.

Secrets: a target's key is passed to LiteLLM and to nothing else. LiteLLM's
exceptions and responses hold the key in request headers, so they are never turned
into text wholesale; messages are built from a status code and the provider's own
error text, scrubbed of the key and bounded in length.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import contextvars
import functools
import json
import logging
import os
import re
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence
from urllib.parse import urlsplit, urlunsplit

from reconciler.scrub import scrub as scrub_forms

from reconciler.providers import (
    DEFAULT_ENDPOINTS,
    KEY_REQUIRED,
    PROVIDER_ENVIRONMENT_PREFIXES,
    litellm_model,
    requests_dimensions,
    translate_endpoint,
)

if TYPE_CHECKING:  # pragma: no cover
    from reconciler.spec import EmbeddingModel, GenerationModel, NerModel

STATUSES: tuple[str, ...] = (
    "ok",
    "authentication_error",
    "timeout_error",
    "connection_error",
    "not_found",
    "rate_limited",
    "dimension_mismatch",
    "provider_error",
    "key_undecryptable",  # test --from-db: the stored key does not open with the passphrase (not tested)
)

DEFAULT_CONCURRENCY = 8
DEFAULT_TIMEOUT = 30.0
# What `--concurrency` and `--timeout` accept (apply and test alike).
MAX_CONCURRENCY = 256
MAX_TIMEOUT = 3600.0
MAX_MESSAGE_LENGTH = 300
MAX_DETAIL_LENGTH = 160

# What an embedding test embeds and a completion test asks.
_PROBE_TEXT = "connection test"

@dataclass(frozen=True)
class ConnectionTarget:
    """One model to test, with its key resolved (never shown: `repr=False`).

    `key_source` says where the key came from (an environment variable name such as
    OPENAI_API_KEY, or a phrase such as "the key stored in the registry") so that an
    authentication failure can say what to fix.
    """

    name: str
    type: str
    provider: str
    model_id: str
    api_endpoint: str | None = None
    api_version: str | None = None
    api_key: str | None = field(default=None, repr=False)
    dimensions: int | None = None
    key_source: str | None = None


@dataclass(frozen=True)
class ConnectionResult:
    """The outcome of one test: a status from `STATUSES`, latency in ms and a message."""

    name: str
    status: str
    latency_ms: int
    message: str

    @property
    def ok(self) -> bool:
        """True when the model answered as declared."""
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output and audit details."""
        return {"name": self.name, "status": self.status, "latency_ms": self.latency_ms, "message": self.message}


def target_from_model(
    model: "EmbeddingModel | GenerationModel | NerModel", api_key: str | None, key_source: str | None = None
) -> ConnectionTarget:
    """Build a target from a validated spec model and its resolved key (None when unset).

    `key_source` defaults to the environment variable the model's `${env:NAME}` names.
    """
    from reconciler.spec import env_reference_name

    if key_source is None and model.api_key:
        key_source = env_reference_name(model.api_key)
    dimensions = getattr(model.parameters, "dimensions", None) if model.type == "embedding" else None
    return ConnectionTarget(
        name=model.name,
        type=model.type,
        provider=model.provider,
        model_id=model.model_id,
        api_endpoint=model.api_endpoint,
        api_version=model.api_version,
        api_key=api_key,
        dimensions=dimensions,
        key_source=key_source,
    )


# --------------------------------------------------------------------------------------
# Pure parts: request building, classification, scrubbing (endpoint rules: `providers`).
# --------------------------------------------------------------------------------------


def build_request(target: ConnectionTarget, timeout: float, *, zero_price: bool = False) -> tuple[str, dict[str, Any]]:
    """("embedding" | "completion", keyword arguments for `litellm.aembedding`/`acompletion`).

    Always an explicit timeout (LiteLLM's default is 6000 s) and no retries. The key
    is included: never log the result. `zero_price` adds a price of zero per token
    (only where LiteLLM's pricing could not be turned off, see `_call`).
    """
    kwargs: dict[str, Any] = {
        "model": litellm_model(target.provider, target.type, target.model_id),
        "timeout": timeout,
        "max_retries": 0,
    }
    api_base = translate_endpoint(target.provider, target.type, target.api_endpoint)
    if api_base is not None:
        kwargs["api_base"] = api_base
    if target.provider == "azure" and target.api_version:
        kwargs["api_version"] = target.api_version
    if target.api_key:
        kwargs["api_key"] = target.api_key
    if zero_price:
        kwargs["input_cost_per_token"] = 0.0
        kwargs["output_cost_per_token"] = 0.0
    if target.type == "embedding":
        kwargs["input"] = [_PROBE_TEXT]
        if target.dimensions is not None and requests_dimensions(target.provider, target.model_id):
            # Ask for the declared size, as KBs do: a model declared at 512 is tested at 512.
            kwargs["dimensions"] = target.dimensions
        if target.provider == "cohere":
            # Cohere v2 requires embedding_types for v3+ models; LiteLLM maps this to it.
            kwargs["encoding_format"] = "float"
        return "embedding", kwargs
    kwargs["messages"] = [{"role": "user", "content": _PROBE_TEXT}]
    kwargs["max_tokens"] = 1
    return "completion", kwargs


def display_endpoint(target: ConnectionTarget) -> str:
    """The URL a message names: the translated endpoint or the provider's default, no credentials."""
    url = translate_endpoint(target.provider, target.type, target.api_endpoint) or DEFAULT_ENDPOINTS.get(
        target.provider, "the provider's default endpoint"
    )
    parts = urlsplit(url)
    if parts.username or parts.password:  # never show user:password@ from a URL
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        url = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return url


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every form of each secret (raw, URL-encoded, base64, hex, provider-masked) with `***`.

    The forms are `reconciler.scrub`'s; this name stays for the callers here.
    """
    return scrub_forms(text, secrets)


# Texts that mean "the connection itself failed", whichever exception carried them:
# depending on the provider, LiteLLM reports a refused connection as APIConnectionError
# or as InternalServerError(500) whose message is the transport's.
_CONNECTION_TEXT = re.compile(
    r"connection error|cannot connect to host|connect call failed|connection refused|"
    r"name or service not known|nodename nor servname|temporary failure in name resolution|"
    r"no address associated|all connection attempts failed|network is unreachable|"
    r"no route to host|server disconnected|connection reset|getaddrinfo failed",
    re.IGNORECASE,
)
# Transport exception classes (by name, so that this stays importable without httpx/aiohttp).
_CONNECTION_CLASSES = frozenset(
    {
        "ConnectError",
        "ConnectionError",
        "ConnectionRefusedError",
        "ConnectionResetError",
        "ClientConnectorError",
        "ClientConnectionError",
        "ServerDisconnectedError",
        "ClientOSError",
        "gaierror",
        "RemoteProtocolError",
    }
)
_TIMEOUT_CLASSES = frozenset(
    {"Timeout", "TimeoutError", "APITimeoutError", "ReadTimeout", "ConnectTimeout", "PoolTimeout", "WriteTimeout",
     "TimeoutException", "ServerTimeoutError"}
)
# Gemini answers a bad key with 400 INVALID_ARGUMENT, not 401.
_BAD_KEY_TEXT = re.compile(r"api[ _]key not valid|api_key_invalid|invalid api[ _-]?key|incorrect api key", re.IGNORECASE)


def _class_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes/contexts, without cycles."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not s for s in seen) and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _status_code(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    return code if isinstance(code, int) else None


def _raw_message(exc: BaseException) -> str:
    """The exception's own message attribute, never str(exc) of foreign objects."""
    message = getattr(exc, "message", None)
    if isinstance(message, str):
        return message
    if exc.args and isinstance(exc.args[0], str):
        return exc.args[0]
    return ""


def classify_exception(exc: BaseException) -> str:
    """Map an exception from LiteLLM (or the transport below it) to a status of `STATUSES`."""
    chain = _chain(exc)
    names = set().union(*(_class_names(e) for e in chain))
    code = _status_code(exc)
    text = _raw_message(exc)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) or _class_names(exc) & _TIMEOUT_CLASSES or code == 408:
        return "timeout_error"
    transport_failed = bool(names & _CONNECTION_CLASSES) and code in (None, 500)
    if transport_failed or (
        (_class_names(exc) & {"APIConnectionError", "InternalServerError", "APIError", "ServiceUnavailableError"})
        and code in (None, 500, 503)
        and _CONNECTION_TEXT.search(text)
    ):
        return "connection_error"
    if code in (401, 403) or _class_names(exc) & {"AuthenticationError", "PermissionDeniedError"}:
        return "authentication_error"
    if code == 400 and _BAD_KEY_TEXT.search(text):
        return "authentication_error"
    if code == 404 or "NotFoundError" in _class_names(exc):
        return "not_found"
    if code == 429 or "RateLimitError" in _class_names(exc):
        return "rate_limited"
    return "provider_error"


# LiteLLM wraps the provider's text in layers of prefixes and hints.
_PREFIXES = re.compile(
    r"^(?:litellm\.\w+:\s*|\w*(?:Error|Exception)\s*(?:\w+Error)?\s*[-:]\s*|Error code:\s*\d+\s*-\s*)+",
)
_TRAILERS = re.compile(r"\.?\s*(?:Handle with `litellm\.\w+`\.?|Received Model Group=.*|LiteLLM Retried:.*)$", re.DOTALL)


def provider_detail(exc: BaseException, secrets: Iterable[str | None] = ()) -> str:
    """The provider's own error text from a LiteLLM exception: unwrapped, scrubbed, bounded."""
    text = _PREFIXES.sub("", _raw_message(exc).strip())
    text = _TRAILERS.sub("", text).strip()
    start = text.find("{")
    if start != -1:
        try:
            payload = json.loads(text[start:])
        except ValueError:
            payload = None
        extracted = _message_from_payload(payload)
        if extracted:
            text = extracted
    text = " ".join(text.split())
    text = scrub(text, secrets)
    if len(text) > MAX_DETAIL_LENGTH:
        text = text[: MAX_DETAIL_LENGTH - 3].rstrip() + "..."
    return text


def _message_from_payload(payload: Any) -> str | None:
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        if isinstance(error, str):
            return error
        if isinstance(payload.get("message"), str):
            return payload["message"]
    return None


def _bounded(message: str, secrets: Iterable[str | None]) -> str:
    message = scrub(message, secrets)
    if len(message) > MAX_MESSAGE_LENGTH:
        message = message[: MAX_MESSAGE_LENGTH - 3].rstrip() + "..."
    return message


def failure_message(status: str, target: ConnectionTarget, exc: BaseException | None, timeout: float) -> str:
    """An actionable one-line message for a failed test (no key in it)."""
    secrets = (target.api_key,)
    code = _status_code(exc) if exc is not None else None
    http = f"HTTP {code}" if code else None
    detail = provider_detail(exc, secrets) if exc is not None else ""
    endpoint = display_endpoint(target)
    said = f"; provider said: {detail}" if detail else ""
    if status == "authentication_error":
        source = target.key_source
        if source and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", source):
            where = f"the key in {source}"  # an environment variable
        else:
            where = source or "the API key"
        message = f"authentication failed ({http or 'rejected'}): check {where}{said}"
    elif status == "timeout_error":
        message = f"no answer within {timeout:g} s from {endpoint}: check api_endpoint and the network, or raise --timeout"
    elif status == "connection_error":
        message = f"cannot connect to {endpoint}: check api_endpoint and that the service is running"
    elif status == "not_found":
        what = "deployment" if target.provider == "azure" else "model"
        message = f"{what} '{target.model_id}' not found at {endpoint} ({http or 'not found'}): check model_id{said}"
    elif status == "rate_limited":
        message = f"rate limited ({http or 'quota'}): the key was accepted but the quota is exhausted; retry later{said}"
    else:
        kind = http or (type(exc).__name__ if exc is not None else "error")
        message = f"provider error ({kind}){': ' + detail if detail else ''}"
    return _bounded(message, secrets)


def _vector_length(vector: Any) -> int | None:
    if isinstance(vector, (list, tuple)):
        return len(vector)
    if isinstance(vector, str):  # base64 float32, if a client hands it through undecoded
        try:
            return len(base64.b64decode(vector)) // 4
        except ValueError:
            return None
    return None


def embedding_length(response: Any) -> int | None:
    """Length of the first vector of a LiteLLM EmbeddingResponse, None if there is none."""
    data = getattr(response, "data", None)
    if not data:
        return None
    first = data[0]
    vector = first.get("embedding") if isinstance(first, dict) else getattr(first, "embedding", None)
    return _vector_length(vector)


def check_embedding(target: ConnectionTarget, length: int | None) -> tuple[str, str]:
    """(status, message) for an embedding answer of `length` dimensions."""
    if not length:
        return "provider_error", "provider error: the answer held no embedding vector"
    if target.dimensions is not None and length != target.dimensions:
        return "dimension_mismatch", f"vector has {length} dimensions, registry declares {target.dimensions}"
    return "ok", f"{length}-dimension vector"


def check_completion(response: Any) -> tuple[str, str]:
    """(status, message) for a completion answer."""
    choices = getattr(response, "choices", None)
    if not choices:
        return "provider_error", "provider error: the answer held no completion"
    return "ok", "completion returned"


def precheck(target: ConnectionTarget) -> tuple[str, str] | None:
    """A failure found without the network (missing key, unknown type), else None."""
    if target.provider in KEY_REQUIRED and not target.api_key:
        if target.key_source and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", target.key_source):
            return "authentication_error", f"no API key: environment variable {target.key_source} is not set"
        return "authentication_error", f"no API key for this model (provider {target.provider} needs one)"
    if target.type not in ("embedding", "generation", "ner"):
        return "provider_error", f"unknown model type {target.type!r}"
    if target.provider == "azure" and not target.api_endpoint:
        return "connection_error", "azure needs api_endpoint (the resource URL)"
    return None


# --------------------------------------------------------------------------------------
# LiteLLM: imported lazily, made offline and quiet first.
# --------------------------------------------------------------------------------------

_LITELLM: Any = None


def _litellm() -> Any:
    """Import and configure LiteLLM once per process.

    Before import: offline mode and the local cost map (else it fetches a cost map
    over the network, seconds when the network black-holes), and PRODUCTION mode
    (else it loads a `.env` from the working directory). These are assigned, not
    setdefault: a user's LITELLM_MODE=DEV would otherwise bring the `.env` back.
    """
    global _LITELLM
    if _LITELLM is not None:
        return _LITELLM
    os.environ["LITELLM_OFFLINE_MODE"] = "true"
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "true"
    os.environ["LITELLM_MODE"] = "PRODUCTION"
    # Never LiteLLM's debug logging (it dumps requests), whatever LITELLM_LOG or the
    # root logger's level says; from before the import, since it logs while it loads
    # (its module-level clients), and again after, should an import set a level. Its
    # warnings are about pricing and cost maps, noise in an apply's output: every
    # outcome we care about is in the ConnectionResult.
    _quiet_litellm_loggers()
    import litellm

    # Without this, LiteLLM prints banners to stdout on every failure.
    litellm.suppress_debug_info = True
    # OpenAI embeddings read `max_retries or litellm.DEFAULT_MAX_RETRIES`, so a
    # per-call 0 falls through to this default (2): three requests per test.
    litellm.DEFAULT_MAX_RETRIES = 0
    litellm.num_retries = None
    litellm.set_verbose = False
    _quiet_litellm_loggers()
    _skip_bookkeeping(litellm)
    _find_request_builders()
    _LITELLM = litellm
    return litellm


def _quiet_litellm_loggers() -> None:
    for logger_name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
        logging.getLogger(logger_name).setLevel(logging.ERROR)


def configured_litellm() -> Any:
    """The `litellm` module, imported once and made offline and quiet (for other commands that use it)."""
    return _litellm()


# Set while a connection test's request runs (and inherited by the tasks and threads
# LiteLLM starts for it): LiteLLM's bookkeeping is skipped for our calls only, so
# another use of LiteLLM in the process (export's Router check) keeps all of it.
_OUR_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar("llm_registry_connection_test", default=False)

# Whether `_skip_bookkeeping` turned LiteLLM's pricing of responses off for our calls.
# Where it could not (a LiteLLM of another layout), each call carries a price of zero
# instead: after an Ollama chat LiteLLM would otherwise look up the cost of a model it
# does not know by asking the server (POST /api/show) with a *synchronous* client on
# the event loop -- a second request with the key, every other test stalled meanwhile,
# beyond the reach of our timeout. Not where pricing is off: a per-call price makes
# LiteLLM build a price entry before every call (model-info lookups over its cost
# map, ~10 % of the client's CPU per test in bench/connection.py).
_PRICING_SKIPPED = False


def _skipped_for_our_calls(original: Callable[..., Any]) -> Callable[..., Any]:
    if getattr(original, "_llm_registry_wrapped", False):
        return original
    if asyncio.iscoroutinefunction(original):

        async def async_wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            if _OUR_CALL.get():
                return None
            return await original(self, *args, **kwargs)

        wrapper: Any = async_wrapper
    else:

        def sync_wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            if _OUR_CALL.get():
                return None
            return original(self, *args, **kwargs)

        wrapper = sync_wrapper
    wrapper._llm_registry_wrapped = True
    return wrapper


def _skip_bookkeeping(litellm: Any) -> None:
    """Turn off, for our calls, what LiteLLM does around each call for proxies and dashboards.

    Per call it prices the response (model-info lookups over its cost map, token
    counting with tiktoken) and runs success or failure logging (with traceback
    formatting and secret-redaction regexes) in a thread and a task: a few ms
    of CPU per test, which at N=1000 and c=32 more than tripled the wall time
    (bench/connection.py). A connection test needs none of it. Each switch is applied
    only where this LiteLLM version has it, and only inside `_call` (see _OUR_CALL).
    """
    try:
        from litellm.litellm_core_utils.litellm_logging import Logging
    except ImportError:  # pragma: no cover - layout of other LiteLLM versions
        return
    global _PRICING_SKIPPED
    for name in ("response_cost_calculator", "success_handler", "failure_handler", "async_success_handler", "async_failure_handler"):
        if hasattr(Logging, name):
            setattr(Logging, name, _skipped_for_our_calls(getattr(Logging, name)))
    _PRICING_SKIPPED = hasattr(Logging, "response_cost_calculator")
    try:
        from litellm.llms.ollama.common_utils import OllamaModelInfo
    except ImportError:  # pragma: no cover - layout of other LiteLLM versions
        return
    # Before an Ollama call (pricing, Responses-API routing) LiteLLM asks for the model's
    # details: it searches its whole cost map (~2 ms) and, for a model not in it, POSTs
    # /api/show with a *synchronous* client to OLLAMA_API_BASE or localhost:11434 -- not
    # the endpoint under test, with OLLAMA_API_KEY if set, blocking its thread. None is
    # "no details": LiteLLM then uses its static cost map, as for any unknown model.
    if hasattr(OllamaModelInfo, "get_model_info"):
        OllamaModelInfo.get_model_info = _skipped_for_our_calls(OllamaModelInfo.get_model_info)


# LiteLLM's synchronous `completion` and `embedding`, which its `acompletion` and
# `aembedding` hand to the event loop's default executor (found by `_litellm()`).
_REQUEST_BUILDERS: tuple[Callable[..., Any], ...] = ()


def _find_request_builders() -> None:
    global _REQUEST_BUILDERS
    try:
        import litellm.main as litellm_main
    except ImportError:  # pragma: no cover - layout of other LiteLLM versions
        return
    _REQUEST_BUILDERS = tuple(
        builder for builder in (getattr(litellm_main, "completion", None), getattr(litellm_main, "embedding", None))
        if callable(builder)
    )


def builds_our_request(fn: Callable[..., Any]) -> bool:
    """Whether `fn` is LiteLLM building the request of one of our calls: the
    `partial(context.run, partial(completion or embedding, ...))` its `acompletion` and
    `aembedding` hand to the executor while a connection test runs."""
    if not _OUR_CALL.get() or not isinstance(fn, functools.partial) or len(fn.args) != 1 or fn.keywords:
        return False
    if not isinstance(getattr(fn.func, "__self__", None), contextvars.Context):
        return False
    inner = fn.args[0]
    return isinstance(inner, functools.partial) and any(inner.func is builder for builder in _REQUEST_BUILDERS)


class RequestBuildingInline(concurrent.futures.ThreadPoolExecutor):
    """The default executor of a connection-test run's event loop.

    LiteLLM's `acompletion` and `aembedding` run the synchronous `completion` and
    `embedding` in the loop's default executor; for our calls they only build the
    request and return a coroutine, without I/O (pricing and Ollama's model lookup are
    skipped, see `_skip_bookkeeping`). In a thread that is a hand-off per test and
    the GIL passed to and fro between the thread and the loop: at N=1000 15-20 %
    of the wall time (bench/connection.py). So those run inline, on the loop; anything
    else -- aiohttp's DNS lookups above all, which can block for seconds -- goes to
    threads as before.
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        """Run LiteLLM's request building for our calls now, anything else in a thread."""
        if args or kwargs or not builds_our_request(fn):
            return super().submit(fn, *args, **kwargs)
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn())
        except Exception as exc:  # noqa: BLE001 - delivered to the awaiting call, as from a thread
            future.set_exception(exc)
        return future


# (provider, kind) pairs whose LiteLLM code `_warm_up` has loaded in this process.
_WARMED: set[tuple[str, str]] = set()


async def _warm_up(litellm: Any, targets: Sequence[ConnectionTarget], timeout: float) -> None:
    """Load LiteLLM's provider code before any test's timer starts, once per process.

    LiteLLM imports each provider's handlers, transports and clients on its first call
    (hundreds of ms; seconds on a busy machine), which would count as the first
    tests' latency. One request per (provider, kind) goes to a loopback port this
    process holds bound but never listens on, so it is refused at once: no byte leaves
    the machine and no key is sent (a placeholder stands in).
    """
    # An NER model is tested with a completion, like a generation model: one probe for both.
    kinds = sorted({(t.provider, "embedding" if t.type == "embedding" else "generation") for t in targets
                    if precheck(t) is None} - _WARMED)
    if not kinds:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
        probes = [
            ConnectionTarget(
                name="warm-up", type=kind, provider=provider, model_id="warm-up", api_endpoint=endpoint,
                api_version="2024-02-01" if provider == "azure" else None, api_key="warm-up-placeholder",
            )
            for provider, kind in kinds
        ]

        async def probe(target: ConnectionTarget) -> None:
            try:
                await asyncio.wait_for(_call(litellm, target, min(timeout, 5.0)), min(timeout, 5.0) + 1.0)
            except Exception:  # noqa: BLE001 - refused by design
                pass

        await asyncio.gather(*(probe(target) for target in probes))
    _WARMED.update(kinds)


async def close_litellm_clients() -> None:
    """Close LiteLLM's cached async HTTP clients (they belong to the running loop) and forget them."""
    if _LITELLM is None:
        return
    try:
        # Public only in newer LiteLLM; older ones have no such helper, and dropping the
        # cached clients below is then all there is to do.
        from litellm.llms.custom_httpx.async_client_cleanup import close_litellm_async_clients
    except ImportError:
        close_litellm_async_clients = None

    try:
        if close_litellm_async_clients is not None:
            await close_litellm_async_clients()
    finally:
        cache = getattr(_LITELLM, "in_memory_llm_clients_cache", None)
        if cache is not None and hasattr(cache, "flush_cache"):
            cache.flush_cache()


async def _call(litellm: Any, target: ConnectionTarget, timeout: float) -> tuple[str, str]:
    _OUR_CALL.set(True)  # this task's context only (each test runs in a task of its own)
    kind, kwargs = build_request(target, timeout, zero_price=not _PRICING_SKIPPED)
    if kind == "embedding":
        response = await litellm.aembedding(**kwargs)
        return check_embedding(target, embedding_length(response))
    response = await litellm.acompletion(**kwargs)
    return check_completion(response)


async def test_one(target: ConnectionTarget, timeout: float = DEFAULT_TIMEOUT) -> ConnectionResult:
    """Test one model: one request, at most about `timeout` seconds, never raises (but on cancel)."""
    early = precheck(target)
    if early is not None:
        return ConnectionResult(target.name, early[0], 0, _bounded(early[1], (target.api_key,)))
    litellm = _litellm()
    started = time.perf_counter()
    try:
        # LiteLLM's timeout is per read; a server that drips bytes could stretch it,
        # so the whole call is bounded too, a little later than LiteLLM's own limit.
        status, message = await asyncio.wait_for(_call(litellm, target, timeout), timeout + min(1.0, timeout / 2) + 0.5)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a classified result
        status = classify_exception(exc)
        message = failure_message(status, target, exc, timeout)
    latency_ms = int(round((time.perf_counter() - started) * 1000))
    return ConnectionResult(target.name, status, latency_ms, _bounded(message, (target.api_key,)))


# pytest would collect `test_*` functions imported into test modules; these are not tests.
test_one.__test__ = False  # type: ignore[attr-defined]


async def test_connections(
    targets: Sequence[ConnectionTarget],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT,
    on_result: Callable[[ConnectionResult], None] | None = None,
) -> list[ConnectionResult]:
    """Test every target, at most `concurrency` at a time; results in input order.

    `on_result` is called with each result as it completes (for progress display).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    if not targets:
        return []
    with provider_environment_hidden():
        if any(precheck(t) is None for t in targets):
            # Import once and load the providers' code before the tasks start, not inside
            # the first ones' timers: a test's latency is the provider's.
            await _warm_up(_litellm(), targets, timeout)
        semaphore = asyncio.Semaphore(concurrency)
        results: list[ConnectionResult | None] = [None] * len(targets)

        async def run(index: int, target: ConnectionTarget) -> None:
            async with semaphore:
                result = await test_one(target, timeout)
            results[index] = result
            if on_result is not None:
                on_result(result)

        await asyncio.gather(*(run(i, t) for i, t in enumerate(targets)))
    return [r for r in results if r is not None]


test_connections.__test__ = False  # type: ignore[attr-defined]


@contextlib.contextmanager
def provider_environment_hidden() -> Iterator[None]:
    """Hide, while tests run, the environment variables LiteLLM and the SDKs would fall back to.

    Every key and endpoint a test uses is in its target, resolved from what the
    definition names. Without this, a model with no key of its own (every Ollama
    model) would carry OLLAMA_API_KEY to whatever endpoint a file names, and a model
    without an endpoint would go to OPENAI_BASE_URL instead of the provider's default.
    The variables are back when the tests end.
    """
    hidden = {name: os.environ.pop(name) for name in list(os.environ) if name.startswith(PROVIDER_ENVIRONMENT_PREFIXES)}
    try:
        yield
    finally:
        os.environ.update(hidden)


def run_connection_tests(
    targets: Sequence[ConnectionTarget],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT,
    on_result: Callable[[ConnectionResult], None] | None = None,
) -> list[ConnectionResult]:
    """Synchronous `test_connections`: owns an event loop and closes LiteLLM's clients before it ends.

    The loop's default executor is a `RequestBuildingInline`: LiteLLM builds our
    requests on the loop, not in threads.
    """

    async def main() -> list[ConnectionResult]:
        asyncio.get_running_loop().set_default_executor(RequestBuildingInline(thread_name_prefix="llm-registry-io"))
        try:
            return await test_connections(targets, concurrency=concurrency, timeout=timeout, on_result=on_result)
        finally:
            await close_litellm_clients()

    return asyncio.run(main())
