"""Run the command the way a user does, in-process (fast) or as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import pytest
from click.testing import CliRunner

from reconciler.cli import cli


@dataclass(frozen=True)
class CliResult:
    """What the user sees: exit code, standard output, standard error."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout and stderr together, for "never shows X" assertions."""
        return self.stdout + self.stderr


RunCli = Callable[..., CliResult]


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> RunCli:
    """Invoke `llm-registry ARGS` in-process through Click's runner.

    `env` adds environment variables; `cwd` runs in that directory. The exit code is
    the one the console script would return (the group's `main` owns the mapping).
    """

    def run(*args: str, env: Mapping[str, str] | None = None, input: str | None = None, cwd: Path | None = None) -> CliResult:
        runner = CliRunner()
        if cwd is not None:
            monkeypatch.chdir(cwd)
        result = runner.invoke(cli, list(args), env=dict(env or {}), input=input, catch_exceptions=False, prog_name="llm-registry")
        return CliResult(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def run_subprocess() -> RunCli:
    """Invoke `python -m reconciler ARGS` as a real process (for startup and signal behaviour)."""

    def run(*args: str, env: Mapping[str, str] | None = None, input: str | None = None, cwd: Path | None = None, timeout: float = 120) -> CliResult:
        full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
        completed = subprocess.run(
            [sys.executable, "-m", "reconciler", *args],
            capture_output=True, text=True, env=full_env, input=input, cwd=cwd, timeout=timeout,
        )
        return CliResult(completed.returncode, completed.stdout, completed.stderr)

    return run
