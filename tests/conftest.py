"""The database harness: a real PostgreSQL server, one fresh database per test.

Which server, first match wins:

1. `LLM_REGISTRY_TEST_DATABASE_URL`: a URL whose user may CREATE DATABASE; test
   databases are made on that server with the same credentials.
2. a server at `LLM_REGISTRY_TEST_SERVER` (`host:port`, default `127.0.0.1:5432`;
   `none` skips this step), as user `postgres` or `root` without a password.
3. a throwaway cluster made with the embedded-default mechanism
   (`reconciler.db.EmbeddedCluster`) in a temporary directory, stopped and removed at
   the end of the run.

Isolation: each pytest run has its own prefix (`llmreg_t_<pid>_<random>`). Once per
run, a template database is created and migrated to head; each test that asks for a
database gets `CREATE DATABASE ... TEMPLATE <template>`
and it is dropped (`WITH (FORCE)`) after the test. Concurrent runs on the same server
never touch each other's databases.

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

import itertools
import os
import secrets
import shutil
import socket
import tempfile
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


class PostgresServer:
    """A PostgreSQL server this test run may create and drop databases on."""

    def __init__(self, admin_url: str, description: str) -> None:
        from reconciler.db import sqlalchemy_url

        self.admin_url = sqlalchemy_url(admin_url)
        self.description = description
        self.prefix = f"llmreg_t_{os.getpid()}_{secrets.token_hex(3)}"
        self._counter = itertools.count(1)
        self._admin: Engine | None = None

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
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"{clause}'))
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
    from reconciler.db import EmbeddedCluster

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


@pytest.fixture
def database_url(pg_server: PostgresServer, _migrated_template: str) -> Iterator[str]:
    """URL of a fresh database at the head revision, empty, dropped after the test."""
    name = pg_server.new_name()
    url = pg_server.create_database(name, template=_migrated_template)
    try:
        yield url
    finally:
        pg_server.drop_database(name)


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
    from reconciler.db import EmbeddedCluster

    home = Path(tempfile.mkdtemp(prefix="llmreg-home-"))
    os.chmod(home, 0o755)
    try:
        yield home
    finally:
        for directory in (home, home / ".llm-registry"):
            cluster = EmbeddedCluster(directory)
            try:
                cluster.stop()
            finally:
                # the short socket directory under /tmp used when the home's path is too long
                if not cluster.socket_dir.is_relative_to(home):
                    shutil.rmtree(cluster.socket_dir, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
