"""Database access: URL resolution, engines and migrations.

Which database a command uses, first match wins:

1. `--database-url URL` on the command line (or `--embedded`, asking for 3. explicitly);
2. the environment variable `LLM_REGISTRY_DATABASE_URL`;
3. the *embedded default* (`reconciler.embedded`): a PostgreSQL cluster of the
   project's own, created on first use from the PostgreSQL binaries on the machine,
   listening only on a Unix socket.

No silent fallback: in CI (`CI` or `GITHUB_ACTIONS` set) or when
`LLM_REGISTRY_DATABASE_URL` is set but empty (a secret that is missing or misnamed),
a command without a URL refuses instead of writing to a throwaway cluster on the
runner; `--embedded` still asks for it on purpose.

URLs may be written `postgresql://...` (as psql and libpq users do); they are turned
into SQLAlchemy's `postgresql+psycopg://` form. Engines hide bound parameters from
error messages and logs (`hide_parameters=True`): parameters carry API keys and the
encryption passphrase.

Migrations are Alembic revisions shipped in `reconciler/migrations`, run over a
connection we open (no alembic.ini), recorded in the table `llm_registry_schema_version`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from reconciler.embedded import EmbeddedCluster, embedded_home
from reconciler.errors import RegistryError
from reconciler.schema_names import VERSION_TABLE

if TYPE_CHECKING:  # SQLAlchemy is imported lazily: `validate` and `plan` must not load it.
    import psycopg
    from alembic.config import Config
    from sqlalchemy.engine import Connection, Engine, URL

DATABASE_URL_ENV = "LLM_REGISTRY_DATABASE_URL"
# Set (to anything but an empty or false value) by CI systems; GitHub Actions sets both.
CI_ENVS = ("CI", "GITHUB_ACTIONS")

# The Alembic script location, as a package resource: works from a wheel or a checkout.
SCRIPT_LOCATION = "reconciler:migrations"

# Key of the transaction-level advisory lock that serialises `db upgrade` runs
# (an arbitrary constant: the first 8 bytes of sha256("llm-registry db upgrade")).
_UPGRADE_LOCK_KEY = int.from_bytes(hashlib.sha256(b"llm-registry db upgrade").digest()[:8], "big", signed=True)


# --------------------------------------------------------------------------- URLs


def configured_database_url(option: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The URL the user gave (`--database-url`, then `LLM_REGISTRY_DATABASE_URL`), or None.

    An empty value counts as not given (whether it may then fall back to the embedded
    default is `fallback_refusal`'s question).
    """
    environ = os.environ if environ is None else environ
    if option:
        return option
    value = environ.get(DATABASE_URL_ENV, "")
    return value or None


def _flag_set(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in ("", "0", "false", "no")


def fallback_refusal(environ: Mapping[str, str]) -> str | None:
    """Why a command without a URL must not fall back to the embedded default here, or None."""
    if environ.get(DATABASE_URL_ENV) == "":
        return f"{DATABASE_URL_ENV} is set but empty (a missing or misnamed secret?)"
    for name in CI_ENVS:
        if _flag_set(environ.get(name)):
            return f"{name} is set, and in CI the embedded cluster would be a throwaway database on the runner"
    return None


def resolve_database_url(
    option: str | None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    *,
    embedded: bool = False,
) -> str:
    """The URL a command should use; starts the embedded default cluster when that is the answer.

    `embedded` (the `--embedded` flag) asks for the embedded cluster explicitly, even in
    CI. Without a URL and without it, `fallback_refusal` may refuse: a RegistryError
    naming the variable to set.
    """
    environ = os.environ if environ is None else environ
    if embedded:
        if option:
            raise RegistryError("--embedded and --database-url exclude each other: give one of them")
        return EmbeddedCluster(embedded_home(environ, cwd), environ=environ).ensure_running()
    url = configured_database_url(option, environ)
    if url is not None:
        return url
    refusal = fallback_refusal(environ)
    if refusal is not None:
        raise RegistryError(
            f"no database given: {refusal}. Set {DATABASE_URL_ENV} (or pass --database-url); "
            "nothing was done. To use the local embedded cluster on purpose, pass --embedded"
        )
    return EmbeddedCluster(embedded_home(environ, cwd), environ=environ).ensure_running()


def sqlalchemy_url(url: str) -> "URL":
    """Parse a database URL into SQLAlchemy's form, driver psycopg 3.

    Accepts `postgresql://`, `postgres://` and `postgresql+psycopg://`. Anything else is
    a RegistryError whose message never repeats the URL (it may hold a password).
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise RegistryError(
            "the database URL is not valid: expected postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
        ) from None
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    raise RegistryError(
        f"unsupported database URL scheme {parsed.drivername!r}: llm-registry needs PostgreSQL "
        "(postgresql://USER@HOST/DATABASE)"
    )


# Query parameters whose value may be a credential (libpq takes `?password=`, `?sslpassword=`).
_SECRET_QUERY_WORDS = ("pass", "pwd", "secret", "token", "key")


def masked_url(url: "URL") -> str:
    """`url` for display: the password and every query value that may be a credential as `***`."""
    from urllib.parse import quote

    shown = url.set(query={}).render_as_string(hide_password=True)
    parameters = []
    for name, values in sorted(url.query.items()):
        secret = any(word in name.lower() for word in _SECRET_QUERY_WORDS)
        for value in (values,) if isinstance(values, str) else values:
            parameters.append(f"{quote(name)}={'***' if secret else quote(value)}")
    return f"{shown}?{'&'.join(parameters)}" if parameters else shown


def display_url(url: str) -> str:
    """The URL with its password (in `user:password@` or `?password=`) masked, for messages."""
    try:
        return masked_url(sqlalchemy_url(url))
    except RegistryError:
        return "(invalid URL)"


def connect_arguments(url: str) -> dict[str, str]:
    """psycopg's keyword arguments for `url`, read as SQLAlchemy reads it (for a connection without it).

    User, password, host, port and database from the URL, then each query parameter
    (form-decoded: `options=-c+statement_timeout%3D5s`), then what every engine sets
    (`create_engine`'s connect_args). A URL that is not a plain `postgresql://` one is
    left to SQLAlchemy itself, which reads it or raises `sqlalchemy_url`'s RegistryError.
    """
    from urllib.parse import parse_qsl, unquote, urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        return _connect_arguments_from_sqlalchemy(url)
    try:
        port = parts.port
    except ValueError:  # several hosts, or a port that is not a number
        return _connect_arguments_from_sqlalchemy(url)
    arguments: dict[str, str] = {}
    if parts.username:
        arguments["user"] = unquote(parts.username)
    if parts.password is not None:
        arguments["password"] = unquote(parts.password)
    host = parts.netloc.rpartition("@")[2]  # as written: urllib's hostname is lowercased
    host = host[1 : host.find("]")] if host.startswith("[") else host.partition(":")[0]
    if host:
        arguments["host"] = unquote(host)
    if port:
        arguments["port"] = str(port)
    if parts.path.lstrip("/"):
        arguments["dbname"] = unquote(parts.path.lstrip("/"))
    arguments.update(parse_qsl(parts.query, keep_blank_values=True))
    arguments.update(_CONNECT_ARGS)
    return arguments


def _connect_arguments_from_sqlalchemy(url: str) -> dict[str, str]:
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

    _, arguments = PGDialect_psycopg().create_connect_args(sqlalchemy_url(url))
    return {**{key: str(value) for key, value in arguments.items()}, **_CONNECT_ARGS}


# What every connection sets, through SQLAlchemy (create_engine) or not (snapshot).
_CONNECT_ARGS = {"connect_timeout": "10", "application_name": "llm-registry"}


@contextlib.contextmanager
def snapshot(url: str) -> Iterator["psycopg.Connection[Any]"]:
    """A read-only REPEATABLE READ transaction on `url` through psycopg alone, at the head revision.

    For commands that only read (plan): every query of theirs runs as well on the bare
    driver (see `driver_cursor`), and SQLAlchemy's import alone costs as much CPU as
    reading and diffing a few thousand models. One snapshot for every query; read-only,
    so the command cannot write even by mistake. Rolled back and closed on exit.
    """
    import psycopg

    try:
        connection = psycopg.connect(**connect_arguments(url))
    except psycopg.Error as error:
        raise connection_error(url, error) from None
    try:
        connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        connection.read_only = True
        require_schema_at_head(connection)
        yield connection
    finally:
        connection.close()  # without a commit: the transaction is rolled back


def fetch_one(connection: Any, sql: str, params: Any = None) -> tuple[Any, ...] | None:
    """The first row of `sql` (psycopg placeholders) on either kind of connection (`driver_cursor`), or None."""
    with driver_cursor(connection) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def create_engine(url: str, **kwargs: object) -> "Engine":
    """An engine on `url` (postgresql+psycopg) that never puts bound parameters in errors or logs."""
    import sqlalchemy

    options: dict[str, object] = {
        # Parameters hold API keys and the passphrase: keep them out of exception text.
        "hide_parameters": True,
        "pool_pre_ping": True,
        # The URL read once, by `connect_arguments`, for engines and snapshots alike: before
        # 2.1 SQLAlchemy left a percent-encoded database name encoded, so `apply` (engine)
        # and `plan` (snapshot) would have named two databases. connect_args win over the URL.
        "connect_args": connect_arguments(url),
    }
    options.update(kwargs)
    # SQLAlchemy logs some failures itself ("Error closing cursor" when the server killed
    # the connection), with a traceback; without a handler Python prints that to stderr.
    # Every failure reaches the user as one clean line instead, so its records go nowhere.
    import logging

    if not logging.getLogger("sqlalchemy").handlers:
        logging.getLogger("sqlalchemy").addHandler(logging.NullHandler())
    return sqlalchemy.create_engine(sqlalchemy_url(url), **options)


def connection_error(url: str, error: BaseException) -> RegistryError:
    """A clean "cannot connect" error: the masked URL and the server's first line of reason."""
    original = getattr(error, "orig", None) or error
    reason = str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
    return RegistryError(f"cannot connect to the database {display_url(url)}: {reason}")


@contextlib.contextmanager
def connect(engine: "Engine", url: str | None = None) -> Iterator["Connection"]:
    """Open a connection, turning a connection failure into a RegistryError."""
    from sqlalchemy.exc import OperationalError

    try:
        connection = engine.connect()
    except OperationalError as error:
        raise connection_error(url or engine.url.render_as_string(hide_password=False), error) from None  # masked there
    with connection:
        yield connection


@contextlib.contextmanager
def driver_cursor(connection: "Connection | psycopg.Connection[Any]", *, name: str | None = None) -> Iterator[Any]:
    """The psycopg cursor under a SQLAlchemy connection (COPY, array parameters), in its transaction.

    With `name`, a server-side cursor of that name (rows fetched in batches by `fetchmany`).

    Begins the transaction as `connection.execute` would (the caller commits or rolls
    back through `connection`). A driver error comes out as SQLAlchemy's DBAPIError
    (IntegrityError, OperationalError, ...) with parameters hidden, exactly as from
    `connection.execute`, so that callers handle one kind of database error.

    `connection` may also be a psycopg connection (`snapshot`): then its own cursor,
    and its errors as psycopg raises them.
    """
    import psycopg

    if isinstance(connection, psycopg.Connection):
        with connection.cursor(name) if name else connection.cursor() as own:
            yield own
        return
    from sqlalchemy.exc import DBAPIError

    if not connection.in_transaction():
        connection.begin()
    driver = connection.connection.driver_connection
    cursor = driver.cursor() if name is None else driver.cursor(name=name)  # type: ignore[union-attr]
    try:
        yield cursor
    except psycopg.Error as error:
        raise DBAPIError.instance(None, None, error, psycopg.Error, hide_parameters=True) from None
    finally:
        cursor.close()


# --------------------------------------------------------------------------- migrations


def alembic_config(connection: "Connection | None" = None) -> "Config":
    """An Alembic configuration for the shipped migrations, built in code (no alembic.ini).

    With a connection, migrations run over it. Developers make a new revision with
    `alembic.command.revision(alembic_config(), message=..., rev_id="0002")` and write
    its SQL by hand (see docs/database.md).
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.set_main_option("version_table", VERSION_TABLE)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision the package ships (no database needed)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None  # the package always ships at least one revision
    return head


def current_revision(connection: "Connection") -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


@dataclass(frozen=True)
class UpgradeResult:
    """What `upgrade` did: the revision before and after (equal when no migration was to do).

    `adopted` counts the rows of an llm_models table the story's admin page made, taken
    over in place (None when there was none). `fingerprints_filled` names the models
    whose stored key got its fingerprint in this run; `fingerprints_pending` those still
    without one (the passphrase was not given).
    """

    before: str | None
    after: str | None
    adopted: int | None = None
    fingerprints_filled: tuple[str, ...] = ()
    fingerprints_pending: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """True when at least one migration ran."""
        return self.before != self.after


def upgrade(connection: "Connection", revision: str = "head", passphrase: str | None = None) -> UpgradeResult:
    """Migrate the database to `revision` in one transaction, and commit.

    A transaction-level advisory lock serialises concurrent upgrades, so two
    `db upgrade` runs on a fresh database do not both try to create the tables.

    On a database without our schema whose llm_models table the story's admin page
    made, `reconciler.legacy.check_story_table` first refuses (nothing changed) when
    rows break the rules the migrations add, naming them. At head, with `passphrase`,
    stored keys without a fingerprint get one, in the same transaction.
    """
    from alembic import command
    from sqlalchemy import text

    from reconciler import legacy

    if connection.in_transaction():
        connection.commit()
    with connection.begin():
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK_KEY})
        before = current_revision(connection)
        adopted = None
        if before is None and legacy.has_story_table(connection):
            legacy.check_story_table(connection)
            adopted = connection.execute(text("SELECT count(*) FROM llm_models")).scalar_one()
        command.upgrade(alembic_config(connection), revision)
        after = current_revision(connection)
        filled: tuple[str, ...] = ()
        pending: tuple[str, ...] = ()
        if after == SCHEMA_HEAD:
            if passphrase:
                filled = legacy.fill_key_fingerprints(connection, passphrase)
            pending = legacy.keys_without_fingerprint(connection)
    return UpgradeResult(before, after, adopted, filled, pending)


# The newest revision under migrations/versions. Every command checks the schema
# against it, so it is a constant rather than a question to Alembic (whose import
# costs more than the rest of the check); tests/integration/test_schema.py keeps the
# two equal.
SCHEMA_HEAD = "0004"


def stored_revision(connection: "Connection") -> str | None:
    """The revision in the version table, or None when there is none; never raises for a missing table.

    Plain SQL (no Alembic), and no failing statement: safe inside a caller's transaction.
    """
    (table,) = fetch_one(connection, "SELECT to_regclass(%s)", (VERSION_TABLE,)) or (None,)
    if table is None:
        return None
    row = fetch_one(connection, f"SELECT version_num FROM {VERSION_TABLE} LIMIT 1")
    return None if row is None else row[0]


# SQLSTATE of "canceling statement due to lock timeout".
LOCK_NOT_AVAILABLE = "55P03"


def set_local_lock_timeout(connection: "Connection", seconds: float) -> None:
    """Bound every lock wait of the current transaction (row locks included) to `seconds`.

    `SET LOCAL`: it ends with the transaction, so a pooled connection keeps its
    defaults. PostgreSQL reads 0 as "wait forever", so 0 s becomes 1 ms (do not wait).
    """
    from sqlalchemy import text

    milliseconds = max(1, int(round(seconds * 1000)))
    connection.execute(text("SELECT set_config('lock_timeout', :value, true)"), {"value": f"{milliseconds}ms"})


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a database error raised through SQLAlchemy (None when there is none)."""
    original = getattr(error, "orig", None) or error
    return getattr(original, "sqlstate", None) or getattr(getattr(original, "diag", None), "sqlstate", None)


INSUFFICIENT_PRIVILEGE = "42501"
ROLES_HINT = "the database role may not do this: see docs/roles.md (llm-registry db roles)"


def permission_denied(error: BaseException) -> str | None:
    """For a database error that is a missing privilege: one clean line saying so and where roles are documented."""
    if sqlstate(error) != INSUFFICIENT_PRIVILEGE:
        return None
    original = getattr(error, "orig", None) or error
    first_line = (str(original).strip().splitlines() or ["permission denied"])[0]
    return f"{first_line}; {ROLES_HINT}"


def require_schema_at_head(connection: "Connection") -> None:
    """Raise a RegistryError naming `llm-registry db upgrade` unless the schema is at head."""
    current = stored_revision(connection)
    if current == SCHEMA_HEAD:
        return
    head = head_revision()
    if current is None:
        from reconciler import legacy

        if legacy.has_story_table(connection):
            raise RegistryError(
                "the database has an llm_models table (the story's admin page's, it seems) but no llm-registry "
                "schema yet: run `llm-registry db upgrade` to take it over in place (it checks the rows first "
                "and changes nothing if one breaks a rule)"
            )
        raise RegistryError(
            "the database has no llm-registry schema yet: run `llm-registry db upgrade` first"
        )
    raise RegistryError(
        f"the database schema is at revision {current}, this llm-registry needs {head}: "
        "run `llm-registry db upgrade` first"
    )
