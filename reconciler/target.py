"""What a plan is about: the database, the environment and the source revision.

Every plan and every apply prompt names its target (DESIGN.md, "Safety of the
target"), so that nobody approves a plan for staging that would run on production.
A saved plan also records the database's *identity*, PostgreSQL's
`system_identifier` (unique per cluster, from `initdb`) plus the database's name:
`apply PLANFILE` against any other database is refused, even when its registry
state happens to be identical (two empty databases, say).

The database is shown as `user@host:port/dbname` (no password, not even masked);
over a Unix socket (the embedded cluster) as `user@<socket directory>/dbname`.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from reconciler.errors import RegistryError

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy.engine import Connection

ENVIRONMENT_HELP = (
    "Name of the environment this registry is for (e.g. production); shown in the plan, "
    "recorded in plan files and audit events."
)


@dataclass(frozen=True)
class Target:
    """Where a plan applies. `database_identity` binds plan files; the other fields are for people."""

    database: str
    environment: str | None = None
    revision: str | None = None
    database_identity: str | None = None

    def summary(self) -> str:
        """One line: `database X, environment Y, revision Z` (unset parts say so)."""
        return (
            f"database {self.database}, environment {self.environment or '(none)'}, "
            f"revision {short_revision(self.revision) or '(unknown)'}"
        )

    def as_json(self) -> dict[str, Any]:
        """The target as the JSON plan shows it (`database_identity` stays in plan files only)."""
        return {"database": self.database, "environment": self.environment, "revision": self.revision}


# Appended to the revision when the registry directory has uncommitted changes.
DIRTY_SUFFIX = "-dirty"


def short_revision(revision: str | None) -> str | None:
    """A git commit id shortened to 12 characters for display, keeping a `-dirty` mark
    (`4f2c1e9a7b3d-dirty`); any other revision text whole; None when there is none."""
    if not revision:
        return None
    commit = revision.removesuffix(DIRTY_SUFFIX)
    if len(commit) == 40 and all(c in "0123456789abcdef" for c in commit.lower()):
        return commit[:12] + revision[len(commit) :]
    return revision


def describe_url(url: str) -> str:
    """`user@host:port/dbname` of a database URL: never the password, masked or not.

    Read by `db.connect_arguments`, the one reader of database URLs, so the target a
    command names is the one it connects to (a `?host=` or `?port=` included).
    """
    from reconciler.db import connect_arguments

    arguments = connect_arguments(url)
    user = f"{arguments['user']}@" if arguments.get("user") else ""
    port = f":{arguments['port']}" if arguments.get("port") else ""
    return f"{user}{arguments.get('host') or 'localhost'}{port}/{arguments.get('dbname', '')}"


def database_identity(connection: "Connection") -> str:
    """`<system_identifier>/<database name>`: the same for every connection to this database only.

    A role without EXECUTE on pg_control_system() (it is granted to PUBLIC by default)
    gets a RegistryError saying what to grant.
    """
    from reconciler.db import fetch_one

    (allowed,) = fetch_one(connection, "SELECT has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE')")  # type: ignore[misc]
    if not allowed:
        raise RegistryError(
            "this database role may not call pg_control_system(), which identifies the database a plan "
            "is bound to: GRANT EXECUTE ON FUNCTION pg_control_system() TO <role>"
        )
    system_identifier, name = fetch_one(connection, "SELECT (SELECT system_identifier FROM pg_control_system()), current_database()")  # type: ignore[misc]
    return f"{system_identifier}/{name}"


def read_target(connection: "Connection | psycopg.Connection[Any]", *, url: str, environment: str | None, revision: str | None) -> Target:
    """The target of a command running on `connection`, opened on `url` (SQLAlchemy's or psycopg's)."""
    return Target(
        database=describe_url(url),
        environment=environment or None,
        revision=revision or None,
        database_identity=database_identity(connection),
    )


def default_revision(environ: Mapping[str, str], directory: Path | None) -> str | None:
    """`GITHUB_SHA`, else the git HEAD of the registry directory, else None.

    HEAD is marked `<sha>-dirty` when files under the directory differ from it
    (modified, staged or untracked): what was applied is then not that commit.
    """
    if environ.get("GITHUB_SHA"):
        return environ["GITHUB_SHA"]
    if directory is None:
        return None
    where = directory if directory.is_dir() else directory.parent
    head = _git(where, "rev-parse", "HEAD")
    if not head:
        return None
    status = _git(where, "status", "--porcelain", "--untracked-files=all", "--", ".")
    return f"{head}{DIRTY_SUFFIX}" if status else head


def _git(where: Path, *args: str) -> str | None:
    """The stripped output of `git -C where ARGS`, or None when git fails or is missing."""
    try:
        completed = subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip() or None if completed.returncode == 0 else None
