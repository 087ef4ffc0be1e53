"""The database harness: a real PostgreSQL server, one fresh database per test.

Which server, first match wins:

1. `LLM_REGISTRY_TEST_DATABASE_URL`: a URL whose user may CREATE DATABASE; test
   databases are made on that server with the same credentials.
2. a server at `LLM_REGISTRY_TEST_SERVER` (`host:port`, default `127.0.0.1:5432`;
   `none` skips this step), as user `postgres` or `root` without a password.
3. a throwaway cluster made with the embedded-default mechanism
   (`reconciler.embedded.EmbeddedCluster`) in a temporary directory, stopped and removed at
   the end of the run.

Isolation: each pytest run has its own prefix (`llmreg_t_<pid>_<random>`), so concurrent
runs on one server never touch each other's databases; the session drops every
database with its prefix at the end. Once per run, a template database is created
and migrated to head. A test that asks for `database_url` gets a database no other
test uses while it runs: a clone of the template (`CREATE DATABASE ... TEMPLATE`),
or one an earlier test used, reset (sessions terminated, tables truncated, sequences
restarted) and accepted only when its catalog signature is exactly the template's;
otherwise it is dropped. Measured on this machine: a clone 120-450 ms (busy, shared
server; the same with fsync off), a reset 40-80 ms. `pytest` prints the figures of
the run on its last lines ("database: ...").

Everything here is lazy: nothing connects to PostgreSQL until a test asks for one of
the fixtures below, so `pytest tests/unit` never needs a database.

Fixtures:
    database_url             URL (str) of a fresh, migrated, empty database; give it to the
                             CLI as `--database-url` or `LLM_REGISTRY_DATABASE_URL`
    engine                   a SQLAlchemy engine on `database_url` (disposed after the test)
    connection               a connection from `engine`; commit what other connections must see
    unmigrated_database_url  URL of a fresh, empty database without the schema (for `db upgrade`)
    pg_server                the session's `PostgresServer` (make more databases with it)
    embedded_home            an empty directory for an embedded cluster, stopped and removed after
"""

from __future__ import annotations

import contextlib

import itertools
import os
import secrets
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pytest

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

TEST_DATABASE_URL_ENV = "LLM_REGISTRY_TEST_DATABASE_URL"
TEST_SERVER_ENV = "LLM_REGISTRY_TEST_SERVER"
DEFAULT_TEST_SERVER = "127.0.0.1:5432"

# Settings of the throwaway cluster: durability is worthless for test data, speed is not.
THROWAWAY_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}

# A test run started in the background by a non-interactive shell (`pytest ... &`)
# inherits SIGINT ignored, and so would every command a test starts: the Ctrl-C tests
# would then test nothing. A user at a terminal has the default; so do the tests.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


class PostgresServer:
    """A PostgreSQL server this test run may create and drop databases on."""

    def __init__(self, admin_url: str, description: str) -> None:
        from reconciler.db import sqlalchemy_url

        self.admin_url = sqlalchemy_url(admin_url)
        self.description = description
        self.prefix = f"llmreg_t_{os.getpid()}_{secrets.token_hex(3)}"
        self._counter = itertools.count(1)
        self._admin: Engine | None = None
        # seconds each CREATE DATABASE from the template took (reported at the end of the run)
        self.clone_seconds: list[float] = []
        self.pools: list[MigratedDatabases] = []

    @property
    def admin(self) -> "Engine":
        """An AUTOCOMMIT engine on the server's maintenance database (CREATE/DROP DATABASE)."""
        if self._admin is None:
            import sqlalchemy

            self._admin = sqlalchemy.create_engine(self.admin_url, isolation_level="AUTOCOMMIT", poolclass=_null_pool())
        return self._admin

    def url_for(self, database: str) -> str:
        """The URL (str, password included) of a database on this server."""
        return self.admin_url.set(database=database).render_as_string(hide_password=False)

    def new_name(self, label: str = "") -> str:
        """A database name unique to this run."""
        return f"{self.prefix}_{label}{next(self._counter)}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """CREATE DATABASE name [TEMPLATE template]; returns its URL."""
        from sqlalchemy import text

        clause = f' TEMPLATE "{template}"' if template else " TEMPLATE template0"
        started = time.perf_counter()
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        if template:
            self.clone_seconds.append(time.perf_counter() - started)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE, closing whatever connections a test left open."""
        from sqlalchemy import text

        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def drop_run_databases(self) -> None:
        """Drop every database this run made (and nothing else)."""
        from sqlalchemy import text

        with self.admin.connect() as connection:
            names = connection.execute(
                text("SELECT datname FROM pg_database WHERE datname LIKE :pattern"),
                {"pattern": self.prefix.replace("_", r"\_") + r"\_%"},
            ).scalars().all()
        for name in names:
            self.drop_database(name)

    def close(self) -> None:
        """Release the admin engine."""
        if self._admin is not None:
            self._admin.dispose()


# The server(s) this run used, for the summary line at the end.
_SESSION_SERVERS: list[PostgresServer] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say which PostgreSQL the run used and what a fresh database per test cost."""
    for server in _SESSION_SERVERS:
        clones = sorted(server.clone_seconds)
        timing = (
            f"; {len(clones)} test databases, CREATE DATABASE from the template "
            f"median {1000 * clones[len(clones) // 2]:.0f} ms, max {1000 * clones[-1]:.0f} ms"
            if clones
            else ""
        )
        resets = sorted(seconds for pool in server.pools for seconds in pool.reset_seconds)
        if resets:
            timing += f"; {len(resets)} resets for reuse, median {1000 * resets[len(resets) // 2]:.0f} ms"
        terminalreporter.write_line(f"database: {server.description}{timing}")


def _null_pool() -> type:
    from sqlalchemy.pool import NullPool

    return NullPool


def _probe(url: str) -> bool:
    """True when a maintenance connection on `url` works and may create databases."""
    import sqlalchemy
    from sqlalchemy import text

    engine = sqlalchemy.create_engine(url, poolclass=_null_pool(), connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            return bool(
                connection.execute(
                    text("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user")
                ).scalar()
            )
    except sqlalchemy.exc.DBAPIError:
        return False
    finally:
        engine.dispose()


def _server_from_host(spec: str) -> PostgresServer | None:
    """The server at host:port, if it is up and lets `postgres` or `root` in."""
    host, _, port_text = spec.rpartition(":")
    host, port = host or "127.0.0.1", int(port_text or 5432)
    # A quick TCP check first: psycopg's own timeout is slower to give up on a closed port.
    try:
        with socket.create_connection((host, port), timeout=2):
            pass
    except OSError:
        return None
    for user in ("postgres", "root"):
        for database in ("postgres", "template1"):
            url = f"postgresql+psycopg://{user}@{host}:{port}/{database}"
            if _probe(url):
                return PostgresServer(url, f"server {host}:{port} as {user}")
    return None


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """The PostgreSQL server of this run (see the module docstring for which one)."""
    from reconciler.embedded import EmbeddedCluster

    cluster: EmbeddedCluster | None = None
    home: str | None = None
    server: PostgresServer | None = None
    explicit = os.environ.get(TEST_DATABASE_URL_ENV)
    if explicit:
        server = PostgresServer(explicit, f"{TEST_DATABASE_URL_ENV}")
    else:
        spec = os.environ.get(TEST_SERVER_ENV, DEFAULT_TEST_SERVER)
        if spec.lower() not in ("", "none", "off"):
            server = _server_from_host(spec)
    if server is None:
        # mkdtemp, not pytest's tmp_path: /tmp/pytest-of-root is 0700, and when we are
        # root the server runs as `postgres`, which must reach its directory.
        home = tempfile.mkdtemp(prefix="llmreg-pg-")
        os.chmod(home, 0o755)
        cluster = EmbeddedCluster(Path(home), server_settings=THROWAWAY_SETTINGS)
        cluster.ensure_running()
        server = PostgresServer(cluster.url("postgres"), f"throwaway cluster in {home}")
    _SESSION_SERVERS.append(server)
    try:
        yield server
    finally:
        try:
            server.drop_run_databases()
        finally:
            server.close()
            if cluster is not None:
                cluster.stop()
            if home is not None:
                shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def _migrated_template(pg_server: PostgresServer) -> str:
    """Name of this run's template database, migrated to head once."""
    from reconciler import db

    name = pg_server.new_name("tpl")
    url = pg_server.create_database(name)
    engine = db.create_engine(url, poolclass=_null_pool())
    try:
        with engine.connect() as connection:
            db.upgrade(connection)
    finally:
        # CREATE DATABASE ... TEMPLATE refuses while anyone is connected to the template.
        engine.dispose()
    return name


# What a migrated database holds, for telling a reset database from a changed one: every
# relation, column, default, constraint, index, trigger and function of the current
# schema, the extensions, other schemas, the schema version, and the row counts.
_SIGNATURE_SQL = """
SELECT md5(concat_ws('|',
  (SELECT string_agg(c.relname || ':' || c.relkind::text || ':' || c.relpersistence::text, ',' ORDER BY c.relname)
     FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace),
  (SELECT string_agg(c.relname || '.' || a.attname || ':' || format_type(a.atttypid, a.atttypmod)
                     || ':' || a.attnotnull::text || ':' || coalesce(pg_get_expr(d.adbin, d.adrelid), ''),
                     ',' ORDER BY c.relname, a.attnum)
     FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
     LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE c.relnamespace = current_schema()::regnamespace AND a.attnum > 0 AND NOT a.attisdropped),
  (SELECT string_agg(conname || ':' || pg_get_constraintdef(oid), ',' ORDER BY conname)
     FROM pg_constraint WHERE connamespace = current_schema()::regnamespace),
  (SELECT string_agg(indexdef, ',' ORDER BY indexname) FROM pg_indexes WHERE schemaname = current_schema()),
  (SELECT string_agg(tgname || ':' || tgenabled::text || ':' || pg_get_triggerdef(oid), ',' ORDER BY tgname)
     FROM pg_trigger WHERE NOT tgisinternal),
  (SELECT string_agg(proname || ':' || md5(prosrc), ',' ORDER BY proname)
     FROM pg_proc WHERE pronamespace = current_schema()::regnamespace),
  (SELECT string_agg(extname || ':' || extversion, ',' ORDER BY extname) FROM pg_extension),
  (SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace
     WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'),
  (SELECT string_agg(version_num, ',') FROM llm_registry_schema_version),
  (SELECT count(*) FROM llm_models)::text,
  (SELECT count(*) FROM knowledge_bases)::text,
  (SELECT count(*) FROM registry_audit_events)::text,
  (SELECT count(*) FROM llm_registry_encryption)::text
))
"""

_RESET_SQL = [
    # the audit table refuses TRUNCATE by trigger; only the harness may, inside this transaction
    "ALTER TABLE registry_audit_events DISABLE TRIGGER registry_audit_events_no_truncate",
    "TRUNCATE registry_audit_events, knowledge_bases, llm_models, llm_registry_encryption RESTART IDENTITY",
    "ALTER TABLE registry_audit_events ENABLE TRIGGER registry_audit_events_no_truncate",
]


class MigratedDatabases:
    """Fresh migrated databases for tests: cloned from the template, then reused after a reset.

    CREATE DATABASE from the template costs 120-450 ms on this (shared, busy) machine.
    So a database a test has finished with is reset instead (its sessions terminated,
    the three tables truncated with their sequences restarted) and handed to the next
    test, but only if its signature (schema, triggers, functions, extensions, schema
    version, row counts) is then exactly the template's; a test that changed anything
    else gets its database dropped, and the next test a new clone. Measured: a reset
    takes about 10-30 ms.
    """

    def __init__(self, server: PostgresServer, template: str) -> None:
        self.server = server
        self.template = template
        self.free: list[str] = []
        self._signature: str | None = None
        self.reset_seconds: list[float] = []

    def _signature_of(self, name: str) -> str:
        import sqlalchemy
        from sqlalchemy import text

        engine = sqlalchemy.create_engine(self.server.url_for(name), poolclass=_null_pool())
        try:
            with engine.connect() as connection:
                return str(connection.execute(text(_SIGNATURE_SQL)).scalar_one())
        finally:
            engine.dispose()

    def acquire(self) -> str:
        """The name of a migrated, empty database no other test is using."""
        if self.free:
            return self.free.pop()
        name = self.server.new_name()
        self.server.create_database(name, template=self.template)
        if self._signature is None:
            self._signature = self._signature_of(name)
        return name

    def release(self, name: str) -> None:
        """Reset the database for the next test, or drop it if the reset cannot vouch for it."""
        import sqlalchemy
        from sqlalchemy import text

        started = time.perf_counter()
        try:
            with self.server.admin.connect() as connection:
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
            engine = sqlalchemy.create_engine(self.server.url_for(name), poolclass=_null_pool())
            try:
                with engine.begin() as connection:
                    connection.execute(text("SET LOCAL lock_timeout = '5s'"))
                    for statement in _RESET_SQL:
                        connection.execute(text(statement))
                    clean = connection.execute(text(_SIGNATURE_SQL)).scalar_one() == self._signature
            finally:
                engine.dispose()
        except sqlalchemy.exc.DBAPIError:
            clean = False
        if clean:
            self.reset_seconds.append(time.perf_counter() - started)
            self.free.append(name)
        else:
            self.server.drop_database(name)


@pytest.fixture(scope="session")
def _migrated_databases(pg_server: PostgresServer, _migrated_template: str) -> MigratedDatabases:
    pool = MigratedDatabases(pg_server, _migrated_template)
    pg_server.pools.append(pool)
    return pool


@contextlib.contextmanager
def _borrowed_database(server: PostgresServer, pool: MigratedDatabases) -> Iterator[str]:
    name = pool.acquire()
    try:
        yield server.url_for(name)
    finally:
        pool.release(name)


@pytest.fixture
def database_url(pg_server: PostgresServer, _migrated_databases: MigratedDatabases) -> Iterator[str]:
    """URL of a database at the head revision, empty, that no other test sees while this one runs."""
    with _borrowed_database(pg_server, _migrated_databases) as url:
        yield url


@pytest.fixture
def second_database_url(pg_server: PostgresServer, _migrated_databases: MigratedDatabases) -> Iterator[str]:
    """A second database like `database_url` (e.g. production beside staging)."""
    with _borrowed_database(pg_server, _migrated_databases) as url:
        yield url


@pytest.fixture
def unmigrated_database_url(pg_server: PostgresServer) -> Iterator[str]:
    """URL of a fresh, empty database without the registry schema (for `db upgrade` tests)."""
    name = pg_server.new_name("raw")
    url = pg_server.create_database(name)
    try:
        yield url
    finally:
        pg_server.drop_database(name)


@pytest.fixture
def engine(database_url: str) -> Iterator["Engine"]:
    """A SQLAlchemy engine (reconciler.db.create_engine) on the test's database."""
    from reconciler import db

    engine = db.create_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def connection(engine: "Engine") -> Iterator["Connection"]:
    """A connection on the test's database; the test commits what others must see."""
    with engine.connect() as connection:
        yield connection


# The fake LLM provider fixtures (fake_provider, closed_port_url): see tests/fakes/fixtures.py.
pytest_plugins = ["tests.fakes.fixtures"]


@pytest.fixture
def embedded_home() -> Iterator[Path]:
    """An empty directory for an embedded cluster (`LLM_REGISTRY_HOME=<it>`, or run with cwd=<it>).

    Made with mkdtemp and mode 0755 (not pytest's tmp_path, which root's postgres user
    cannot reach). Whatever cluster a test started in it, or in its `.llm-registry`, is
    stopped and removed afterwards.
    """
    from reconciler.embedded import EmbeddedCluster

    home = Path(tempfile.mkdtemp(prefix="llmreg-home-"))
    os.chmod(home, 0o755)
    try:
        yield home
    finally:
        homes = [home, home / ".llm-registry", *home.glob("*/.llm-registry")]
        for directory in homes:
            cluster = EmbeddedCluster(directory)
            try:
                cluster.stop()
            finally:
                # the short socket directory under /tmp used when the home's path is too
                # long, and the files' directory under /var/tmp when postgres cannot reach home
                for outside in (cluster.socket_dir, cluster.pg_dir):
                    if not outside.is_relative_to(home):
                        shutil.rmtree(outside, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
