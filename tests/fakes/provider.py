"""A fake LLM provider: one real HTTP server on loopback that speaks six wire formats.

It answers the embedding and chat endpoints of OpenAI, Azure OpenAI, Gemini,
Anthropic, Cohere (v2) and Ollama in the request/response shapes the LiteLLM
client uses, so that tests drive the *real* client over real HTTP. Which provider
a request is for follows from its path, as it would on the real services:

    openai     POST <base>/v1/embeddings, <base>/v1/chat/completions       Authorization: Bearer
    azure      POST /openai/deployments/<deployment>/{embeddings,chat/completions}?api-version=  api-key:
    gemini     POST /v1beta/models/<model>:{batchEmbedContents,embedContent,generateContent}  x-goog-api-key:
    anthropic  POST /v1/messages                                          x-api-key:
    cohere     POST /v2/embed, /v2/chat                                    Authorization: Bearer
    ollama     POST /api/embed, /api/embeddings, /api/chat                 (Authorization if given)

Per model (keyed by the model name the request carries: body `model`, Azure
deployment or Gemini path segment) a test chooses a `Behaviour`: ok with N
dimensions, a fixed HTTP status (401, 404, 429, 500, ...), hang until the client
gives up, added latency, and the API key the model expects (a different key gets
401). An unknown model gets 404, as on the real services, unless the server was
started with a default behaviour (the standalone demo mode).

Every request is recorded (thread-safe), raw auth headers included so that tests
can assert that a key reached the server. The record is for assertions only:
never print it.

Standalone, for demos:

    python -m tests.fakes.provider --port 8089 --dimensions nomic-embed-text=768

prints its base URL and serves every model as ok (embedding dimensions from
`--dimensions MODEL=N`, else `--default-dimensions`, 768) until interrupted.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import select
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Mapping
from urllib.parse import parse_qs, quote, urlsplit

PROVIDERS = ("openai", "azure", "gemini", "anthropic", "cohere", "ollama")

# The longest a hanging request is held when the client never disconnects.
MAX_HANG_SECONDS = 120.0


@dataclass(frozen=True)
class Behaviour:
    """How the fake answers requests for one model.

    status: None for a successful answer, else the HTTP error status to return.
    dimensions: length of the embedding vectors returned on success.
    hang: hold the request open without answering until the client disconnects.
    latency: seconds to wait before answering (success or error).
    api_key: the key the model expects; any other key (or none) gets 401.
    resizable: the model returns vectors of the size a request asks for (the provider's
        own field: dimensions, output_dimension, outputDimensionality), else `dimensions`.
    echo: how a 401 repeats the key it was sent, one of `ECHO_FORMS` (default "raw",
        as OpenAI did); real providers mask it, some encode it.
    """

    status: int | None = None
    dimensions: int = 8
    hang: bool = False
    latency: float = 0.0
    api_key: str | None = None
    resizable: bool = False
    echo: str = "raw"


def requested_dimensions(provider: str, body: Any) -> int | None:
    """The vector size an embedding request asks for, in the provider's own field (None: none asked)."""
    if not isinstance(body, dict):
        return None
    if provider == "cohere":
        value = body.get("output_dimension")
    elif provider == "gemini":
        requests = body.get("requests")
        first = requests[0] if isinstance(requests, list) and requests and isinstance(requests[0], dict) else body
        value = first.get("outputDimensionality")
    else:
        value = body.get("dimensions")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _b64(data: bytes, urlsafe: bool = False) -> str:
    return (base64.urlsafe_b64encode(data) if urlsafe else base64.b64encode(data)).decode("ascii")


# How providers (and the proxies in front of them) repeat a refused key. Written out
# here independently of the tool's scrubber, so a test of one does not just mirror
# the other. Each maps the key to the text the 401 message carries.
ECHO_FORMS: dict[str, Any] = {
    "raw": lambda key: key,
    "url": lambda key: quote(key, safe=""),
    "json-escaped": lambda key: json.dumps(key)[1:-1],
    "base64": lambda key: _b64(key.encode()),
    "base64-unpadded": lambda key: _b64(key.encode()).rstrip("="),
    "base64-urlsafe": lambda key: _b64(key.encode(), urlsafe=True).rstrip("="),
    # HTTP Basic credentials: the key at byte offsets 1, 2 and 0 (mod 3) inside the encoding.
    "basic-offset-1": lambda key: "Basic " + _b64(b":" + key.encode()),
    "basic-offset-2": lambda key: "Basic " + _b64(b"u:" + key.encode()),
    "basic-offset-0": lambda key: "Basic " + _b64(b"api:" + key.encode() + b"\n"),
    "basic-urlsafe-1": lambda key: _b64(b"x" + key.encode(), urlsafe=True),
    "hex": lambda key: key.encode().hex(),
    "hex-upper": lambda key: key.encode().hex().upper(),
    "masked-openai": lambda key: f"{key[:8]}{'*' * 20}{key[-4:]}",
    "masked-dots": lambda key: f"{key[:3]}...{key[-4:]}",
    "masked-mixed": lambda key: f"{key[:8]}****...{key[-4:]}",
    "masked-suffix": lambda key: f"****{key[-4:]}",
    "masked-prefix": lambda key: f"{key[:10]}...",
    "masked-bullets": lambda key: f"{key[:4]}••••{key[-4:]}",
}


def echoed(key: str, form: str) -> str:
    """The text a 401 carries for `key` in echo form `form` (tests scan output for it)."""
    return ECHO_FORMS[form](key)


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received. `headers` keeps raw auth values: never print it."""

    provider: str  # one of PROVIDERS, or "unknown" for a path no provider has
    kind: str  # "embedding" | "chat" | "other"
    model: str
    method: str
    path: str
    headers: Mapping[str, str] = field(repr=False)
    body: Any = field(repr=False)
    received_at: float = 0.0

    def presented_key(self) -> str | None:
        """The API key this request carried, in whatever header its provider uses."""
        return _presented_key(self.provider, self.headers, self.path)


def _presented_key(provider: str, headers: Mapping[str, str], path: str) -> str | None:
    lowered = {name.lower(): value for name, value in headers.items()}
    if provider == "azure":
        return lowered.get("api-key")
    if provider == "anthropic":
        return lowered.get("x-api-key")
    if provider == "gemini":
        query_key = parse_qs(urlsplit(path).query).get("key")
        return lowered.get("x-goog-api-key") or (query_key[0] if query_key else None)
    authorization = lowered.get("authorization")
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:]
    return authorization


_GEMINI_PATH = re.compile(r"^/v1(?:beta)?/models/(?P<model>[^:/]+):(?P<method>batchEmbedContents|embedContent|generateContent)$")
_AZURE_PATH = re.compile(r"^/openai/deployments/(?P<model>[^/]+)/(?P<op>embeddings|chat/completions)$")


def _route(path: str, body: Any) -> tuple[str, str, str | None, str] | None:
    """Map a request to (provider, kind, model, operation), or None when no provider has that path."""
    route = urlsplit(path).path.rstrip("/")
    body_model = body.get("model") if isinstance(body, dict) else None
    if match := _AZURE_PATH.match(route):
        kind = "embedding" if match["op"] == "embeddings" else "chat"
        return "azure", kind, match["model"], match["op"]
    if match := _GEMINI_PATH.match(route):
        kind = "chat" if match["method"] == "generateContent" else "embedding"
        return "gemini", kind, match["model"], match["method"]
    if route.endswith("/v1/messages"):
        return "anthropic", "chat", body_model, "messages"
    if route.endswith(("/v2/embed", "/v1/embed")):
        return "cohere", "embedding", body_model, "embed"
    if route.endswith(("/v2/chat", "/v1/chat")):
        return "cohere", "chat", body_model, "chat"
    if route.endswith(("/api/embed", "/api/embeddings")):
        return "ollama", "embedding", body_model, route.rsplit("/", 1)[1]
    if route.endswith("/api/chat"):
        return "ollama", "chat", body_model, "chat"
    if route.endswith("/embeddings"):
        return "openai", "embedding", body_model, "embeddings"
    if route.endswith("/chat/completions"):
        return "openai", "chat", body_model, "chat/completions"
    return None


_REASONS = {
    400: ("invalid_request_error", "INVALID_ARGUMENT"),
    401: ("authentication_error", "UNAUTHENTICATED"),
    403: ("permission_error", "PERMISSION_DENIED"),
    404: ("not_found_error", "NOT_FOUND"),
    429: ("rate_limit_error", "RESOURCE_EXHAUSTED"),
    500: ("api_error", "INTERNAL"),
    503: ("overloaded_error", "UNAVAILABLE"),
}


def _error_message(status: int, model: str | None, presented_key: str | None, echo: str = "raw") -> str:
    if status == 401:
        # Like OpenAI, echo the key the client sent: the tester must scrub what providers say.
        return f"Incorrect API key provided: {echoed(presented_key, echo) if presented_key else '(none)'}. Check your key"
    if status == 404:
        return f"The model '{model}' does not exist or you do not have access to it."
    if status == 429:
        return "Rate limit reached for requests. Please try again later."
    return "The server had an error while processing your request."


def _error_body(provider: str, status: int, message: str) -> dict[str, Any]:
    """An error in the provider's own format."""
    error_type, google_status = _REASONS.get(status, ("api_error", "UNKNOWN"))
    if provider in ("openai", "azure"):
        return {"error": {"message": message, "type": error_type, "param": None, "code": str(status)}}
    if provider == "gemini":
        return {"error": {"code": status, "message": message, "status": google_status}}
    if provider == "anthropic":
        return {"type": "error", "error": {"type": error_type, "message": message}}
    if provider == "cohere":
        return {"message": message}
    return {"error": message}  # ollama


def _vector(dimensions: int) -> list[float]:
    # A unit vector: some clients normalise or sanity-check values.
    value = 1.0 / (dimensions**0.5) if dimensions else 0.0
    return [round(value, 6)] * dimensions


def _ok_body(provider: str, kind: str, operation: str, model: str, body: Any, dimensions: int) -> dict[str, Any]:
    """A successful answer in the provider's own format."""
    now = int(time.time())
    if provider in ("openai", "azure"):
        if kind == "embedding":
            inputs = body.get("input", [""]) if isinstance(body, dict) else [""]
            count = len(inputs) if isinstance(inputs, list) else 1
            vector: Any = _vector(dimensions)
            if isinstance(body, dict) and body.get("encoding_format") == "base64":
                vector = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode("ascii")
            return {
                "object": "list",
                "data": [{"object": "embedding", "index": i, "embedding": vector} for i in range(count)],
                "model": model,
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": now,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    if provider == "gemini":
        if operation == "batchEmbedContents":
            requests = body.get("requests", [{}]) if isinstance(body, dict) else [{}]
            return {"embeddings": [{"values": _vector(dimensions)} for _ in requests]}
        if operation == "embedContent":
            return {"embedding": {"values": _vector(dimensions)}}
        return {
            "candidates": [
                {"content": {"parts": [{"text": "ok"}], "role": "model"}, "finishReason": "MAX_TOKENS", "index": 0}
            ],
            "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2},
            "modelVersion": model,
        }
    if provider == "anthropic":
        return {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": "ok"}],
            "stop_reason": "max_tokens",
            "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        }
    if provider == "cohere":
        if kind == "embedding":
            texts = body.get("texts", [""]) if isinstance(body, dict) else [""]
            vectors = [_vector(dimensions) for _ in texts]
            types = body.get("embedding_types") if isinstance(body, dict) else None
            embeddings: Any = {t: vectors for t in types} if types else vectors
            return {
                "id": "fake",
                "embeddings": embeddings,
                "texts": texts,
                "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 1}},
                "response_type": "embeddings_by_type" if types else "embeddings_floats",
            }
        return {
            "id": "fake",
            "finish_reason": "MAX_TOKENS",
            "message": {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
            "usage": {
                "billed_units": {"input_tokens": 1, "output_tokens": 1},
                "tokens": {"input_tokens": 1, "output_tokens": 1},
            },
        }
    # ollama
    if kind == "embedding":
        if operation == "embeddings":  # the legacy endpoint: one prompt, one vector
            return {"embedding": _vector(dimensions)}
        inputs = body.get("input", [""]) if isinstance(body, dict) else [""]
        count = len(inputs) if isinstance(inputs, list) else 1
        return {"model": model, "embeddings": [_vector(dimensions)] * count, "prompt_eval_count": 1}
    return {
        "model": model,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "message": {"role": "assistant", "content": "ok"},
        "done": True,
        "done_reason": "length",
        "prompt_eval_count": 1,
        "eval_count": 1,
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog (5) drops connections under a burst of concurrent tests,
    # and a dropped SYN costs the client a one-second retransmit: keep it deep.
    request_queue_size = 256
    fake: "FakeProvider"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    # Headers and body in one segment, sent at once: with Nagle's algorithm and the
    # client's delayed ACK, a split response costs ~40-60 ms per request, which
    # would dwarf the latencies the benchmark measures.
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        # Silence per-request logs: headers may hold keys, and tests read stderr.
        return

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._send(200, {"status": "fake provider", "providers": list(PROVIDERS)})

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        fake = self.server.fake
        headers = {name: value for name, value in self.headers.items()}
        route = _route(self.path, body)
        if route is None:
            # Recorded too: a client making calls beyond the one test request (such as
            # LiteLLM's model-info lookup at Ollama's /api/show) must show in the counts.
            named = body.get("model") or body.get("name") if isinstance(body, dict) else None
            fake._record(RecordedRequest("unknown", "other", str(named or ""), "POST", self.path, headers, body, time.monotonic()))
            self._send(404, {"error": f"no fake endpoint at {urlsplit(self.path).path}"})
            return
        provider, kind, model, operation = route
        model_name = model or ""
        fake._record(RecordedRequest(provider, kind, model_name, "POST", self.path, headers, body, time.monotonic()))
        fake._enter()
        try:
            self._answer(fake, provider, kind, model_name, operation, headers, body)
        finally:
            fake._leave()

    def _answer(
        self, fake: "FakeProvider", provider: str, kind: str, model_name: str, operation: str,
        headers: Mapping[str, str], body: Any,
    ) -> None:
        behaviour = fake.behaviour_for(model_name)
        if behaviour is None:
            self._send_error(provider, 404, model_name, _presented_key(provider, headers, self.path))
            return
        if behaviour.latency:
            time.sleep(behaviour.latency)
        if behaviour.hang:
            self._hold_until_client_leaves()
            return
        presented = _presented_key(provider, headers, self.path)
        if behaviour.api_key is not None and presented != behaviour.api_key:
            self._send_error(provider, 401, model_name, presented, behaviour.echo)
            return
        if behaviour.status is not None:
            self._send_error(provider, behaviour.status, model_name, presented, behaviour.echo)
            return
        dimensions = behaviour.dimensions
        if behaviour.resizable and kind == "embedding":
            dimensions = requested_dimensions(provider, body) or dimensions
        self._send(200, _ok_body(provider, kind, operation, model_name, body, dimensions))

    def _hold_until_client_leaves(self) -> None:
        # Wait until the client closes the connection (it gave up: its timeout) or the
        # server stops, so that a hanging request never outlives the test.
        deadline = time.monotonic() + MAX_HANG_SECONDS
        sock: socket.socket = self.connection
        while time.monotonic() < deadline and not self.server.fake._stopping.is_set():
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable:
                try:
                    if not sock.recv(1, socket.MSG_PEEK):
                        break
                except OSError:
                    break
        self.close_connection = True

    def _send_error(self, provider: str, status: int, model: str, presented_key: str | None, echo: str = "raw") -> None:
        message = _error_message(status, model, presented_key, echo)
        extra = {"retry-after": "1"} if status == 429 else {}
        self._send(status, _error_body(provider, status, message), extra)

    def _send(self, status: int, payload: Any, extra_headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (extra_headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up first (its timeout): nothing left to answer.
            self.close_connection = True


class FakeProvider:
    """The fake provider server. Start it with `start()` (or use it as a context manager).

    `url` is the base URL (http://127.0.0.1:PORT). Configure models with
    `set_model(model_id, ...)`; read what arrived with `requests(model)`.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, default: Behaviour | None = None) -> None:
        self._host = host
        self._port = port
        self._default = default
        self._behaviours: dict[str, Behaviour] = {}
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._in_flight = 0
        self._max_in_flight = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> "FakeProvider":
        """Bind and serve in a background thread; return self."""
        server = _Server((self._host, self._port), _Handler)
        server.fake = self
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hanging requests, stop serving and close the socket."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> "FakeProvider":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the server listens on."""
        assert self._server is not None, "FakeProvider is not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:41234 (no trailing slash)."""
        return f"http://{self._host}:{self.port}"

    # -- behaviour -------------------------------------------------------------------

    def set_model(
        self,
        model: str,
        *,
        dimensions: int = 8,
        status: int | None = None,
        hang: bool = False,
        latency: float = 0.0,
        api_key: str | None = None,
        resizable: bool = False,
        echo: str = "raw",
    ) -> Behaviour:
        """Choose how requests for `model` are answered (see `Behaviour`); returns it."""
        if echo not in ECHO_FORMS:
            raise ValueError(f"unknown echo form {echo!r}; one of {sorted(ECHO_FORMS)}")
        behaviour = Behaviour(
            status=status, dimensions=dimensions, hang=hang, latency=latency, api_key=api_key, resizable=resizable,
            echo=echo,
        )
        with self._lock:
            self._behaviours[model] = behaviour
        return behaviour

    def behaviour_for(self, model: str) -> Behaviour | None:
        """The behaviour for a model: its own, else the default, else None (unknown: 404)."""
        with self._lock:
            return self._behaviours.get(model, self._default)

    def set_default(self, behaviour: Behaviour | None) -> None:
        """The behaviour of models nobody configured (None: they are unknown, 404)."""
        with self._lock:
            self._default = behaviour

    def reset(self) -> None:
        """Forget every model behaviour and recorded request."""
        with self._lock:
            self._behaviours.clear()
            self._requests.clear()
            self._max_in_flight = self._in_flight

    # -- record ----------------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    @property
    def max_in_flight(self) -> int:
        """The most requests the server was answering at once since the last reset."""
        with self._lock:
            return self._max_in_flight

    def requests(self, model: str | None = None) -> list[RecordedRequest]:
        """Requests received so far (for one model, if given), oldest first."""
        with self._lock:
            return [r for r in self._requests if model is None or r.model == model]

    def request_count(self, model: str | None = None) -> int:
        """How many requests arrived (for one model, if given)."""
        return len(self.requests(model))


def _parse_dimensions(values: list[str]) -> dict[str, int]:
    result: dict[str, int] = {}
    for value in values:
        name, sep, number = value.partition("=")
        if not sep or not name or not number.isdigit() or int(number) <= 0:
            raise argparse.ArgumentTypeError(f"--dimensions expects MODEL=N with N > 0, got {value!r}")
        result[name] = int(number)
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the fake provider in the foreground (demo mode: every model answers ok)."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.provider",
        description="A fake LLM provider on 127.0.0.1 speaking the OpenAI, Azure, Gemini, Anthropic, "
        "Cohere and Ollama wire formats. Every model answers ok; point a model's api_endpoint at the printed URL.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: a free one; default 0)")
    parser.add_argument(
        "--dimensions",
        action="append",
        default=[],
        metavar="MODEL=N",
        help="vector length an embedding model (its model_id) returns; repeatable",
    )
    parser.add_argument("--default-dimensions", type=int, default=768, help="vector length for other models (768)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer (0)")
    args = parser.parse_args(argv)
    try:
        dimensions = _parse_dimensions(args.dimensions)
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    fake = FakeProvider(port=args.port, default=Behaviour(dimensions=args.default_dimensions, latency=args.latency))
    fake.start()
    for model, n in dimensions.items():
        fake.set_model(model, dimensions=n, latency=args.latency)
    print(fake.url, flush=True)
    print(
        "fake provider: every model answers ok; base URLs: openai "
        f"{fake.url}/v1, gemini {fake.url}/v1beta, others {fake.url}. Ctrl-C to stop.",
        file=sys.stderr,
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["Behaviour", "FakeProvider", "PROVIDERS", "RecordedRequest", "main"]
