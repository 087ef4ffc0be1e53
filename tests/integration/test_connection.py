"""Connection tests through the real LiteLLM client against the fake provider over real HTTP.

For every provider and both model kinds (embedding, generation; NER takes the
generation path) and every outcome: ok, bad key, unknown model, refused
connection, timeout, dimension mismatch, rate limited, provider error. Each case
asserts the status, the message, the number of requests that reached the server
(exactly one: no retries) and that the canary key was sent but appears in no
result, output or log record.

The matrix runs once per module (concurrently, as the product runs it) and the
parametrised tests read its results, which keeps the suite fast.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from dataclasses import dataclass
from typing import Iterator

import pytest

from reconciler.connection import ConnectionResult, ConnectionTarget, run_connection_tests
from tests.factories import CANARY_KEY, REQUEST_KINDS
from tests.fakes.provider import FakeProvider

KINDS = REQUEST_KINDS
CASES = [(provider, kind) for provider, kinds in KINDS.items() for kind in kinds]
SCENARIOS = ("ok", "bad_key", "unknown_model", "refused", "dimension_mismatch", "rate_limited", "provider_error")
TIMEOUT_SCENARIO_SECONDS = 1.0
DECLARED_DIMENSIONS = 8


def natural_endpoint(provider: str, base: str) -> str | None:
    """What an admin would write: each provider's documented base URL form."""
    return {
        "openai": f"{base}/v1",
        "azure": base,
        "gemini": base,
        "anthropic": f"{base}/v1",  # must be cut back: LiteLLM adds /v1/messages
        "cohere": base,
        "ollama": base,
    }[provider]


def model_id(provider: str, kind: str, scenario: str) -> str:
    return f"{provider}-{kind}-{scenario}"


def make_target(provider: str, kind: str, scenario: str, base: str) -> ConnectionTarget:
    return ConnectionTarget(
        name=f"{provider}-{kind}-{scenario}",
        type=kind,
        provider=provider,
        model_id=model_id(provider, kind, scenario),
        api_endpoint=natural_endpoint(provider, base),
        api_version="2024-02-01" if provider == "azure" else None,
        # Ollama takes no key in the registry, but one behind an auth proxy may:
        # send the canary there too, since an Ollama exception carries it in its headers.
        api_key=CANARY_KEY,
        dimensions=DECLARED_DIMENSIONS if kind == "embedding" else None,
        key_source=f"{provider.upper()}_API_KEY",
    )


@dataclass
class MatrixRun:
    results: dict[str, ConnectionResult]
    requests: dict[str, list]  # model id -> requests the server got
    all_requests: list  # every request the server got, whatever its path
    output: str  # everything printed or logged during the run
    progress: list[str]
    elapsed: float


@contextlib.contextmanager
def capture_everything() -> Iterator[io.StringIO]:
    """Collect stdout, stderr and every log record (all levels) written inside the block."""
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield sink
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


@pytest.fixture(scope="module")
def matrix(fake_provider_server: FakeProvider, closed_port_url_module: str) -> MatrixRun:
    fake = fake_provider_server
    fake.reset()
    fake.set_default(None)
    targets: list[ConnectionTarget] = []
    for provider, kind in CASES:
        for scenario in SCENARIOS:
            if scenario == "dimension_mismatch" and kind != "embedding":
                continue
            mid = model_id(provider, kind, scenario)
            base = closed_port_url_module if scenario == "refused" else fake.url
            targets.append(make_target(provider, kind, scenario, base))
            if scenario == "ok":
                fake.set_model(mid, dimensions=DECLARED_DIMENSIONS, api_key=CANARY_KEY)
            elif scenario == "bad_key":
                fake.set_model(mid, dimensions=DECLARED_DIMENSIONS, api_key="the-right-key-is-not-the-canary")
            elif scenario == "dimension_mismatch":
                fake.set_model(mid, dimensions=DECLARED_DIMENSIONS + 4, api_key=CANARY_KEY)
            elif scenario == "rate_limited":
                fake.set_model(mid, status=429, api_key=CANARY_KEY)
            elif scenario == "provider_error":
                fake.set_model(mid, status=500, api_key=CANARY_KEY)
            # unknown_model: not configured, the server answers 404
    progress: list[str] = []
    with capture_everything() as sink:
        started = time.perf_counter()
        results = run_connection_tests(targets, concurrency=16, timeout=20.0, on_result=lambda r: progress.append(r.name))
        elapsed = time.perf_counter() - started
    assert [r.name for r in results] == [t.name for t in targets], "results must come back in input order"
    requests = {t.model_id: fake.requests(t.model_id) for t in targets}
    all_requests = fake.requests()
    fake.reset()
    return MatrixRun({r.name: r for r in results}, requests, all_requests, sink.getvalue(), progress, elapsed)


@pytest.fixture(scope="module")
def closed_port_url_module() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _name(provider: str, kind: str, scenario: str) -> str:
    return f"{provider}-{kind}-{scenario}"


def case_ids(case: tuple[str, str]) -> str:
    return f"{case[0]}-{case[1]}"


@pytest.mark.parametrize("case", CASES, ids=case_ids)
def test_ok(matrix: MatrixRun, case: tuple[str, str]) -> None:
    provider, kind = case
    result = matrix.results[_name(provider, kind, "ok")]
    assert result.status == "ok", result.message
    assert result.message == (f"{DECLARED_DIMENSIONS}-dimension vector" if kind == "embedding" else "completion returned")
    requests = matrix.requests[model_id(provider, kind, "ok")]
    assert len(requests) == 1
    assert requests[0].provider == provider, "the request went to the provider's own endpoint"
    assert requests[0].kind == ("embedding" if kind == "embedding" else "chat")
    assert requests[0].presented_key() == CANARY_KEY, "the key reached the server"
    assert "cost_per_token" not in repr(requests[0].body), "LiteLLM-only parameters stay out of the request"
    assert 0 <= result.latency_ms < 20_000


def test_generation_asks_for_one_token(matrix: MatrixRun) -> None:
    bodies = {p: matrix.requests[model_id(p, "generation", "ok")][0].body for p, k in CASES if k == "generation"}
    assert bodies["openai"]["max_tokens"] == 1
    assert bodies["azure"]["max_tokens"] == 1
    assert bodies["anthropic"]["max_tokens"] == 1
    assert bodies["cohere"]["max_tokens"] == 1
    assert bodies["gemini"]["generationConfig"]["max_output_tokens"] == 1
    assert bodies["ollama"]["options"]["num_predict"] == 1


@pytest.mark.parametrize("case", CASES, ids=case_ids)
def test_bad_key(matrix: MatrixRun, case: tuple[str, str]) -> None:
    provider, kind = case
    result = matrix.results[_name(provider, kind, "bad_key")]
    assert result.status == "authentication_error", result.message
    assert result.message.startswith(f"authentication failed (HTTP 401): check the key in {provider.upper()}_API_KEY")
    assert len(matrix.requests[model_id(provider, kind, "bad_key")]) == 1


@pytest.mark.parametrize("case", CASES, ids=case_ids)
def test_unknown_model(matrix: MatrixRun, case: tuple[str, str]) -> None:
    provider, kind = case
    result = matrix.results[_name(provider, kind, "unknown_model")]
    assert result.status == "not_found", result.message
    assert f"'{model_id(provider, kind, 'unknown_model')}' not found at http://127.0.0.1:" in result.message
    assert "check model_id" in result.message
    assert len(matrix.requests[model_id(provider, kind, "unknown_model")]) == 1


@pytest.mark.parametrize("case", CASES, ids=case_ids)
def test_refused_connection(matrix: MatrixRun, closed_port_url_module: str, case: tuple[str, str]) -> None:
    provider, kind = case
    result = matrix.results[_name(provider, kind, "refused")]
    assert result.status == "connection_error", result.message
    assert result.message.startswith(f"cannot connect to {closed_port_url_module}")
    assert "check api_endpoint" in result.message


@pytest.mark.parametrize("provider", [p for p, k in CASES if k == "embedding"])
def test_dimension_mismatch(matrix: MatrixRun, provider: str) -> None:
    result = matrix.results[_name(provider, "embedding", "dimension_mismatch")]
    assert result.status == "dimension_mismatch", result.message
    assert result.message == f"vector has {DECLARED_DIMENSIONS + 4} dimensions, registry declares {DECLARED_DIMENSIONS}"
    assert len(matrix.requests[model_id(provider, "embedding", "dimension_mismatch")]) == 1


@pytest.mark.parametrize("case", CASES, ids=case_ids)
def test_rate_limited_is_not_retried(matrix: MatrixRun, case: tuple[str, str]) -> None:
    provider, kind = case
    result = matrix.results[_name(provider, kind, "rate_limited")]
    assert result.status == "rate_limited", result.message
    assert result.message.startswith("rate limited (HTTP 429)")
    assert len(matrix.requests[model_id(provider, kind, "rate_limited")]) == 1


@pytest.mark.parametrize("case", CASES, ids=case_ids)
def test_provider_error_is_not_retried(matrix: MatrixRun, case: tuple[str, str]) -> None:
    provider, kind = case
    result = matrix.results[_name(provider, kind, "provider_error")]
    assert result.status == "provider_error", result.message
    assert result.message.startswith("provider error (HTTP 500)")
    # OpenAI embeddings ignore a per-call max_retries=0 unless litellm.DEFAULT_MAX_RETRIES is 0.
    assert len(matrix.requests[model_id(provider, kind, "provider_error")]) == 1


def test_no_request_beyond_the_test_itself(matrix: MatrixRun) -> None:
    # One request per test that reaches the server: no retry, and no side lookup such
    # as LiteLLM's synchronous Ollama /api/show after a chat (it blocks the event loop).
    reaching = [name for name in matrix.results if not name.endswith("-refused")]
    assert [r.path for r in matrix.all_requests if r.provider == "unknown"] == []
    assert len(matrix.all_requests) == len(reaching)


def test_canary_key_appears_nowhere(matrix: MatrixRun) -> None:
    # The fake echoes the presented key in its 401 messages, as OpenAI does.
    assert any(r.status == "authentication_error" for r in matrix.results.values())
    for result in matrix.results.values():
        assert CANARY_KEY not in result.message, result.name
        assert CANARY_KEY not in repr(result)
    assert CANARY_KEY not in matrix.output


def test_progress_callback_once_per_target(matrix: MatrixRun) -> None:
    assert sorted(matrix.progress) == sorted(matrix.results)


def test_nothing_printed_by_litellm(matrix: MatrixRun) -> None:
    # suppress_debug_info: no "Give Feedback / Get Help" banners on failures.
    assert "Give Feedback" not in matrix.output
    assert "LiteLLM.Info" not in matrix.output


# --- timeouts: every provider and kind at once, a short timeout -----------------------


@pytest.fixture(scope="module")
def timeout_run(fake_provider_server: FakeProvider) -> tuple[list[ConnectionResult], dict[str, int], str]:
    fake = fake_provider_server
    fake.reset()
    fake.set_default(None)
    targets = []
    for provider, kind in CASES:
        fake.set_model(model_id(provider, kind, "hang"), hang=True)
        targets.append(make_target(provider, kind, "hang", fake.url))
    with capture_everything() as sink:
        results = run_connection_tests(targets, concurrency=len(targets), timeout=TIMEOUT_SCENARIO_SECONDS)
    counts = {t.name: fake.request_count(t.model_id) for t in targets}
    fake.reset()
    return results, counts, sink.getvalue()


@pytest.mark.parametrize("case", CASES, ids=case_ids)
def test_timeout(timeout_run: tuple[list[ConnectionResult], dict[str, int], str], case: tuple[str, str]) -> None:
    results, counts, output = timeout_run
    name = _name(case[0], case[1], "hang")
    result = next(r for r in results if r.name == name)
    assert result.status == "timeout_error", result.message
    assert result.message.startswith(f"no answer within {TIMEOUT_SCENARIO_SECONDS:g} s from http://127.0.0.1:")
    # Gives up in about the timeout: not 3x (retries), not LiteLLM's 6000 s default.
    assert TIMEOUT_SCENARIO_SECONDS * 1000 * 0.9 <= result.latency_ms <= TIMEOUT_SCENARIO_SECONDS * 1000 + 1500
    assert counts[name] == 1, "exactly one request: no retry after a timeout"
    assert CANARY_KEY not in result.message and CANARY_KEY not in output


# --- behaviour of the runner ----------------------------------------------------------


def test_concurrency_is_bounded_and_latency_measured(fake_provider: FakeProvider) -> None:
    targets = []
    for i in range(6):
        fake_provider.set_model(f"slow-{i}", latency=0.3)
        targets.append(
            ConnectionTarget(name=f"slow-{i}", type="generation", provider="ollama", model_id=f"slow-{i}", api_endpoint=fake_provider.url)
        )
    started = time.perf_counter()
    results = run_connection_tests(targets, concurrency=2, timeout=10)
    elapsed = time.perf_counter() - started
    assert all(r.ok for r in results), [r.message for r in results]
    assert fake_provider.max_in_flight <= 2
    assert all(r.latency_ms >= 290 for r in results)
    assert elapsed >= 0.85  # three rounds of 0.3 s: the bound is real


def test_missing_key_makes_no_request(fake_provider: FakeProvider) -> None:
    fake_provider.set_model("gpt", api_key=CANARY_KEY)
    target = ConnectionTarget(
        name="gpt", type="generation", provider="openai", model_id="gpt", api_endpoint=fake_provider.url,
        api_key=None, key_source="OPENAI_API_KEY",
    )
    [result] = run_connection_tests([target], timeout=5)
    assert result.status == "authentication_error"
    assert result.message == "no API key: environment variable OPENAI_API_KEY is not set"
    assert result.latency_ms == 0  # no request, no time
    assert fake_provider.request_count() == 0


@pytest.mark.parametrize(("options", "error"), [
    ({"concurrency": 0}, "concurrency must be at least 1"),
    ({"timeout": 0}, "timeout must be positive"),
])
def test_a_bound_that_allows_no_test_is_refused(options: dict, error: str) -> None:
    target = ConnectionTarget(name="m", type="generation", provider="ollama", model_id="m")
    with pytest.raises(ValueError, match=error):
        run_connection_tests([target], **options)


def test_canary_absent_from_captured_fds_and_logs(
    fake_provider: FakeProvider, closed_port_url: str, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Defence in depth: the same failures, with pytest capturing file descriptors and every log level."""
    caplog.set_level(logging.DEBUG)
    fake_provider.set_model("wrong-key", api_key="another-key")
    fake_provider.set_model("broken", status=500, api_key=CANARY_KEY)
    targets = [
        ConnectionTarget(name=f"{p}-{m}", type="generation", provider=p, model_id=m,
                         api_endpoint=fake_provider.url if m != "refused" else closed_port_url,
                         api_version="2024-02-01", api_key=CANARY_KEY)
        for p in ("ollama", "openai", "azure", "gemini")
        for m in ("wrong-key", "broken", "refused", "missing")
    ]
    results = run_connection_tests(targets, timeout=5)
    assert not any(r.ok for r in results)
    out, err = capfd.readouterr()
    assert CANARY_KEY not in out + err
    assert all(CANARY_KEY not in record.getMessage() for record in caplog.records)
    assert CANARY_KEY not in caplog.text
    assert all(CANARY_KEY not in r.message for r in results)


def test_consecutive_runs_each_own_their_loop(fake_provider: FakeProvider) -> None:
    # LiteLLM caches clients per event loop; closing them at the end of a run must
    # not break the next run (the CLI runs once, tests and apply run many times).
    fake_provider.set_model("again", dimensions=4)
    target = ConnectionTarget(name="again", type="embedding", provider="openai", model_id="again",
                              api_endpoint=fake_provider.url, api_key="k", dimensions=4)
    for _ in range(3):
        [result] = run_connection_tests([target], timeout=5)
        assert result.ok, result.message
    assert fake_provider.request_count("again") == 3


def test_a_run_closes_and_forgets_litellms_clients(fake_provider: FakeProvider) -> None:
    # Its async clients belong to the run's event loop, which ends with the run.
    fake_provider.set_model("closing", dimensions=4)
    target = ConnectionTarget(name="closing", type="embedding", provider="openai", model_id="closing",
                              api_endpoint=fake_provider.url, api_key="k", dimensions=4)
    [result] = run_connection_tests([target], timeout=5)
    assert result.ok, result.message
    import litellm  # imported (offline and quiet) by the run

    assert litellm.in_memory_llm_clients_cache.cache_dict == {}


def test_one_at_a_time(fake_provider: FakeProvider) -> None:
    targets = []
    for i in range(3):
        fake_provider.set_model(f"serial-{i}", latency=0.05)
        targets.append(ConnectionTarget(name=f"serial-{i}", type="generation", provider="ollama", model_id=f"serial-{i}",
                                        api_endpoint=fake_provider.url))
    results = run_connection_tests(targets, concurrency=1, timeout=10)
    assert [r.status for r in results] == ["ok"] * 3
    assert fake_provider.max_in_flight == 1


@pytest.mark.parametrize("kind", ["embedding", "generation"])
def test_a_model_without_a_key_carries_none_from_the_environment(
    fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """LiteLLM falls back to OLLAMA_API_KEY (OPENAI_BASE_URL, ...) for what a call does not
    pass: an Ollama model, which has no key, would carry that key to whatever endpoint its file names."""
    fake_provider.set_model("local", dimensions=DECLARED_DIMENSIONS)
    monkeypatch.setenv("OLLAMA_API_KEY", CANARY_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/never")
    target = ConnectionTarget(name="local", type=kind, provider="ollama", model_id="local", api_endpoint=fake_provider.url,
                              dimensions=DECLARED_DIMENSIONS if kind == "embedding" else None)
    [result] = run_connection_tests([target], timeout=10)
    assert result.ok, result.message
    [request] = fake_provider.requests("local")
    assert request.presented_key() is None and CANARY_KEY not in str(dict(request.headers))
    assert os.environ["OLLAMA_API_KEY"] == CANARY_KEY  # back once the tests are done
