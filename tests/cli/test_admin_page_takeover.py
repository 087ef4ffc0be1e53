"""The whole path from the story's admin page to llm-registry, as a team runs it.

The admin page's database is built with plain SQL (tests/admin_page.py: its DDL,
rows with NULL parameters, keys from `pgp_sym_encrypt`, the KB application's KBs).
Then: `db upgrade`, `export`, `plan` (adoption only), `apply`, `plan` (no changes),
and all along the KB application's query answers exactly as before.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from reconciler import db
from reconciler.export import key_variable
from reconciler.secrets import ENCRYPTION_KEY_ENV
from tests.admin_page import (
    ADMIN_PAGE_KEYS,
    ADMIN_PAGE_PASSPHRASE,
    create_admin_page_schema,
    insert_admin_page_model,
    kb_application_view,
    populate_admin_page,
    story_rows,
)
from tests.cli.conftest import RunCli, logged_url
from tests.fakes.provider import FakeProvider

pytestmark = pytest.mark.db

ENV = {ENCRYPTION_KEY_ENV: ADMIN_PAGE_PASSPHRASE, "NO_COLOR": "1"}


@pytest.fixture
def admin_page_db(unmigrated_database_url: str, fake_provider: FakeProvider) -> Iterator[Engine]:
    """The admin page's database, its models served by the fake provider."""
    engine = db.create_engine(unmigrated_database_url)
    with engine.begin() as connection:
        create_admin_page_schema(connection)
        populate_admin_page(connection, fake_provider.url)
    fake_provider.set_model("nomic-embed-text", dimensions=768)
    fake_provider.set_model("text-embedding-3-small", dimensions=1536, api_key=ADMIN_PAGE_KEYS["openai-small"])
    fake_provider.set_model("gpt-4o-mini", api_key=ADMIN_PAGE_KEYS["gpt-4o-mini"])
    fake_provider.set_model("claude-3-5-sonnet", api_key=ADMIN_PAGE_KEYS["claude-sonnet"])
    try:
        yield engine
    finally:
        engine.dispose()


# What `export` names each key's variable (reconciler.export.key_variable), and the keys to put there.
KEY_ENV = {key_variable(name): key for name, key in ADMIN_PAGE_KEYS.items()}


def export(run_cli: RunCli, url: str, directory: Path) -> Any:
    """`llm-registry export --out DIRECTORY` on the database, as a team adopting it runs it."""
    result = run_cli("export", "--database-url", url, "--out", str(directory), env=ENV)
    assert result.exit_code == 0, result.output
    return result


def without_updated_at(row: dict[str, Any]) -> dict[str, Any]:
    return {column: value for column, value in row.items() if column != "updated_at"}


def assert_no_key_in(output: str) -> None:
    for key in ADMIN_PAGE_KEYS.values():
        assert key not in output
    assert ADMIN_PAGE_PASSPHRASE not in output


def test_db_upgrade_export_plan_apply_plan_keeps_the_kb_applications_answers(
    run_cli: RunCli, admin_page_db: Engine, unmigrated_database_url: str, tmp_path: Path, fake_provider: FakeProvider,
    server_log: Any,
) -> None:
    url = logged_url(unmigrated_database_url)  # every statement of the commands in the server log
    with admin_page_db.connect() as connection:
        kbs_before, rows_before = kb_application_view(connection), story_rows(connection)
    assert len(kbs_before) == 5 and {row["api_key"] for row in kbs_before} == {None, *ADMIN_PAGE_KEYS.values()}

    upgraded = run_cli("db", "upgrade", "--database-url", url, env=ENV)
    assert upgraded.exit_code == 0, upgraded.output
    assert f"from (empty) to {db.head_revision()}" in upgraded.stdout
    assert "Took over the existing llm_models table with its 5 model(s)" in upgraded.stdout
    assert 'Fingerprinted the stored API keys of 3 model(s): "claude-sonnet", "gpt-4o-mini", "openai-small".' in upgraded.stdout
    assert "without fingerprint" not in upgraded.output

    registry = tmp_path / "registry.d"
    exported = export(run_cli, url, registry)
    for variable in KEY_ENV:
        assert variable in exported.output  # the variables to set, named
    env = {**ENV, **KEY_ENV}

    planned = run_cli("plan", str(registry), "--database-url", url, "--format", "json", "--detailed-exitcode", env=env)
    assert planned.exit_code == 2, planned.output
    plan = json.loads(planned.stdout)
    assert plan["summary"]["blocked"] == 0 and plan["refusals"] == [] and plan["unmanaged"] == []
    assert [(a["action"], a["name"], a["adopt"]) for a in plan["actions"]] == [
        ("update", name, True) for name in ("claude-sonnet", "gliner", "gpt-4o-mini", "nomic-embed", "openai-small")
    ]
    for action in plan["actions"]:  # adoption only: no field changes
        assert action["changes"] == [{"field": "managed_by", "before": None, "after": "llm-registry"}], action

    applied = run_cli(
        "apply", str(registry), "--database-url", url, "--auto-approve", "--actor", "alice", "--revision", "abc123", env=env
    )
    assert applied.exit_code == 0, applied.output
    assert "Apply complete: 0 created, 5 updated, 0 deleted." in applied.stdout

    again = run_cli("plan", str(registry), "--database-url", url, "--detailed-exitcode", env=env)
    assert again.exit_code == 0, again.output
    assert again.stdout.strip().endswith("\n\nNo changes. The registry in the database matches the definitions.")

    with admin_page_db.connect() as connection:
        assert kb_application_view(connection) == kbs_before
        # NULL parameters stay NULL, keys decrypt the same; only updated_at moved (adoption is a change)
        assert [without_updated_at(row) for row in story_rows(connection)] == [without_updated_at(row) for row in rows_before]
        assert connection.execute(text("SELECT DISTINCT managed_by FROM llm_models")).scalars().all() == ["llm-registry"]
        adopted = connection.execute(
            text("SELECT model_name, details FROM registry_audit_events WHERE event_type = 'MODEL_UPDATED' ORDER BY model_name")
        ).all()
    assert [name for name, _details in adopted] == ["claude-sonnet", "gliner", "gpt-4o-mini", "nomic-embed", "openai-small"]
    for _name, details in adopted:
        assert details["adopted"] is True
        assert details["changes"] == {"managed_by": {"before": None, "after": "llm-registry"}}
    for result in (upgraded, exported, planned, applied, again):
        assert_no_key_in(result.output)
    if server_log is None:
        pytest.skip("no readable PostgreSQL server log here: checked outputs and tables only")
    logged = server_log()
    assert "api_key_fingerprint" in logged, "log_statement=all was in effect"
    assert_no_key_in(logged)  # db upgrade decrypted the keys to fingerprint them: in the client


def test_without_the_passphrase_upgrade_says_which_keys_wait_and_plan_blocks_their_adoption(
    run_cli: RunCli, admin_page_db: Engine, unmigrated_database_url: str, tmp_path: Path, fake_provider: FakeProvider
) -> None:
    url = unmigrated_database_url
    upgraded = run_cli("db", "upgrade", "--database-url", url, env={"NO_COLOR": "1"})
    assert upgraded.exit_code == 0, upgraded.output
    assert (
        '3 model(s) have a stored API key without fingerprint: "claude-sonnet", "gpt-4o-mini", "openai-small". '
        f"Run `llm-registry db upgrade` again with {ENCRYPTION_KEY_ENV} set" in upgraded.stderr
    )

    registry = tmp_path / "registry.d"
    export(run_cli, url, registry)
    planned = run_cli("plan", str(registry), "--database-url", url, "--format", "json", env={**ENV, **KEY_ENV})
    assert planned.exit_code == 3, planned.output
    blocked = {a["name"]: a["blocked_reasons"] for a in json.loads(planned.stdout)["actions"] if a["blocked"]}
    assert sorted(blocked) == ["claude-sonnet", "gpt-4o-mini", "openai-small"]
    assert all("no fingerprint yet" in reasons[0] and "llm-registry db upgrade" in reasons[0] for reasons in blocked.values())

    filled = run_cli("db", "upgrade", "--database-url", url, env=ENV)
    assert filled.exit_code == 0, filled.output
    assert "nothing to do" in filled.stdout and "Fingerprinted the stored API keys of 3 model(s)" in filled.stdout
    replanned = run_cli("plan", str(registry), "--database-url", url, "--format", "json", env={**ENV, **KEY_ENV})
    assert replanned.exit_code == 0 and json.loads(replanned.stdout)["summary"]["blocked"] == 0, replanned.output


def test_rows_that_break_the_rules_stop_db_upgrade_with_exit_1_and_their_names(
    run_cli: RunCli, admin_page_db: Engine, unmigrated_database_url: str
) -> None:
    with admin_page_db.begin() as connection:
        insert_admin_page_model(
            connection, "claude-embed", model_type="embedding", provider="anthropic", model_id="x", dimensions=8
        )
        insert_admin_page_model(
            connection, "second-default", model_type="generation", provider="ollama", model_id="y",
            api_endpoint="http://127.0.0.1:1", context_window=8, is_default=True,
        )  # fmt: skip
    result = run_cli("db", "upgrade", "--database-url", unmigrated_database_url, env=ENV)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: the existing llm_models table")
    assert '  - "claude-embed": anthropic serves no embedding models (model_type = "embedding", provider = "anthropic")' in result.stderr
    assert '  - "gpt-4o-mini", "second-default": 2 default generation models: at most one default per type' in result.stderr
    assert "Traceback" not in result.output
    current = run_cli("db", "current", "--database-url", unmigrated_database_url)
    assert "(none)" in current.stdout


@pytest.mark.parametrize("args", [("list",), ("plan", "registry.d")])
def test_before_db_upgrade_commands_say_the_table_can_be_taken_over(
    run_cli: RunCli, admin_page_db: Engine, unmigrated_database_url: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    (tmp_path / "registry.d").mkdir()
    result = run_cli(*args, "--database-url", unmigrated_database_url, env=ENV, cwd=tmp_path)
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        "error: the database has an llm_models table (the story's admin page's, it seems) but no llm-registry "
        "schema yet: run `llm-registry db upgrade` to take it over in place (it checks the rows first and "
        "changes nothing if one breaks a rule)"
    )
