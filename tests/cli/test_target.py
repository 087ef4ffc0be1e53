"""Every plan names its target (database, environment, revision); a plan file applies only to its own database and environment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy.engine import make_url

from tests.cli.applyutil import APPLY_ENV, audit_events, models_by_name, snapshot

pytestmark = pytest.mark.db

REVISION = "fedcba9876543210fedcba9876543210fedcba98"
# A password the test server (trust authentication) accepts and ignores: it must never be shown.
PASSWORD = "hunter2-canary-password"


def with_password(url: str) -> str:
    return make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)


def shown(url: str) -> str:
    parsed = make_url(url)
    return f"{parsed.username}@{parsed.host}:{parsed.port}/{parsed.database}"


def test_a_text_plan_names_database_environment_and_revision(run_cli: Any, registry_dir: Path, database_url: str) -> None:
    result = run_cli(
        "plan", str(registry_dir), "--database-url", with_password(database_url), "--environment", "staging",
        env={**APPLY_ENV, "GITHUB_SHA": REVISION},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"Target: database {shown(database_url)}, environment staging, revision fedcba987654"
    assert PASSWORD not in result.output


def test_the_environment_may_come_from_its_variable(run_cli: Any, registry_dir: Path, database_url: str) -> None:
    result = run_cli("plan", str(registry_dir), "--database-url", database_url, env={**APPLY_ENV, "LLM_REGISTRY_ENVIRONMENT": "production"})
    assert ", environment production, " in result.stdout.splitlines()[0]


def test_markdown_and_json_plans_name_the_target(run_cli: Any, registry_dir: Path, database_url: str) -> None:
    env = {**APPLY_ENV, "GITHUB_SHA": REVISION}
    url = with_password(database_url)
    markdown = run_cli("plan", str(registry_dir), "--database-url", url, "--format", "markdown", "--environment", "prod", env=env)
    shown_in_markdown = shown(database_url).replace("@", "&#64;")  # no @mention (render._md_escape)
    assert f"Database <code>{shown_in_markdown}</code> · environment <code>prod</code> · revision <code>fedcba987654</code>" in markdown.stdout
    document = json.loads(run_cli("plan", str(registry_dir), "--database-url", url, "--format", "json", "--environment", "prod", env=env).stdout)
    assert document["target"] == {"database": shown(database_url), "environment": "prod", "revision": REVISION}
    assert PASSWORD not in markdown.output + json.dumps(document)


def test_apply_names_the_target_in_the_plan_and_the_prompt(
    run_cli: Any, registry_dir: Path, database_url: str, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("reconciler.commands.apply._stdin_is_terminal", lambda: True)
    result = run_cli(
        "apply", str(registry_dir), "--database-url", with_password(database_url), "--environment", "production",
        env={**APPLY_ENV, "GITHUB_SHA": REVISION}, input="no\n",
    )  # fmt: skip
    assert result.exit_code == 1, result.output  # declined
    assert f"Target: database {shown(database_url)}, environment production, revision fedcba987654" in result.stdout
    assert f"Do you want to apply these changes to {shown(database_url)} (environment production)?" in result.stdout
    assert PASSWORD not in result.output
    assert models_by_name(engine) == {}


def _second_database(run_cli: Any, unmigrated_database_url: str) -> str:
    upgraded = run_cli("db", "upgrade", "--database-url", unmigrated_database_url)
    assert upgraded.exit_code == 0, upgraded.output
    return unmigrated_database_url


def test_a_plan_file_is_refused_on_another_database_even_with_an_identical_state(
    run_cli: Any, registry_dir: Path, database_url: str, unmigrated_database_url: str, tmp_path: Path
) -> None:
    other = _second_database(run_cli, unmigrated_database_url)
    planfile = tmp_path / "registry.plan"
    planned = run_cli("plan", str(registry_dir), "--database-url", database_url, "--out", str(planfile), env=APPLY_ENV)
    assert planned.exit_code == 0, planned.output
    saved = json.loads(planfile.read_text())
    assert saved["target"]["database"] == shown(database_url)
    assert saved["target"]["database_identity"].endswith("/" + make_url(database_url).database)

    import sqlalchemy

    engine = sqlalchemy.create_engine(make_url(other).set(drivername="postgresql+psycopg"))
    try:
        before = snapshot(engine)
        refused = run_cli("apply", str(planfile), "--database-url", other, env=APPLY_ENV)
        assert refused.exit_code == 1
        assert refused.stderr.strip() == (
            f"error: this plan was made for another database ({shown(database_url)}); it applies only there. "
            "Nothing was written: make a plan against this database"
        )
        assert snapshot(engine) == before
    finally:
        engine.dispose()


def test_a_plan_file_applies_only_to_its_environment(
    run_cli: Any, registry_dir: Path, database_url: str, engine: Any, tmp_path: Path
) -> None:
    planfile = tmp_path / "registry.plan"
    env = {**APPLY_ENV, "GITHUB_SHA": REVISION}
    planned = run_cli("plan", str(registry_dir), "--database-url", database_url, "--environment", "staging", "--out", str(planfile), env=env)
    assert planned.exit_code == 0, planned.output

    refused = run_cli("apply", str(planfile), "--database-url", database_url, "--environment", "production", env=APPLY_ENV)
    assert refused.exit_code == 1
    assert "this plan was made for environment 'staging', not 'production'" in refused.stderr
    assert models_by_name(engine) == {} and audit_events(engine) == []

    applied = run_cli("apply", str(planfile), "--database-url", database_url, env=APPLY_ENV)
    assert applied.exit_code == 0, applied.output
    # the plan file's own environment and revision, though this shell has neither
    assert "Target: database " in applied.stdout and ", environment staging, revision fedcba987654" in applied.stdout
    assert set(models_by_name(engine)) == {"nomic-embed", "gpt-4o-mini"}
    assert {(event["source_revision"], event["environment"]) for event in audit_events(engine)} == {(REVISION, "staging")}


def test_a_percent_encoded_database_name_is_one_database_for_every_command(
    run_cli: Any, registry_dir: Path, pg_server: Any
) -> None:
    # `db upgrade` and `apply` connect through SQLAlchemy, `plan` and `list` through psycopg
    # alone: each must decode `my%20db` as libpq does (SQLAlchemy 2.0 alone kept it encoded).
    name = pg_server.new_name("with space ")
    pg_server.create_database(name)
    try:
        url = f"{pg_server.url_for('postgres').rpartition('/')[0]}/{quote(name)}"
        assert url.endswith("_with%20space%20" + name.rpartition(" ")[2])
        for args in (("db", "upgrade"), ("apply", str(registry_dir), "--auto-approve", "--skip-connection-tests")):
            result = run_cli(*args, "--database-url", url, env=APPLY_ENV)
            assert result.exit_code == 0, result.output
        planned = run_cli("plan", str(registry_dir), "--database-url", url, "--detailed-exitcode", env=APPLY_ENV)
        assert planned.exit_code == 0, planned.output  # the applied database: no changes
        listed = json.loads(run_cli("list", "--database-url", url, "--format", "json").stdout)
        assert sorted(model["name"] for model in listed["models"]) == ["gpt-4o-mini", "nomic-embed"]

        import sqlalchemy

        engine = sqlalchemy.create_engine(make_url(pg_server.url_for(name)).set(drivername="postgresql+psycopg"))
        try:
            assert sorted(models_by_name(engine)) == ["gpt-4o-mini", "nomic-embed"]  # the database named, decoded
        finally:
            engine.dispose()
    finally:
        pg_server.drop_database(name)
