"""Run the command the way a user does, in-process (fast) or as a real subprocess."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

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

# The environment of a developer's shell without a database URL: nothing says CI, so a
# command falls back to the embedded default. None unsets a variable (in `env=` of both
# runners), for the suite itself runs under CI=true in CI.
LOCAL_NO_URL: dict[str, str | None] = {"LLM_REGISTRY_DATABASE_URL": None, "CI": None, "GITHUB_ACTIONS": None}


def subprocess_env(env: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """os.environ with `env` laid over it; a None value removes the variable."""
    merged: dict[str, str | None] = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return {key: value for key, value in merged.items() if value is not None}


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> RunCli:
    """Invoke `llm-registry ARGS` in-process through Click's runner.

    `env` adds environment variables (None removes one); `cwd` runs in that directory. The exit code is
    the one the console script would return (the group's `main` owns the mapping).
    """

    def run(*args: str, env: Mapping[str, str | None] | None = None, input: str | None = None, cwd: Path | None = None) -> CliResult:
        runner = CliRunner()
        if cwd is not None:
            monkeypatch.chdir(cwd)
        result = runner.invoke(cli, list(args), env=dict(env or {}), input=input, catch_exceptions=False, prog_name="llm-registry")
        return CliResult(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def registry_dir(tmp_path: Path, fake_provider: Any) -> Path:
    """registry.d holding the story's two models (tests/cli/applyutil.story_models) on the fake provider."""
    from tests.cli.applyutil import write_story_registry

    return write_story_registry(tmp_path / "registry.d", fake_provider)


@pytest.fixture
def run_subprocess() -> RunCli:
    """Invoke `python -m reconciler ARGS` as a real process (for startup and signal behaviour)."""

    def run(*args: str, env: Mapping[str, str | None] | None = None, input: str | None = None, cwd: Path | None = None, timeout: float = 120) -> CliResult:
        full_env = subprocess_env(env)
        completed = subprocess.run(
            [sys.executable, "-m", "reconciler", *args],
            capture_output=True, text=True, env=full_env, input=input, cwd=cwd, timeout=timeout,
        )
        return CliResult(completed.returncode, completed.stdout, completed.stderr)

    return run


# Screenshots the browser tests kept (tests/cli/test_page_browser.py): named at the end of
# the run, so that a person, or CI's artifact upload, finds them.
SCREENSHOTS: list[Path] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say where the browser tests' screenshots are."""
    if SCREENSHOTS:
        directory = SCREENSHOTS[0].parent
        terminalreporter.write_line(f"browser screenshots: {directory}/ ({len(set(SCREENSHOTS))} pages)")


SERVER_LOGS = "/var/log/postgresql/postgresql-*.log"


@pytest.fixture
def server_log() -> Iterator[Any]:
    """A reader of what the PostgreSQL server logs from now on (None when no log is readable here)."""
    paths = [p for p in glob.glob(SERVER_LOGS) if os.access(p, os.R_OK)]
    offsets = {p: os.path.getsize(p) for p in paths}

    def appended() -> str:
        text = ""
        for path, offset in offsets.items():
            with open(path, "rb") as handle:
                handle.seek(offset)
                text += handle.read().decode("utf-8", "replace")
        return text

    yield appended if paths else None


def logged_url(database_url: str) -> str:
    """The database, with every statement of the command's sessions in the server log (log_statement=all)."""
    from sqlalchemy.engine import make_url

    return make_url(database_url).update_query_dict({"options": "-c log_statement=all"}).render_as_string(hide_password=False)
