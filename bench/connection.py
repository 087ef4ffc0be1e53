"""Benchmark: how close concurrent connection tests come to the ideal wall time.

N models on the fake provider, each answering after L seconds, tested at
concurrency c. The ideal is ceil(N / c) * L: c requests always in flight, no
overhead. Prints the measured wall time, the ideal and their ratio (goals: within
1.2x at N=100, L=200 ms, c=8; within 2x at N=1000, L=50 ms, c=32). Figures only,
never an assertion.

    .venv/bin/python -m bench.connection                    # N=100, L=0.2, c=8, all providers
    .venv/bin/python -m bench.connection -n 200 -c 16 --latency 0.1 --provider openai
    .venv/bin/python -m bench.connection -n 1000 -c 32 --latency 0.05 --executor-threads   # as before, for A/B

LiteLLM's import and each provider's first call (LiteLLM imports provider code
lazily) are done in a warm-up round that is reported separately, not timed.

The fake provider runs in a process of its own (`--fake-in-process`: in threads of
the benchmark's process, as the tests run it). The ideal assumes a provider that
costs nothing; in process, its handler threads (one per connection) add their own
CPU (~0.3 ms per test) and GIL hand-offs with the event loop to the client's, 0.3 to
1 ms per test in all, so the ratio would measure the fake too. The CPU line is the
benchmark process's own (user + system) per test, fake included only in process.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import math
import multiprocessing
import resource
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler import connection  # noqa: E402
from reconciler.connection import ConnectionTarget, _litellm, run_connection_tests  # noqa: E402
from tests.factories import REQUEST_KINDS  # noqa: E402
from tests.fakes.provider import FakeProvider  # noqa: E402

KINDS = REQUEST_KINDS


def _serve_fake(conn: Any) -> None:
    """Child process: a FakeProvider driven by (method, args, kwargs) messages until "stop"."""
    with FakeProvider() as fake:
        conn.send(fake.url)
        while True:
            method, args, kwargs = conn.recv()
            if method == "stop":
                break
            if method == "max_in_flight":
                conn.send(fake.max_in_flight)
            else:
                getattr(fake, method)(*args, **kwargs)
                conn.send(None)


class RemoteFake:
    """The parts of FakeProvider the benchmark uses, served by a child process."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve_fake, args=(child,), daemon=True)

    def __enter__(self) -> "RemoteFake":
        self._process.start()
        self.url: str = self._conn.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.send(("stop", (), {}))
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()

    def _rpc(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self._conn.send((method, args, kwargs))
        return self._conn.recv()

    def set_model(self, model: str, **kwargs: Any) -> None:
        """FakeProvider.set_model in the child."""
        self._rpc("set_model", model, **kwargs)

    def reset(self) -> None:
        """FakeProvider.reset in the child."""
        self._rpc("reset")

    @property
    def max_in_flight(self) -> int:
        """FakeProvider.max_in_flight of the child."""
        return int(self._rpc("max_in_flight"))


# Issue 13's goals: (N, concurrency, latency in s) -> the ratio to the ideal to stay within.
GOALS = {(100, 8, 0.2): 1.2, (1000, 32, 0.05): 2.0}
GOALS_TEXT = "issue 13: " + "; ".join(f"{goal:g}x at N={n}, c={c}, L={latency:g} s" for (n, c, latency), goal in GOALS.items())


def make_targets(fake: Any, count: int, latency: float, providers: list[str], prefix: str) -> list[ConnectionTarget]:
    """`count` targets cycling over the providers and kinds, each model answering after `latency` s."""
    combos = [(p, k) for p in providers for k in KINDS[p]]
    targets = []
    for i in range(count):
        provider, kind = combos[i % len(combos)]
        model_id = f"{prefix}-{i}"
        fake.set_model(model_id, dimensions=16, latency=latency)
        targets.append(
            ConnectionTarget(
                name=model_id, type=kind, provider=provider, model_id=model_id,
                api_endpoint=fake.url, api_version="2024-02-01" if provider == "azure" else None,
                api_key="bench-key", dimensions=16 if kind == "embedding" else None,
            )
        )
    return targets


def run(args: argparse.Namespace, fake: Any) -> tuple[float, float, float, int, int]:
    """(warm-up seconds, measured seconds, measured CPU seconds, failures, max requests in flight).

    Each round is one `run_connection_tests`, as `apply` and `test` run them: its own
    event loop, the tests, LiteLLM's clients closed at the end.
    """
    providers = list(KINDS) if args.provider == "all" else [args.provider]
    warm = make_targets(fake, len([1 for p in providers for _ in KINDS[p]]), 0.0, providers, "warm")
    started = time.perf_counter()
    run_connection_tests(warm, concurrency=args.concurrency, timeout=args.timeout)
    warm_seconds = time.perf_counter() - started

    fake.reset()
    targets = make_targets(fake, args.n, args.latency, providers, "bench")
    cpu_started = _cpu_seconds()
    started = time.perf_counter()
    results = run_connection_tests(targets, concurrency=args.concurrency, timeout=args.timeout)
    seconds = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_started
    return warm_seconds, seconds, cpu, sum(not r.ok for r in results), fake.max_in_flight


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.connection", description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100, help="models to test (100)")
    parser.add_argument("--latency", "-L", type=float, default=0.2, help="seconds each answer takes (0.2)")
    parser.add_argument("--concurrency", "-c", type=int, default=8, help="tests at once (8)")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-test timeout (30)")
    parser.add_argument("--provider", default="all", choices=["all", *KINDS], help="provider(s) to cycle over (all)")
    parser.add_argument(
        "--fake-in-process", action="store_true",
        help="run the fake provider in a thread of this process (its CPU then counts against the client)",
    )
    parser.add_argument(
        "--executor-threads", action="store_true",
        help="let LiteLLM build requests in executor threads, as before RequestBuildingInline (an A/B reference)",
    )
    args = parser.parse_args(argv)
    if args.executor_threads:
        connection.RequestBuildingInline = concurrent.futures.ThreadPoolExecutor  # type: ignore[misc]

    started = time.perf_counter()
    _litellm()
    import_seconds = time.perf_counter() - started

    with (FakeProvider() if args.fake_in_process else RemoteFake()) as fake:
        warm_seconds, seconds, cpu, failures, in_flight = run(args, fake)

    ideal = math.ceil(args.n / args.concurrency) * args.latency
    ratio = seconds / ideal if ideal else float("nan")
    where = "in this process" if args.fake_in_process else "in its own process"
    print(f"models         {args.n} ({args.provider}), latency {args.latency * 1000:.0f} ms, concurrency {args.concurrency}")
    print(f"fake provider  {where}")
    print(f"request builds {'in executor threads (--executor-threads)' if args.executor_threads else 'on the event loop'}")
    print(f"litellm import {import_seconds:.2f} s (not timed below); warm-up round {warm_seconds:.2f} s")
    print(f"wall time      {seconds:.3f} s")
    print(f"ideal          {ideal:.3f} s  = ceil({args.n}/{args.concurrency}) x {args.latency:g} s")
    goal = GOALS.get((args.n, args.concurrency, args.latency))
    verdict = f"goal <= {goal:g}x: {'met' if ratio <= goal else 'NOT met'}" if goal else f"no goal for this setting ({GOALS_TEXT})"
    print(f"ratio          {ratio:.3f}x  ({verdict})")
    print(f"per test       {seconds / args.n * 1000:.1f} ms wall, {cpu / args.n * 1000:.2f} ms CPU (this process); "
          f"max in flight at server {in_flight}; failures {failures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
