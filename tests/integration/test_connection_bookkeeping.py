"""LiteLLM's per-call bookkeeping (cost pricing, success/failure logging, Ollama model
lookups) is skipped for our connection tests and only for them (checked in a fresh
process, as a user meets it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = r"""
import asyncio, os, sys
os.environ.update(LITELLM_OFFLINE_MODE="true", LITELLM_LOCAL_MODEL_COST_MAP="true", LITELLM_MODE="PRODUCTION")
from litellm.litellm_core_utils.litellm_logging import Logging
calls = {"cost": 0, "success": 0, "failure": 0}
def counted(name, key, is_async):
    original = getattr(Logging, name)
    if is_async:
        async def wrapper(self, *a, **k):
            calls[key] += 1
            return await original(self, *a, **k)
    else:
        def wrapper(self, *a, **k):
            calls[key] += 1
            return original(self, *a, **k)
    setattr(Logging, name, wrapper)
counted("response_cost_calculator", "cost", False)
counted("success_handler", "success", False)
counted("failure_handler", "failure", False)
counted("async_success_handler", "success", True)
counted("async_failure_handler", "failure", True)
calls["price entries"] = 0
original_set_pricing = Logging.set_per_call_pricing
def set_pricing(self, entry):
    calls["price entries"] += entry is not None
    return original_set_pricing(self, entry)
Logging.set_per_call_pricing = set_pricing
from reconciler.connection import ConnectionTarget, _litellm, run_connection_tests
from tests.fakes.provider import FakeProvider
_litellm()
with FakeProvider() as fake:
    fake.set_model("gpt-4o-mini")
    targets = [ConnectionTarget(name=f"m{i}", type="generation", provider="openai", model_id="gpt-4o-mini",
                                api_endpoint=fake.url, api_key="k-0123456789") for i in range(3)]
    targets.append(ConnectionTarget(name="missing", type="generation", provider="openai", model_id="nope",
                                    api_endpoint=fake.url, api_key="k-0123456789"))
    results = run_connection_tests(targets, timeout=20)
print([r.status for r in results], calls)
"""


def test_litellm_bookkeeping_never_runs_for_a_connection_test() -> None:
    # No price entry either: with pricing off, a per-call price would only make LiteLLM
    # build one (model-info lookups) before every call.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == (
        "['ok', 'ok', 'ok', 'not_found'] {'cost': 0, 'success': 0, 'failure': 0, 'price entries': 0}"
    )



# Ollama tests with OLLAMA_API_BASE pointing at the fake, where LiteLLM sends its own
# model lookups (the tests themselves name the fake as their endpoint too).
OLLAMA_PROBE = r"""
import os
os.environ.update(LITELLM_OFFLINE_MODE="true", LITELLM_LOCAL_MODEL_COST_MAP="true", LITELLM_MODE="PRODUCTION")
from reconciler.connection import ConnectionTarget, run_connection_tests
from tests.fakes.provider import FakeProvider
with FakeProvider() as fake:
    os.environ["OLLAMA_API_BASE"] = fake.url
    targets = []
    for kind in ("embedding", "generation"):
        for i in range(2):
            fake.set_model(f"{kind}-{i}", dimensions=8)
            targets.append(ConnectionTarget(name=f"{kind}-{i}", type=kind, provider="ollama", model_id=f"{kind}-{i}",
                                            api_endpoint=fake.url, api_key="k-0123456789",
                                            dimensions=8 if kind == "embedding" else None))
    results = run_connection_tests(targets, timeout=20)
    paths = sorted(r.path for r in fake.requests())
print([r.status for r in results], paths)
"""


def test_no_ollama_model_lookup_beside_the_test() -> None:
    # LiteLLM would POST /api/show to OLLAMA_API_BASE (else localhost:11434), not the
    # endpoint under test, with a synchronous client, before each Ollama call.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("OLLAMA_API_BASE", None)
    done = subprocess.run([sys.executable, "-c", OLLAMA_PROBE], capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = ["ok"] * 4, ["/api/chat", "/api/chat", "/api/embed", "/api/embed"]
    assert done.stdout.strip().splitlines()[-1] == f"{expected[0]} {expected[1]}"
