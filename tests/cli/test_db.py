"""`llm-registry db upgrade | current | stop`, the schema check of other commands, the embedded default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler import db, embedded
from tests.cli.conftest import LOCAL_NO_URL, RunCli, subprocess_env

pytestmark = pytest.mark.db

NO_URL = LOCAL_NO_URL


def test_upgrade_an_empty_database_then_again(run_cli: RunCli, unmigrated_database_url: str) -> None:
    before = run_cli("db", "current", "--database-url", unmigrated_database_url)
    assert before.exit_code == 0, before.output
    assert "(none)" in before.stdout and "llm-registry db upgrade" in before.stdout

    first = run_cli("db", "upgrade", "--database-url", unmigrated_database_url)
    assert first.exit_code == 0, first.output
    assert f"from (empty) to {db.head_revision()}" in first.stdout

    second = run_cli("db", "upgrade", "--database-url", unmigrated_database_url)
    assert second.exit_code == 0, second.output
    assert "nothing to do" in second.stdout

    after = run_cli("db", "current", "--database-url", unmigrated_database_url)
    assert after.stdout.strip() == f"{db.head_revision()} (head)"


def test_a_password_in_the_urls_query_is_never_printed(run_cli: RunCli, database_url: str) -> None:
    separator = "&" if "?" in database_url else "?"
    with_password = f"{database_url}{separator}password=pw-in-query-3f9c"  # libpq's keyword (trust auth ignores it)
    result = run_cli("db", "upgrade", "--database-url", with_password)
    assert result.exit_code == 0, result.output
    assert "password=***" in result.stdout  # the job summary of the action copies this line
    from sqlalchemy.engine import make_url

    closed_port = make_url(with_password).set(port=1).render_as_string(hide_password=False)
    refused = run_cli("db", "current", "--database-url", closed_port)
    assert refused.exit_code == 1 and "cannot connect to the database" in refused.stderr
    assert "pw-in-query-3f9c" not in result.output + refused.output


def test_the_url_may_come_from_the_environment(run_cli: RunCli, unmigrated_database_url: str) -> None:
    result = run_cli("db", "upgrade", env={"LLM_REGISTRY_DATABASE_URL": unmigrated_database_url})
    assert result.exit_code == 0, result.output
    assert "Upgraded" in result.stdout


def test_the_option_wins_over_the_environment(run_cli: RunCli, database_url: str) -> None:
    result = run_cli(
        "db", "current", "--database-url", database_url,
        env={"LLM_REGISTRY_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nothing"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("args", [("list",), ("audit",)])
def test_commands_refuse_a_schema_not_at_head(run_cli: RunCli, unmigrated_database_url: str, args: tuple[str, ...]) -> None:
    result = run_cli(*args, "--database-url", unmigrated_database_url)
    assert result.exit_code == 1
    assert "llm-registry db upgrade" in result.stderr
    assert "Traceback" not in result.output


def test_commands_refuse_an_older_schema(run_cli: RunCli, database_url: str, engine: object) -> None:
    from sqlalchemy import text

    from reconciler.tables import VERSION_TABLE

    with engine.begin() as connection:  # type: ignore[attr-defined]
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '0000'"))
    result = run_cli("list", "--database-url", database_url)
    assert result.exit_code == 1
    assert "revision 0000" in result.stderr and "llm-registry db upgrade" in result.stderr


def test_an_unreachable_database_is_a_clean_error_without_the_password(run_cli: RunCli) -> None:
    result = run_cli("list", "--database-url", "postgresql://someone:hunter2secret@127.0.0.1:1/registry")
    assert result.exit_code == 1
    assert "cannot connect to the database postgresql+psycopg://someone:***@127.0.0.1:1/registry" in result.stderr
    assert "hunter2secret" not in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("url", ["mysql://root@localhost/db", "not a url"])
def test_a_url_that_is_not_postgresql(run_cli: RunCli, url: str) -> None:
    result = run_cli("db", "current", "--database-url", url)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")


# --------------------------------------------------------------------------- the embedded default


def test_the_embedded_default_from_first_use_to_stop(run_cli: RunCli, embedded_home: Path) -> None:
    env = {**NO_URL, "LLM_REGISTRY_HOME": str(embedded_home)}
    upgraded = run_cli("db", "upgrade", env=env)
    assert upgraded.exit_code == 0, upgraded.output
    assert f"the embedded cluster in {embedded_home}" in upgraded.stdout

    listed = run_cli("list", env=env)
    assert listed.exit_code == 0, listed.output
    assert "No models registered." in listed.stdout

    again = run_cli("db", "upgrade", env=env)
    assert "nothing to do" in again.stdout

    # only a Unix socket inside the home, never TCP
    conf = (embedded_home / "postgres" / "data" / "postgresql.conf").read_text()
    assert "listen_addresses = ''" in conf
    assert list((embedded_home / "postgres" / "run").glob(".s.PGSQL.*"))

    stopped = run_cli("db", "stop", env=env)
    assert stopped.exit_code == 0 and "Stopped" in stopped.stdout
    assert "not running" in run_cli("db", "stop", env=env).stdout

    # the next command starts it again, data intact
    current = run_cli("db", "current", env=env)
    assert current.exit_code == 0 and "(head)" in current.stdout


def test_the_embedded_default_lives_in_the_working_directory(run_subprocess: RunCli, embedded_home: Path) -> None:
    env = {**NO_URL, "LLM_REGISTRY_HOME": None}
    result = run_subprocess("db", "upgrade", env=env, cwd=embedded_home)
    assert result.exit_code == 0, result.output
    assert (embedded_home / ".llm-registry" / "postgres" / "data" / "PG_VERSION").exists()
    listed = run_subprocess("list", "--format", "json", env=env, cwd=embedded_home)
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.strip().startswith("{")
    assert "Stopped" in run_subprocess("db", "stop", env=env, cwd=embedded_home).stdout


def test_concurrent_first_use_creates_one_cluster(embedded_home: Path) -> None:
    env = subprocess_env({**NO_URL, "LLM_REGISTRY_HOME": str(embedded_home)})
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "reconciler", "db", "upgrade"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outcomes = [(process.wait(timeout=120), *process.communicate()) for process in processes]
    assert [code for code, _, _ in outcomes] == [0, 0, 0], outcomes
    outputs = sorted(out for _, out, _ in outcomes)
    assert sum("Upgraded" in out for out in outputs) == 1
    assert sum("nothing to do" in out for out in outputs) == 2


def test_a_long_home_path_puts_the_socket_in_a_short_directory(run_cli: RunCli, embedded_home: Path) -> None:
    home = embedded_home / ("deep-" * 12) / "registry-home"
    home.mkdir(parents=True)
    for directory in (home.parent, home):
        os.chmod(directory, 0o755)
    cluster = embedded.EmbeddedCluster(home)
    assert len(str(cluster.socket_dir)) < 60 and not cluster.socket_dir.is_relative_to(home)
    try:
        result = run_cli("db", "upgrade", env={**NO_URL, "LLM_REGISTRY_HOME": str(home)})
        assert result.exit_code == 0, result.output
    finally:
        cluster.stop()
        import shutil

        shutil.rmtree(cluster.socket_dir, ignore_errors=True)


def test_no_postgresql_binaries_is_a_clear_error_with_the_install_command(
    run_cli: RunCli, embedded_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded, "_USUAL_BINDIRS", ())
    monkeypatch.setenv("PATH", str(embedded_home))
    monkeypatch.delenv("LLM_REGISTRY_PG_BINDIR", raising=False)
    result = run_cli("list", env={**NO_URL, "LLM_REGISTRY_HOME": str(embedded_home)})
    assert result.exit_code == 1
    assert "no PostgreSQL server binaries" in result.stderr
    assert "apt-get install postgresql" in result.stderr
    assert not (embedded_home / "postgres").exists()


# --------------------------------------------------------------------------- no silent fallback

REPO = Path(__file__).resolve().parents[2]
NEEDS_DATABASE = [
    ("db", "upgrade"),
    ("db", "current"),
    ("list",),
    ("audit",),
    ("plan", str(REPO / "registry.d")),
    ("apply", str(REPO / "registry.d"), "--auto-approve"),
]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CI": "true"}, "CI is set"),
        ({"GITHUB_ACTIONS": "true"}, "GITHUB_ACTIONS is set"),
        ({"LLM_REGISTRY_DATABASE_URL": ""}, "LLM_REGISTRY_DATABASE_URL is set but empty"),
    ],
    ids=["CI", "GITHUB_ACTIONS", "empty-url"],
)
@pytest.mark.parametrize("args", NEEDS_DATABASE, ids=[" ".join(a[:2]).replace(str(REPO) + "/", "") for a in NEEDS_DATABASE])
def test_without_a_url_in_ci_commands_refuse_instead_of_using_the_embedded_cluster(
    run_cli: RunCli, embedded_home: Path, env: dict[str, str], named: str, args: tuple[str, ...]
) -> None:
    result = run_cli(*args, env={**NO_URL, **env, "LLM_REGISTRY_HOME": str(embedded_home)})
    assert result.exit_code == 1, result.output
    assert named in result.stderr
    assert "Set LLM_REGISTRY_DATABASE_URL (or pass --database-url); nothing was done" in result.stderr
    assert "--embedded" in result.stderr
    assert list(embedded_home.iterdir()) == []  # no cluster was made, not even its lock


@pytest.mark.parametrize("value", ["false", "0", ""])
def test_a_ci_variable_that_says_no_does_not_refuse(value: str) -> None:
    assert db.fallback_refusal({"CI": value, "GITHUB_ACTIONS": value}) is None


def test_embedded_asks_for_the_embedded_cluster_even_in_ci(run_cli: RunCli, embedded_home: Path) -> None:
    env = {**NO_URL, "CI": "true", "LLM_REGISTRY_DATABASE_URL": "", "LLM_REGISTRY_HOME": str(embedded_home)}
    result = run_cli("db", "upgrade", "--embedded", env=env)
    assert result.exit_code == 0, result.output
    assert f"Upgraded the embedded cluster in {embedded_home}" in result.stdout
    by_variable = run_cli("db", "current", env={**env, "LLM_REGISTRY_EMBEDDED": "1"})
    assert by_variable.exit_code == 0 and "(head)" in by_variable.stdout
    by_command_variable = run_cli("db", "current", env={**env, "LLM_REGISTRY_DB_CURRENT_EMBEDDED": "1"})  # docs/cli.md
    assert by_command_variable.exit_code == 0 and "(head)" in by_command_variable.stdout


def test_embedded_and_a_url_exclude_each_other(run_cli: RunCli, database_url: str, embedded_home: Path) -> None:
    result = run_cli("db", "current", "--embedded", "--database-url", database_url, env={"LLM_REGISTRY_HOME": str(embedded_home)})
    assert result.exit_code == 1
    assert "--embedded and --database-url exclude each other" in result.stderr
    assert list(embedded_home.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="the server's user differs from ours only when we are root")
def test_as_root_from_a_directory_postgres_cannot_traverse(run_subprocess: RunCli, embedded_home: Path) -> None:
    project = embedded_home / "private"
    project.mkdir(mode=0o700)
    os.chmod(embedded_home, 0o700)  # as `mktemp -d` makes it, or a clone under /root
    env = {**NO_URL, "LLM_REGISTRY_HOME": None}
    cluster = embedded.EmbeddedCluster(project / ".llm-registry")
    expected = cluster.fallback_dir()
    upgraded = run_subprocess("db", "upgrade", env=env, cwd=project)
    assert upgraded.exit_code == 0, upgraded.output
    assert f"the embedded cluster of {project / '.llm-registry'} (files in {expected})" in upgraded.stdout
    assert (expected / "data" / "PG_VERSION").exists()
    assert (project / ".llm-registry" / "cluster-dir").read_text().strip() == str(expected)
    listed = run_subprocess("list", env=env, cwd=project)
    assert listed.exit_code == 0 and "No models registered." in listed.stdout
    stopped = run_subprocess("db", "stop", env=env, cwd=project)
    assert stopped.exit_code == 0 and f"Stopped the embedded cluster of {project / '.llm-registry'}" in stopped.stdout
    assert not cluster.running()
