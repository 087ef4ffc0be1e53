"""The database roles a deployment needs, as SQL (`llm-registry db roles`). Pure: builds statements.

Three roles, each given only what its commands use (docs/roles.md):

- plan (read-only): `plan`, `list`, `audit`, `show`, `test --from-db` (which then
  cannot record its results, and says so): SELECT on the registry's tables.
- apply: `apply`, `apply --dry-run`, `rotate-encryption-key`: the plan role's reads,
  plus writing `llm_models` and the registry's own tables, appending audit events.
  `knowledge_bases` belongs to the KB application: read only.
- reader (the KB application): SELECT on `llm_models` and nothing else.

Every statement is idempotent (a role that exists is only granted to), so the SQL can
be re-run after `db upgrade`, for a table a later migration adds. Roles are created
NOLOGIN (grant them to login users) unless asked for LOGIN. Statements that need the
database's or schema's name compute it with `current_database()` / `current_schema()`,
so the printed SQL runs as it is in psql against the registry's database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reconciler.errors import RegistryError

# A role name as we accept it: no quoting needed inside a string literal.
_ROLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

AUDIT_TABLE = "registry_audit_events"
MODELS_TABLE = "llm_models"
KB_TABLE = "knowledge_bases"


@dataclass(frozen=True)
class RoleNames:
    """The roles to create or grant to; None leaves that one out."""

    plan: str | None = None
    apply: str | None = None
    reader: str | None = None


def check_role_name(name: str) -> str:
    """The name, or a RegistryError saying what a role name may be."""
    if not _ROLE_NAME.match(name):
        raise RegistryError(
            f"role name {name!r}: use letters, digits and '_', starting with a letter or '_', at most 63 characters"
        )
    return name


def registry_tables() -> tuple[str, ...]:
    """Every table the registry's schema has (tables.py), plus Alembic's version table."""
    from reconciler.tables import VERSION_TABLE, metadata

    return (*(table.name for table in metadata.sorted_tables), VERSION_TABLE)


def written_by_apply() -> tuple[str, ...]:
    """The tables apply and rotation change: all of the registry's but the audit trail
    (append-only: INSERT), the KB application's table and the schema version (db upgrade's)."""
    from reconciler.tables import VERSION_TABLE

    return tuple(table for table in registry_tables() if table not in (AUDIT_TABLE, KB_TABLE, VERSION_TABLE))


def _ensure_role(role: str, login: bool) -> list[str]:
    option = "LOGIN" if login else "NOLOGIN"
    return [
        "DO $$ BEGIN\n"
        f"  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{role}') THEN CREATE ROLE \"{role}\" {option}; END IF;\n"
        "END $$;",
        "DO $$ BEGIN\n"
        f"  EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), '{role}');\n"
        f"  EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), '{role}');\n"
        "END $$;",
    ]


def _quoted(tables: tuple[str, ...]) -> str:
    return ", ".join(f'"{table}"' for table in tables)


def roles_sql(names: RoleNames, *, login: bool = False) -> list[str]:
    """The statements that create (if missing) and grant the roles; run them in one transaction."""
    tables = registry_tables()
    statements: list[str] = []
    if names.plan:
        role = check_role_name(names.plan)
        statements += _ensure_role(role, login)
        statements.append(f'GRANT SELECT ON {_quoted(tables)} TO "{role}";')
    if names.apply:
        role = check_role_name(names.apply)
        statements += _ensure_role(role, login)
        statements.append(f'GRANT SELECT ON {_quoted(tables)} TO "{role}";')
        statements.append(f'GRANT INSERT, UPDATE, DELETE ON {_quoted(written_by_apply())} TO "{role}";')
        statements.append(f'GRANT INSERT ON "{AUDIT_TABLE}" TO "{role}";')
        statements.append(
            "DO $$ BEGIN\n"
            f"  EXECUTE format('GRANT USAGE ON SEQUENCE %s TO %I', pg_get_serial_sequence('{AUDIT_TABLE}', 'id'), '{role}');\n"
            "END $$;"
        )
    if names.reader:
        role = check_role_name(names.reader)
        statements += _ensure_role(role, login)
        statements.append(f'GRANT SELECT ON "{MODELS_TABLE}" TO "{role}";')
    return statements
