"""Text from the database is data: names made by hand with escape sequences, newlines and
workflow commands reach no terminal and no CI log as commands, through every command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.applyutil import APPLY_ENV
from tests.dbutil import insert_knowledge_base, insert_model
from tests.factories import embedding_model, write_registry_file

pytestmark = pytest.mark.db

HOSTILE = "evil\x1b[2J\x1b]0;owned\x07\r\n::error file=x::injected\n::add-mask::\u202e##[warning]x"


def _command_lines(output: str) -> list[str]:
    """Lines a GitHub runner would take as workflow commands."""
    return [line for line in output.splitlines() if line.lstrip().startswith("::") or "##[" in line]


def _assert_inert(output: str, *, allowed_commands: int = 0) -> None:
    assert "\x1b" not in output and "\r" not in output and "\x07" not in output and "\u202e" not in output
    assert len(_command_lines(output)) == allowed_commands, _command_lines(output)


@pytest.fixture
def hostile_rows(connection: Any) -> dict[str, str]:
    """A managed row and a hand-made row named by an attacker, and a KB using the managed one."""
    managed = insert_model(connection, name=HOSTILE + "-managed", description=HOSTILE)
    hand = insert_model(connection, name=HOSTILE + "-hand", managed_by=None)
    insert_knowledge_base(connection, name=HOSTILE + "-kb", embedding_model_id=managed)
    connection.commit()
    return {"managed": managed, "hand": hand}


@pytest.mark.parametrize("output_format", ["text", "markdown", "github", "json"])
def test_plan_shows_hostile_names_as_text(run_cli: Any, hostile_rows: Any, database_url: str, tmp_path: Path, output_format: str) -> None:
    directory = write_registry_file(tmp_path / "r", [embedding_model(name="fresh", default=True)]).parent
    result = run_cli("plan", str(directory), "--database-url", database_url, "--format", output_format, env=APPLY_ENV)
    assert result.exit_code == 3, result.output  # the managed row's delete is blocked: a KB uses it
    # GitHub format: every line is one of the renderer's own commands, data escaped inside it.
    expected = len(result.stdout.splitlines()) if output_format == "github" else 0
    _assert_inert(result.output, allowed_commands=expected)
    if output_format == "github":
        assert all(line.split("::")[1].split(" ")[0] in ("error", "warning", "notice") for line in result.stdout.splitlines())
        assert "injected" in result.stdout
    else:
        assert "injected" in result.stdout
    if output_format == "json":
        names = {a["name"] for a in json.loads(result.stdout)["actions"]}
        assert HOSTILE + "-managed" in names  # the data itself is intact for tools


@pytest.mark.parametrize("output_format", ["table", "json"])
def test_list_shows_hostile_names_as_text(run_cli: Any, hostile_rows: Any, database_url: str, output_format: str) -> None:
    result = run_cli("list", "--database-url", database_url, "--format", output_format)
    assert result.exit_code == 0, result.output
    _assert_inert(result.output)
    assert "injected" in result.stdout


def test_audit_shows_hostile_names_as_text(run_cli: Any, connection: Any, database_url: str) -> None:
    from reconciler.audit import AuditEvent, write_audit_events

    write_audit_events(connection, [AuditEvent("MODEL_DELETED", HOSTILE, None, {"knowledge_bases": [HOSTILE]})],
                       run_id="r-1", actor=HOSTILE, source_revision=HOSTILE)
    connection.commit()
    for output_format in ("table", "json"):
        result = run_cli("audit", "--database-url", database_url, "--format", output_format)
        assert result.exit_code == 0, result.output
        _assert_inert(result.output)


def test_test_from_db_shows_hostile_names_as_text(run_cli: Any, connection: Any, database_url: str, fake_provider: Any) -> None:
    insert_model(connection, name=HOSTILE, model_id="m", api_endpoint=fake_provider.url, dimensions=8)
    connection.commit()
    fake_provider.set_model("m", status=500)
    result = run_cli("test", "--from-db", "--database-url", database_url, env=APPLY_ENV)
    assert result.exit_code == 1
    _assert_inert(result.output)
    assert "injected" in result.stdout


def test_error_messages_escape_names_from_the_database(run_cli: Any, connection: Any, database_url: str) -> None:
    insert_model(connection, name=HOSTILE, managed_by=None)
    connection.commit()
    result = run_cli("test", "--from-db", "--database-url", database_url, "--model", "nope", env=APPLY_ENV)
    assert result.exit_code == 1
    assert "error: unknown model in the database: nope; known: evil\\x1b[2J" in result.stderr
    _assert_inert(result.output)


def test_credentials_in_a_hand_made_endpoint_are_never_repeated(
    run_cli: Any, connection: Any, database_url: str, fake_provider: Any, tmp_path: Path
) -> None:
    secret = "hand-made-password-do-not-show"
    insert_model(connection, name="adopted", managed_by=None, model_id="m", api_endpoint=f"http://admin:{secret}@{fake_provider.url[7:]}")
    connection.commit()
    fake_provider.set_model("m", dimensions=8)
    directory = write_registry_file(
        tmp_path / "r", [embedding_model(name="adopted", model_id="m", api_endpoint=fake_provider.url, default=True, parameters={"dimensions": 8})]
    ).parent
    outputs = [run_cli("plan", str(directory), "--database-url", database_url, "--format", f, env=APPLY_ENV) for f in ("text", "json", "markdown")]
    assert "http://***@127.0.0.1" in outputs[0].stdout  # the change is shown, without the credentials
    outputs.append(run_cli("list", "--database-url", database_url, "--format", "json"))
    outputs.append(run_cli("show", "adopted", "--database-url", database_url))
    outputs.append(run_cli("export", "--database-url", database_url, "--out", str(tmp_path / "exported")))
    applied = run_cli("apply", str(directory), "--database-url", database_url, "--auto-approve", env=APPLY_ENV)
    assert applied.exit_code == 0, applied.output
    outputs += [applied, run_cli("audit", "--database-url", database_url, "--format", "json")]
    assert all(secret not in result.output for result in outputs), [result.output for result in outputs if secret in result.output]
    assert all(secret not in path.read_text() for path in (tmp_path / "exported").rglob("*.yaml"))
    from sqlalchemy import text

    assert secret not in str(connection.execute(text("SELECT details FROM registry_audit_events")).all())
