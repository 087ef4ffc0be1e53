"""`plan` output as a user and a CI job see it: formats, colour, plan files, secrets."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.commands.plan import use_colour
from reconciler.render import MARKDOWN_PART_SEPARATOR
from tests.cli.applyutil import APPLY_ENV
from tests.factories import CANARY_KEY


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def plan(run_cli: Any, directory: Path, url: str, *args: str) -> Any:
    return run_cli("plan", str(directory), "--database-url", url, *args, env=APPLY_ENV)


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_colour(_Terminal()) is True
    assert use_colour(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_colour(_Terminal()) is False


def test_text_plan_has_no_escape_codes_when_piped(run_cli: Any, registry_dir: Path, database_url: str) -> None:
    result = plan(run_cli, registry_dir, database_url)
    assert result.exit_code == 0 and "\x1b[" not in result.stdout
    assert result.stdout.rstrip().endswith("Plan: 2 to create, 0 to update, 0 to delete, 0 blocked.")


def test_json_plan_is_valid_json_with_counts_and_no_secret(run_cli: Any, registry_dir: Path, database_url: str) -> None:
    result = plan(run_cli, registry_dir, database_url, "--format", "json")
    data = json.loads(result.stdout)
    assert data["format_version"] == 1 and data["summary"]["create"] == 2
    key_changes = [c for a in data["actions"] for c in a["changes"] if c["field"] == "api_key"]
    assert key_changes == [{"field": "api_key", "before": None, "after": "(set)", "reference": "${env:OPENAI_API_KEY}"}]
    assert CANARY_KEY not in result.output


def test_markdown_plan_for_a_pr_comment(run_cli: Any, registry_dir: Path, database_url: str) -> None:
    result = plan(run_cli, registry_dir, database_url, "--format", "markdown")
    assert result.stdout.startswith("### llm-registry plan")
    assert "**Plan: 2 to create, 0 to update, 0 to delete, 0 blocked.**" in result.stdout
    assert MARKDOWN_PART_SEPARATOR not in result.stdout


def test_github_annotations(run_cli: Any, registry_dir: Path, database_url: str) -> None:
    result = plan(run_cli, registry_dir, database_url, "--format", "github")
    assert result.stdout.strip().splitlines()[-1] == "::notice title=llm-registry plan::Plan: 2 to create, 0 to update, 0 to delete, 0 blocked."


def test_plan_out_writes_a_plan_file_without_secrets(run_cli: Any, registry_dir: Path, database_url: str, tmp_path: Path) -> None:
    planfile = tmp_path / "out" / "registry.plan"
    result = plan(run_cli, registry_dir, database_url, "--out", str(planfile))
    assert result.exit_code == 0
    assert f"Saved the plan to {planfile}" in result.stdout
    saved = json.loads(planfile.read_text())
    assert saved["kind"] == "llm-registry-plan" and len(saved["state_fingerprint"]) == 64
    # docs/plan-format.md: what a reader of the file may rely on (fields may be added)
    assert saved["format_version"] == 1
    assert {"created_at", "directory", "definitions", "spec_fingerprint", "keys", "allow_delete_all", "target", "plan", "mac"} <= set(saved)
    assert {d["definition"]["name"] for d in saved["definitions"]} == {"nomic-embed", "gpt-4o-mini"}
    text = planfile.read_text()
    assert CANARY_KEY not in text and APPLY_ENV["LLM_REGISTRY_ENCRYPTION_KEY"] not in text


def test_plan_refuses_a_database_that_is_not_migrated(run_cli: Any, registry_dir: Path, unmigrated_database_url: str) -> None:
    result = plan(run_cli, registry_dir, unmigrated_database_url)
    assert result.exit_code == 1
    assert "llm-registry db upgrade" in result.stderr


def test_plan_reports_an_unreachable_database_cleanly(run_cli: Any, registry_dir: Path) -> None:
    result = plan(run_cli, registry_dir, "postgresql://nobody:hunter2@127.0.0.1:1/registry")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("error: cannot connect to the database postgresql+psycopg://nobody:***@127.0.0.1:1/registry")
    assert "hunter2" not in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("command", ["plan", "list", "export"])
def test_the_reading_commands_import_neither_litellm_nor_sqlalchemy(
    registry_dir: Path, database_url: str, tmp_path: Path, command: str
) -> None:
    """LiteLLM costs seconds to import: only connection tests may load it (issue 5). SQLAlchemy
    costs as much CPU as planning thousands of models: plan, list and export read through
    psycopg alone (db.snapshot)."""
    import os
    import subprocess
    import sys

    arguments = {"plan": [str(registry_dir)], "list": [], "export": ["--out", str(tmp_path / "exported")]}[command]
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "reconciler", command, *arguments, "--database-url", database_url],
        capture_output=True, text=True, env={**os.environ, **APPLY_ENV}, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert command != "plan" or "Plan: 2 to create" in completed.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in completed.stderr.splitlines() if line.startswith("import time:")]
    assert "psycopg" in imported and "reconciler.state" in imported  # the check does see the imports of the run
    assert not [name for name in imported if name.split(".")[0] in ("litellm", "sqlalchemy", "alembic")]
