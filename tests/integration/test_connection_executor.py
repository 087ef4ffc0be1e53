"""Where LiteLLM's work runs during a connection-test run, and what happens once per process.

LiteLLM's `acompletion`/`aembedding` build each request with the synchronous
`completion`/`embedding` in the event loop's default executor. For our calls that is
CPU work only, so `RequestBuildingInline` runs it on the loop; anything else handed to
the executor (a DNS lookup can block for seconds) must still go to a thread. And
LiteLLM's provider code is loaded by one warm-up per process, not per run.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from typing import Any, Iterator

import pytest

from reconciler import connection
from reconciler.connection import ConnectionResult, ConnectionTarget, RequestBuildingInline, run_connection_tests
from tests.factories import REQUEST_KINDS
from tests.fakes.provider import FakeProvider

THREAD_PREFIX = "llm-registry-io"
KINDS = [(provider, kind) for provider, kinds in REQUEST_KINDS.items() for kind in kinds]


def _targets(fake: FakeProvider) -> list[ConnectionTarget]:
    targets = []
    for provider, kind in KINDS:
        model_id = f"{provider}-{kind}"
        fake.set_model(model_id, dimensions=8)
        targets.append(ConnectionTarget(
            name=model_id, type=kind, provider=provider, model_id=model_id, api_endpoint=fake.url,
            api_version="2024-02-01" if provider == "azure" else None, api_key="k-0123456789",
            dimensions=8 if kind == "embedding" else None,
        ))
    return targets


@pytest.fixture
def litellm_builder_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The threads LiteLLM's `completion` and `embedding` run in (recorded, then called as they are)."""
    connection._litellm()  # first: LiteLLM imported offline and quiet
    import litellm.main

    threads: list[str] = []
    for name in ("completion", "embedding"):
        original = getattr(litellm.main, name)

        def recording(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            threads.append(threading.current_thread().name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(litellm.main, name, recording)
    connection._find_request_builders()
    yield threads
    monkeypatch.undo()
    connection._find_request_builders()


def test_litellm_builds_every_request_on_the_loop(
    fake_provider: FakeProvider, litellm_builder_threads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection, "_WARMED", set(KINDS))  # this test's requests only
    results = run_connection_tests(_targets(fake_provider), concurrency=4, timeout=20)
    assert [r.status for r in results] == ["ok"] * len(KINDS), [r.message for r in results]
    assert litellm_builder_threads == [threading.current_thread().name] * len(KINDS)


def _in_our_call(fn: Any, *args: Any) -> Any:
    context = contextvars.copy_context()
    context.run(connection._OUR_CALL.set, True)
    return context.run(fn, *args)


def _litellm_shaped(builder: Any, model: str = "m") -> functools.partial:
    """What LiteLLM hands the executor: `partial(context.run, partial(builder, **kwargs))`."""
    return functools.partial(contextvars.copy_context().run, functools.partial(builder, model=model))


def test_only_litellms_request_builders_of_our_calls_are_recognised(monkeypatch: pytest.MonkeyPatch) -> None:
    connection._litellm()
    # Found when LiteLLM is configured (forced again here: another test may have set them).
    monkeypatch.setattr(connection, "_REQUEST_BUILDERS", ())
    monkeypatch.setattr(connection, "_LITELLM", None)
    connection._litellm()
    completion, embedding = connection._REQUEST_BUILDERS
    assert [completion.__name__, embedding.__name__] == ["completion", "embedding"]
    assert _in_our_call(connection.builds_our_request, _litellm_shaped(completion))
    assert _in_our_call(connection.builds_our_request, _litellm_shaped(embedding))
    # Not inside a connection test (another user of LiteLLM in the process): a thread.
    assert not connection.builds_our_request(_litellm_shaped(completion))
    # Anything else, even in the same shape: a thread.
    assert not _in_our_call(connection.builds_our_request, _litellm_shaped(print))
    assert not _in_our_call(connection.builds_our_request, functools.partial(completion, model="m"))
    assert not _in_our_call(connection.builds_our_request, functools.partial(print, _litellm_shaped(completion)))
    assert not _in_our_call(connection.builds_our_request, functools.partial(print, functools.partial(completion, model="m")))
    shaped = _litellm_shaped(completion)
    assert not _in_our_call(connection.builds_our_request, functools.partial(shaped.func, *shaped.args, "more"))
    assert not _in_our_call(connection.builds_our_request, functools.partial(shaped.func, *shaped.args, extra=1))


@pytest.fixture
def request_builder(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A stand-in request builder recognised as LiteLLM's; it records the thread it ran in."""
    threads: list[str] = []

    def build(model: str) -> str:
        threads.append(threading.current_thread().name)
        if model == "boom":
            raise ValueError("no such model")
        return f"request for {model}"

    monkeypatch.setattr(connection, "_REQUEST_BUILDERS", (build,))
    return threads


def test_request_building_runs_inline_and_its_error_reaches_the_caller(request_builder: list[str]) -> None:
    with RequestBuildingInline(thread_name_prefix=THREAD_PREFIX) as executor:
        built = _in_our_call(executor.submit, _litellm_shaped(connection._REQUEST_BUILDERS[0]))
        failed = _in_our_call(executor.submit, _litellm_shaped(connection._REQUEST_BUILDERS[0], "boom"))
        assert built.done() and built.result() == "request for m"
        assert failed.done() and isinstance(failed.exception(), ValueError)
    assert request_builder == [threading.current_thread().name] * 2


def test_other_work_goes_to_a_thread_and_never_blocks_the_caller(request_builder: list[str]) -> None:
    release = threading.Event()

    def slow_lookup(host: str) -> str:
        release.wait(10)
        return f"{host} in {threading.current_thread().name}"

    with RequestBuildingInline(thread_name_prefix=THREAD_PREFIX) as executor:
        lookup = _in_our_call(executor.submit, functools.partial(slow_lookup, "api.openai.com"))
        outside = executor.submit(_litellm_shaped(connection._REQUEST_BUILDERS[0]))  # not inside a connection test
        assert not lookup.done()
        release.set()
        assert lookup.result(10).startswith(f"api.openai.com in {THREAD_PREFIX}")
        assert outside.result(10) == "request for m"
    assert request_builder[0].startswith(THREAD_PREFIX)


def test_litellm_code_is_warmed_up_once_per_process(fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    probes: list[tuple[str, str]] = []
    original_call = connection._call

    async def counting_call(litellm: Any, target: ConnectionTarget, timeout: float) -> tuple[str, str]:
        if target.name == "warm-up":
            probes.append((target.provider, target.type))
        return await original_call(litellm, target, timeout)

    monkeypatch.setattr(connection, "_call", counting_call)
    monkeypatch.setattr(connection, "_WARMED", set())
    ner = ConnectionTarget(name="ner", type="ner", provider="openai", model_id="openai-generation",
                           api_endpoint=fake_provider.url, api_key="k-0123456789")
    targets = [*_targets(fake_provider), ner]
    first = run_connection_tests(targets, timeout=20)
    assert sorted(probes) == sorted(KINDS), "one probe per request kind; NER asks what generation asks"
    probes.clear()
    second = run_connection_tests(targets, timeout=20)
    assert probes == []
    assert [r.status for r in first + second] == ["ok"] * 2 * len(targets)
    assert fake_provider.request_count() == 2 * len(targets)
