"""`llm-registry db roles`: each command run as each role against real PostgreSQL, allowed or refused as docs/roles.md says.

Roles are cluster-wide on the shared server: each test makes its own (unique names)
and drops them afterwards.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy.engine import make_url

from tests.cli.applyutil import APPLY_ENV, models_by_name, write_story_registry
from tests.dbutil import insert_knowledge_base
from tests.fakes.provider import FakeProvider


def as_role(database_url: str, role: str) -> str:
    """The test database's URL, logging in as `role` (the test server trusts local logins)."""
    return make_url(database_url).set(username=role, password=None).render_as_string(hide_password=False)


@pytest.fixture
def roles(run_cli: Any, database_url: str, engine: Any) -> Iterator[dict[str, str]]:
    """plan, apply and reader roles made by `db roles --login`, dropped afterwards."""
    from sqlalchemy import text

    suffix = uuid.uuid4().hex[:10]
    names = {kind: f"llmreg_{kind}_{suffix}" for kind in ("plan", "apply", "reader")}
    try:
        result = run_cli(
            "db", "roles", "--database-url", database_url, "--login",
            "--plan", names["plan"], "--apply", names["apply"], "--reader", names["reader"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        yield names
    finally:
        with engine.begin() as connection:
            for name in names.values():
                if connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).scalar():
                    connection.execute(text(f'DROP OWNED BY "{name}"'))
                    connection.execute(text(f'DROP ROLE "{name}"'))


@pytest.fixture
def registry_dir(tmp_path: Path, fake_provider: FakeProvider, run_cli: Any, database_url: str, engine: Any) -> Path:
    """The story's registry, applied (as the admin), with a KB on the embedding model."""
    directory = write_story_registry(tmp_path / "registry.d", fake_provider)
    result = run_cli("apply", str(directory), "--database-url", database_url, "--auto-approve", env=APPLY_ENV)
    assert result.exit_code == 0, result.output
    with engine.begin() as connection:
        insert_knowledge_base(connection, "support-kb", embedding_model_id=models_by_name(engine)["nomic-embed"]["id"])
    return directory


def _commands(directory: Path) -> dict[str, list[str]]:
    return {
        "plan": ["plan", str(directory)],
        "list": ["list"],
        "audit": ["audit"],
        "show": ["show", "nomic-embed"],
        "test --from-db": ["test", "--from-db"],
        "apply --dry-run": ["apply", str(directory), "--dry-run"],
        "apply": ["apply", str(directory), "--auto-approve"],
        "rotate-encryption-key": ["rotate-encryption-key"],  # last: the passphrase changes
    }


# role -> commands it may run; every other command of _commands is refused.
ALLOWED = {
    "plan": {"plan", "list", "audit", "show", "test --from-db"},
    "apply": {"plan", "list", "audit", "show", "test --from-db", "apply --dry-run", "apply", "rotate-encryption-key"},
    "reader": set(),
}


@pytest.mark.parametrize("role", ["plan", "apply", "reader"])
def test_each_command_as_each_role(
    run_cli: Any, roles: dict[str, str], registry_dir: Path, database_url: str, engine: Any, role: str,
    fake_provider: FakeProvider,
) -> None:
    from sqlalchemy import text

    # A change to apply, so that apply and dry-run have writes to do.
    write_story_registry(registry_dir, fake_provider, **{"gpt-4o-mini": {"description": f"as {role}"}})
    url = as_role(database_url, roles[role])
    for name, args in _commands(registry_dir).items():
        result = run_cli(*args, "--database-url", url, env={**APPLY_ENV, "LLM_REGISTRY_NEW_ENCRYPTION_KEY": "new-passphrase-for-roles"})
        if name in ALLOWED[role]:
            assert result.exit_code == 0, f"{role} should run {name}: {result.output}"
        else:
            assert result.exit_code == 1, f"{role} should not run {name}: {result.output}"
            assert "permission denied" in result.stderr and "docs/roles.md" in result.stderr, result.stderr
            assert "internal error" not in result.stderr
    described = models_by_name(engine)["gpt-4o-mini"]["description"]
    assert (described == f"as {role}") is ("apply" in ALLOWED[role])
    # The KB application's reader sees the models, and nothing else of ours.
    from reconciler import db

    reader = db.create_engine(as_role(database_url, roles["reader"]))
    try:
        with reader.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM llm_models")).scalar() == 2
            with pytest.raises(Exception, match="permission denied"):
                connection.execute(text("SELECT count(*) FROM registry_audit_events"))
    finally:
        reader.dispose()


def test_print_shows_the_sql_and_runs_nothing(run_cli: Any, database_url: str, engine: Any) -> None:
    from sqlalchemy import text

    name = f"llmreg_print_{uuid.uuid4().hex[:10]}"
    result = run_cli("db", "roles", "--database-url", database_url, "--plan", name, "--print")
    assert result.exit_code == 0
    assert result.stdout.startswith("BEGIN;\n") and result.stdout.endswith("COMMIT;\n")
    assert 'GRANT SELECT ON "llm_models", ' in result.stdout and f'TO "{name}";' in result.stdout
    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).scalar() is None


def test_a_bad_role_name_is_refused(run_cli: Any, database_url: str) -> None:
    result = run_cli("db", "roles", "--database-url", database_url, "--plan", 'x"; DROP TABLE llm_models; --')
    assert result.exit_code == 1 and "role name" in result.stderr
