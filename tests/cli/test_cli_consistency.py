"""The CLI's shared conventions: environment variables, -C, --quiet, JSON results and JSON errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.applyutil import APPLY_ENV, audit_events, models_by_name, write_story_registry
from tests.factories import CANARY_KEY, ner_model, write_registry_file
from tests.fakes.provider import FakeProvider


def _valid_registry(directory: Path) -> Path:
    write_registry_file(directory, [ner_model(name="ner", default=True)])
    return directory


# --- LLM_REGISTRY_<OPTION> ----------------------------------------------------------------------


def test_every_option_reads_its_environment_variable_and_the_command_line_wins(run_cli: Any, tmp_path: Path) -> None:
    _valid_registry(tmp_path / "registry.d")
    directory = str(tmp_path / "registry.d")
    generic = run_cli("validate", directory, env={"LLM_REGISTRY_FORMAT": "json"})
    assert generic.exit_code == 0 and json.loads(generic.stdout) == []
    specific = run_cli("validate", directory, env={"LLM_REGISTRY_FORMAT": "github", "LLM_REGISTRY_VALIDATE_FORMAT": "json"})
    assert json.loads(specific.stdout) == []
    explicit = run_cli("validate", directory, "--format", "text", env={"LLM_REGISTRY_VALIDATE_FORMAT": "json"})
    assert explicit.stdout.startswith(f"{directory}: valid, 1 model in 1 file")


def test_environment_reads_the_commands_variable_before_the_shared_one(run_cli: Any, tmp_path: Path, database_url: str) -> None:
    directory = str(_valid_registry(tmp_path / "registry.d"))
    shared = run_cli("plan", directory, "--database-url", database_url, env={"LLM_REGISTRY_ENVIRONMENT": "staging"})
    assert "environment staging," in shared.stdout.splitlines()[0]
    both = {"LLM_REGISTRY_ENVIRONMENT": "staging", "LLM_REGISTRY_PLAN_ENVIRONMENT": "production"}
    specific = run_cli("plan", directory, "--database-url", database_url, env=both)
    assert "environment production," in specific.stdout.splitlines()[0]
    assert "LLM_REGISTRY_APPLY_ENVIRONMENT" in run_cli("apply", "--help").stdout


@pytest.mark.parametrize("command", ["apply", "test"])
@pytest.mark.parametrize(("option", "value"), [("--concurrency", "0"), ("--concurrency", "257"), ("--timeout", "0"), ("--timeout", "3601")])
def test_commands_that_run_connection_tests_take_the_same_bounds(run_cli: Any, tmp_path: Path, command: str, option: str, value: str) -> None:
    result = run_cli(command, str(_valid_registry(tmp_path / "registry.d")), option, value)
    assert result.exit_code == 1
    assert f"Invalid value for '{option}'" in result.stderr


def test_help_names_each_options_variables(run_cli: Any) -> None:
    result = run_cli("apply", "--help")
    assert "LLM_REGISTRY_APPLY_LOCK_TIMEOUT" in result.stdout and "LLM_REGISTRY_LOCK_TIMEOUT" in result.stdout
    assert "LLM_REGISTRY_DATABASE_URL" in result.stdout  # its own rules: see docs/database.md


def test_a_bad_value_from_the_environment_names_the_option(run_cli: Any, tmp_path: Path) -> None:
    result = run_cli("test", str(tmp_path), env={"LLM_REGISTRY_CONCURRENCY": "0"})
    assert result.exit_code == 1
    assert "--concurrency" in result.stderr


# --- -C DIR -------------------------------------------------------------------------------------


def test_dash_c_runs_as_if_started_in_dir(run_cli: Any, tmp_path: Path) -> None:
    project = tmp_path / "project"
    _valid_registry(project / "registry.d")
    result = run_cli("-C", str(project), "validate")
    assert result.exit_code == 0, result.output
    assert result.stdout == "registry.d: valid, 1 model in 1 file\n"
    assert Path.cwd() != project  # the caller's directory is left as it was


def test_dash_c_moves_the_embedded_default_too(run_cli: Any, tmp_path: Path) -> None:
    result = run_cli("-C", str(tmp_path), "db", "stop", env={"LLM_REGISTRY_HOME": ""})
    assert result.exit_code == 0
    assert result.stdout == f"No embedded cluster in {tmp_path / '.llm-registry'}.\n"


def test_dash_c_to_a_missing_directory_is_an_error(run_cli: Any, tmp_path: Path) -> None:
    result = run_cli("-C", str(tmp_path / "nowhere"), "validate")
    assert result.exit_code == 1
    assert "cannot change to" in result.stderr


# --- --quiet ------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["before", "after", "env"])
def test_quiet_keeps_results_and_errors_only(run_cli: Any, tmp_path: Path, where: str) -> None:
    directory = str(_valid_registry(tmp_path / "registry.d"))
    args = {"before": ["--quiet", "validate", directory], "after": ["validate", directory, "-q"], "env": ["validate", directory]}[where]
    result = run_cli(*args, env={"LLM_REGISTRY_QUIET": "1"} if where == "env" else {})
    assert result.exit_code == 0 and result.output == ""
    broken = tmp_path / "broken"
    write_registry_file(broken, [ner_model(name="Bad Name")])
    failed = run_cli("--quiet", "validate", str(broken))
    assert failed.exit_code == 1 and "not a valid model name" in failed.stderr


# --- JSON: results and errors -------------------------------------------------------------------


def test_with_format_json_an_invalid_registry_is_a_json_error_with_every_diagnostic(run_cli: Any, tmp_path: Path, database_url: str) -> None:
    broken = tmp_path / "broken"
    path = write_registry_file(broken, [ner_model(name="Bad Name")])
    result = run_cli("plan", str(broken), "--database-url", database_url, "--format", "json")
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "error" and error["exit_code"] == 1
    assert error["message"].startswith("invalid registry: 1 error in ")
    (diagnostic,) = [d for d in error["diagnostics"] if d["severity"] == "error"]
    assert diagnostic["file"] == str(path) and diagnostic["code"] == "bad-name" and diagnostic["line"] == 4


def test_with_format_json_a_usage_error_is_a_json_error(run_cli: Any) -> None:
    result = run_cli("list", "--format", "json", "--no-such-option")
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error == {"kind": "usage", "message": "No such option '--no-such-option'.", "exit_code": 1, "diagnostics": []}


def test_with_format_json_a_database_error_is_a_json_error(run_cli: Any) -> None:
    result = run_cli("list", "--format", "json", "--database-url", "postgresql://nobody@127.0.0.1:1/none")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["kind"] == "error"


def test_db_current_as_json(run_cli: Any, database_url: str) -> None:
    from reconciler import db

    result = run_cli("db", "current", "--database-url", database_url, "--format", "json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["revision"] == document["head"] == db.head_revision() and document["at_head"] is True
    assert "@" in document["database"] or "127.0.0.1" in document["database"]


def test_apply_as_json_reports_actions_tests_run_and_audit_events(
    run_cli: Any, tmp_path: Path, fake_provider: FakeProvider, database_url: str, engine: Any
) -> None:
    directory = write_story_registry(tmp_path / "registry.d", fake_provider)
    result = run_cli("apply", str(directory), "--database-url", database_url, "--auto-approve", "--format", "json", env=APPLY_ENV)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)  # stdout holds the JSON and nothing else
    assert document["committed"] is True and document["dry_run"] is False
    assert document["summary"] == {"create": 2, "update": 0, "delete": 0}
    assert [a["name"] for a in document["plan"]["actions"]] == ["gpt-4o-mini", "nomic-embed"]
    assert sorted((t["name"], t["status"]) for t in document["connection_tests"]) == [("gpt-4o-mini", "ok"), ("nomic-embed", "ok")]
    stored = audit_events(engine)
    assert {row["run_id"] for row in stored} == {document["run_id"]}
    assert sorted(e["event_type"] for e in document["audit_events"]) == sorted(row["event_type"] for row in stored)
    assert "llm-registry will perform the following actions:" in result.stderr  # people still see the plan
    assert CANARY_KEY not in result.output


def test_apply_as_json_with_a_failed_test_says_so_in_json(
    run_cli: Any, tmp_path: Path, fake_provider: FakeProvider, database_url: str, engine: Any
) -> None:
    directory = write_story_registry(tmp_path / "registry.d", fake_provider)
    fake_provider.set_model("gpt-4o-mini", status=429, api_key=CANARY_KEY)
    result = run_cli("apply", str(directory), "--database-url", database_url, "--auto-approve", "--format", "json", env=APPLY_ENV)
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["committed"] is False and document["error"]["message"].startswith("1 connection test failed (gpt-4o-mini)")
    assert {t["name"]: t["ok"] for t in document["connection_tests"]} == {"gpt-4o-mini": False, "nomic-embed": True}
    assert models_by_name(engine) == {}


def test_quiet_apply_with_changes_prints_nothing_and_writes_everything(
    run_cli: Any, tmp_path: Path, fake_provider: FakeProvider, database_url: str, engine: Any
) -> None:
    directory = write_story_registry(tmp_path / "registry.d", fake_provider)
    result = run_cli("apply", str(directory), "--database-url", database_url, "--auto-approve", "--quiet", env=APPLY_ENV)
    assert result.exit_code == 0
    assert result.stdout == ""  # no plan, no test lines, no "Apply complete" (docs/cli.md, -q)
    assert [line for line in result.stderr.splitlines() if ": warning: " not in line] == []
    assert sorted(models_by_name(engine)) == ["gpt-4o-mini", "nomic-embed"]
    assert sorted(e["event_type"] for e in audit_events(engine) if e["event_type"] == "MODEL_CREATED") == ["MODEL_CREATED"] * 2


def test_apply_shows_a_line_before_loading_provider_clients(
    run_cli: Any, tmp_path: Path, fake_provider: FakeProvider, database_url: str
) -> None:
    directory = write_story_registry(tmp_path / "registry.d", fake_provider)
    result = run_cli("apply", str(directory), "--database-url", database_url, "--auto-approve", env=APPLY_ENV)
    lines = result.stdout.splitlines()
    loading = lines.index("  loading provider clients...")
    assert lines[loading - 1].startswith("Testing connections of 2 models")
    assert sorted(line.split()[1] for line in lines[loading + 1 : loading + 3]) == ["gpt-4o-mini", "nomic-embed"]
    quiet = run_cli("apply", str(directory), "--database-url", database_url, "--auto-approve", "--quiet", env=APPLY_ENV)
    assert quiet.exit_code == 0 and quiet.stdout == ""
    assert [line for line in quiet.stderr.splitlines() if ": warning: " not in line] == []
