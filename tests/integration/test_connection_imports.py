"""LiteLLM stays out of paths that do not test connections, is tamed when it loads, and is closed after a run.

It costs seconds to import, fetches a cost map over the network and reads a `.env`
from the working directory at import: each of those is checked here in a fresh
process, as a user would meet it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import CANARY_KEY

REPO = Path(__file__).resolve().parents[2]


def run_python(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=full_env, timeout=120)


def imported_modules(importtime_stderr: str) -> set[str]:
    """Module names from `-X importtime` output (`import time: self | cumulative | name`)."""
    names = set()
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["test", "--help"],
        ["validate", "registry.d"],
    ],
    ids=["help", "test-help", "validate"],
)
def test_litellm_is_not_imported(argv: list[str]) -> None:
    completed = run_python("-X", "importtime", "-m", "reconciler", *argv)
    assert completed.returncode in (0, 1), completed.stderr[-2000:]
    modules = imported_modules(completed.stderr)
    assert "reconciler.cli" in modules, "importtime output was parsed"
    assert not {m for m in modules if m == "litellm" or m.startswith("litellm.")}


def test_pipeline_modules_do_not_import_litellm() -> None:
    candidates = [
        "reconciler.cli", "reconciler.connection", "reconciler.validate", "reconciler.plan", "reconciler.policy",
        "reconciler.render", "reconciler.commands.validate", "reconciler.commands.plan", "reconciler.commands.test",
        "reconciler.commands.apply", "reconciler.commands.list_models", "reconciler.apply",
    ]
    present = [name for name in candidates if importlib.util.find_spec(name) is not None]
    # A module another change left unimportable is that change's failure, not this
    # test's; the modules of the connection path itself must import.
    code = (
        "import importlib, sys\n"
        f"for name in {present!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError:\n"
        "        if name in ('reconciler.cli', 'reconciler.connection', 'reconciler.commands.test'):\n"
        "            raise\n"
        "print(sorted(m for m in sys.modules if m == 'litellm' or m.startswith('litellm.')))\n"
    )
    completed = run_python("-c", code)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == "[]"


def test_litellm_loads_offline_in_production_mode_without_dotenv(tmp_path: Path) -> None:
    # A user's LITELLM_MODE=DEV would make LiteLLM load this .env: the tester overrides it.
    (tmp_path / ".env").write_text("DOTENV_WAS_LOADED=yes\nOPENAI_API_KEY=sk-from-dotenv\n")
    code = (
        "import os\n"
        "from reconciler.connection import _litellm\n"
        "litellm = _litellm()\n"
        "print(os.environ.get('DOTENV_WAS_LOADED'), os.environ['LITELLM_MODE'], os.environ['LITELLM_OFFLINE_MODE'],\n"
        "      litellm.DEFAULT_MAX_RETRIES, litellm.suppress_debug_info)\n"
    )
    env = {"LITELLM_MODE": "DEV", "LITELLM_OFFLINE_MODE": "false"}
    completed = run_python("-c", code, cwd=tmp_path, env=env)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.split() == ["None", "PRODUCTION", "true", "0", "True"]
    # No attempt to fetch the cost map (it retries for seconds when the network is gone).
    assert "cost map" not in completed.stderr
    assert completed.stderr.strip() == ""


def test_litellm_debug_logging_stays_off_when_the_application_logs_everything() -> None:
    # An application that logs at DEBUG (or LITELLM_LOG=DEBUG) would get every request
    # LiteLLM makes: the tester pins LiteLLM's loggers at ERROR whatever is asked.
    code = (
        "import logging\n"
        "logging.basicConfig(level=logging.DEBUG, format='%(name)s| %(message)s')\n"
        "from reconciler.connection import ConnectionTarget, run_connection_tests\n"
        "from tests.factories import CANARY_KEY\n"
        "from tests.fakes.provider import FakeProvider\n"
        "with FakeProvider() as fake:\n"
        "    fake.set_model('gpt', api_key=CANARY_KEY)\n"
        "    target = ConnectionTarget(name='gpt', type='generation', provider='openai', model_id='gpt',\n"
        "                              api_endpoint=fake.url, api_key=CANARY_KEY)\n"
        "    print([r.status for r in run_connection_tests([target], timeout=20)])\n"
    )
    completed = run_python("-c", code, env={"LITELLM_LOG": "DEBUG"})
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip().splitlines()[-1] == "['ok']"
    assert "asyncio| Using selector" in completed.stderr, "the application's debug logging is on"
    assert [line for line in completed.stderr.splitlines() if line.startswith("LiteLLM")] == []
    assert CANARY_KEY not in completed.stderr


LEAK_PROBE = r"""
from reconciler.connection import ConnectionTarget, run_connection_tests
from tests.fakes.provider import FakeProvider
with FakeProvider() as fake:
    targets = []
    for provider, kind in [("openai", "embedding"), ("openai", "generation"), ("ollama", "generation"), ("cohere", "embedding")]:
        fake.set_model(f"{provider}-{kind}", dimensions=4)
        targets.append(ConnectionTarget(name=f"{provider}-{kind}", type=kind, provider=provider, model_id=f"{provider}-{kind}",
                                        api_endpoint=fake.url, api_key="k-0123456789", dimensions=4 if kind == "embedding" else None))
    print([r.status for r in run_connection_tests(targets, timeout=20)])
"""


def test_a_run_leaves_no_connection_open() -> None:
    # Python reports a socket or transport still open when it tears down (checked in a
    # process of its own, as the CLI meets it): the run closed every client it opened.
    done = run_python("-W", "always::ResourceWarning", "-c", LEAK_PROBE)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == str(["ok"] * 4)
    assert "ResourceWarning" not in done.stderr, done.stderr[-2000:]
