"""Benchmark: how close concurrent connection tests come to the ideal wall time.

N models on the fake provider, each answering after L seconds, tested at
concurrency c. The ideal is ceil(N / c) * L: c requests always in flight, no
overhead. Prints the measured wall time, the ideal and their ratio (goal: within
1.2x at N=100, L=200 ms, c=8). Figures only, never an assertion.

    .venv/bin/python -m bench.connection                    # N=100, L=0.2, c=8, all providers
    .venv/bin/python -m bench.connection -n 200 -c 16 --latency 0.1 --provider openai

LiteLLM's import and each provider's first call (LiteLLM imports provider code
lazily) are done in a warm-up round that is reported separately, not timed.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.connection import ConnectionTarget, _litellm, close_litellm_clients, test_connections  # noqa: E402
from reconciler.providers import PROVIDER_MATRIX  # noqa: E402
from tests.fakes.provider import FakeProvider  # noqa: E402

# The two request kinds (NER models are tested like generation) each provider serves.
KINDS = {
    provider: tuple(kind for kind in rules["types"] if kind != "ner") for provider, rules in PROVIDER_MATRIX.items()
}


def make_targets(fake: FakeProvider, count: int, latency: float, providers: list[str], prefix: str) -> list[ConnectionTarget]:
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


async def run(args: argparse.Namespace, fake: FakeProvider) -> tuple[float, float, int, int]:
    """(warm-up seconds, measured seconds, failures, max requests in flight)."""
    providers = list(KINDS) if args.provider == "all" else [args.provider]
    try:
        warm = make_targets(fake, len([1 for p in providers for _ in KINDS[p]]), 0.0, providers, "warm")
        started = time.perf_counter()
        await test_connections(warm, concurrency=args.concurrency, timeout=args.timeout)
        warm_seconds = time.perf_counter() - started

        fake.reset()
        targets = make_targets(fake, args.n, args.latency, providers, "bench")
        started = time.perf_counter()
        results = await test_connections(targets, concurrency=args.concurrency, timeout=args.timeout)
        seconds = time.perf_counter() - started
        return warm_seconds, seconds, sum(not r.ok for r in results), fake.max_in_flight
    finally:
        await close_litellm_clients()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.connection", description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100, help="models to test (100)")
    parser.add_argument("--latency", "-L", type=float, default=0.2, help="seconds each answer takes (0.2)")
    parser.add_argument("--concurrency", "-c", type=int, default=8, help="tests at once (8)")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-test timeout (30)")
    parser.add_argument("--provider", default="all", choices=["all", *KINDS], help="provider(s) to cycle over (all)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    _litellm()
    import_seconds = time.perf_counter() - started

    with FakeProvider() as fake:
        warm_seconds, seconds, failures, in_flight = asyncio.run(run(args, fake))

    ideal = math.ceil(args.n / args.concurrency) * args.latency
    ratio = seconds / ideal if ideal else float("nan")
    print(f"models         {args.n} ({args.provider}), latency {args.latency * 1000:.0f} ms, concurrency {args.concurrency}")
    print(f"litellm import {import_seconds:.2f} s (not timed below); warm-up round {warm_seconds:.2f} s")
    print(f"wall time      {seconds:.3f} s")
    print(f"ideal          {ideal:.3f} s  = ceil({args.n}/{args.concurrency}) x {args.latency:g} s")
    print(f"ratio          {ratio:.3f}x  (goal <= 1.2x)")
    print(f"per test       {seconds / args.n * 1000:.1f} ms wall; max in flight at server {in_flight}; failures {failures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
