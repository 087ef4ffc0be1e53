"""The README's main command: the whole flow on the embedded default, from one script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo_home() -> Iterator[Path]:
    # A folder as `mktemp -d` makes it (0700): run as root, the cluster's server runs as
    # `postgres`, which cannot enter it, so the cluster's files go to /var/tmp and the
    # demo must work all the same (a clone under /root is the same case).
    root = Path(tempfile.mkdtemp(prefix="llmreg-demo-"))
    root.chmod(0o700)
    home = root / "home"
    try:
        yield home
    finally:
        # The demo leaves its cluster running for the user; the test stops it.
        subprocess.run([sys.executable, "-m", "reconciler", "db", "stop"], env={**os.environ, "LLM_REGISTRY_HOME": str(home)}, capture_output=True, timeout=60)
        from reconciler.embedded import EmbeddedCluster

        cluster_files = EmbeddedCluster(home).pg_dir
        if not cluster_files.is_relative_to(root):
            shutil.rmtree(cluster_files, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


def run_demo(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LLM_REGISTRY_")}
    # Reuse this interpreter's environment instead of building a second virtualenv.
    env.update(LLM_REGISTRY_HOME=str(home), LLM_REGISTRY_VENV=sys.prefix, NO_COLOR="1")
    return subprocess.run(["bash", "scripts/demo.sh", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_demo_runs_the_whole_flow_and_a_second_run_changes_nothing(demo_home: Path) -> None:
    first = run_demo(demo_home, "--reset")
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    for step in ("validate", "db upgrade", "plan", "apply", "list", "audit", "report --html"):
        assert f"$ llm-registry {step}" in out
    page = (demo_home / "registry.html").read_text()
    assert page.count('data-testid="model-row-') == 11 and "demo-openai-key" not in page
    assert "valid, 11 models in 6 files" in out
    assert "Plan: 11 to create, 0 to update, 0 to delete, 0 blocked." in out
    assert "Testing connections of 11 models" in out and "FAIL" not in out
    assert "Apply complete: 11 created, 0 updated, 0 deleted." in out
    assert out.count("No changes. The registry in the database matches the definitions.") == 1
    assert out.count("MODEL_CREATED") == 11 and out.count("MODEL_CONNECTION_TESTED") == 11
    assert "demo-openai-key" not in out + first.stderr
    # The closing hints name a command the user can run as printed (not a bare name off PATH).
    hint = next(line for line in out.splitlines() if "(stop it: " in line)
    command = hint.split("(stop it: ", 1)[1].removesuffix(" db stop).")
    assert os.access(REPO / command, os.X_OK), hint  # from where the demo ran (.venv/bin/... by default)

    second = run_demo(demo_home)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Apply complete" not in second.stdout
    assert second.stdout.count("No changes. The registry in the database matches the definitions.") == 3
