"""Database access: URL resolution, engines, migrations and the embedded default cluster.

Which database a command uses, first match wins:

1. `--database-url URL` on the command line;
2. the environment variable `LLM_REGISTRY_DATABASE_URL`;
3. the *embedded default*: a PostgreSQL cluster of the project's own, created on first
   use under `./.llm-registry/` (or `$LLM_REGISTRY_HOME`) from the PostgreSQL binaries
   on the machine, listening only on a Unix socket inside that directory.

URLs may be written `postgresql://...` (as psql and libpq users do); they are turned
into SQLAlchemy's `postgresql+psycopg://` form. Engines hide bound parameters from
error messages and logs (`hide_parameters=True`): parameters carry API keys and the
encryption passphrase.

Migrations are Alembic revisions shipped in `reconciler/migrations`, run over a
connection we open (no alembic.ini), recorded in the table `llm_registry_schema_version`.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import os
import pwd
import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Mapping

from reconciler.errors import RegistryError

if TYPE_CHECKING:  # SQLAlchemy is imported lazily: `validate` must not load it.
    from alembic.config import Config
    from sqlalchemy.engine import Connection, Engine, URL

DATABASE_URL_ENV = "LLM_REGISTRY_DATABASE_URL"
HOME_ENV = "LLM_REGISTRY_HOME"
BINDIR_ENV = "LLM_REGISTRY_PG_BINDIR"
DEFAULT_HOME_DIRNAME = ".llm-registry"

# The Alembic script location, as a package resource: works from a wheel or a checkout.
SCRIPT_LOCATION = "reconciler:migrations"

# Key of the transaction-level advisory lock that serialises `db upgrade` runs
# (an arbitrary constant: the first 8 bytes of sha256("llm-registry db upgrade")).
_UPGRADE_LOCK_KEY = int.from_bytes(hashlib.sha256(b"llm-registry db upgrade").digest()[:8], "big", signed=True)

INSTALL_HINT = (
    "install them with `apt-get install postgresql` (Debian/Ubuntu), `dnf install postgresql-server` "
    "(Fedora/RHEL) or `brew install postgresql` (macOS), set LLM_REGISTRY_PG_BINDIR to their directory, "
    "or point the command at a database with --database-url / LLM_REGISTRY_DATABASE_URL"
)


# --------------------------------------------------------------------------- URLs


def configured_database_url(option: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The URL the user gave (`--database-url`, then `LLM_REGISTRY_DATABASE_URL`), or None.

    None means "use the embedded default". An empty value counts as not given.
    """
    environ = os.environ if environ is None else environ
    if option:
        return option
    value = environ.get(DATABASE_URL_ENV, "")
    return value or None


def resolve_database_url(
    option: str | None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> str:
    """The URL a command should use; starts the embedded default cluster when none is given."""
    environ = os.environ if environ is None else environ
    url = configured_database_url(option, environ)
    if url is not None:
        return url
    return EmbeddedCluster(embedded_home(environ, cwd)).ensure_running()


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


def display_url(url: str) -> str:
    """The URL with its password masked, for messages."""
    try:
        return sqlalchemy_url(url).render_as_string(hide_password=True)
    except RegistryError:
        return "(invalid URL)"


def create_engine(url: str, **kwargs: object) -> "Engine":
    """An engine on `url` (postgresql+psycopg) that never puts bound parameters in errors or logs."""
    import sqlalchemy

    options: dict[str, object] = {
        # Parameters hold API keys and the passphrase: keep them out of exception text.
        "hide_parameters": True,
        "pool_pre_ping": True,
        "connect_args": {"connect_timeout": 10, "application_name": "llm-registry"},
    }
    options.update(kwargs)
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
        raise connection_error(url or engine.url.render_as_string(hide_password=True), error) from None
    with connection:
        yield connection


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
    config.set_main_option("version_table", _version_table())
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _version_table() -> str:
    from reconciler.tables import VERSION_TABLE

    return VERSION_TABLE


def head_revision() -> str:
    """The newest revision the package ships (no database needed)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None  # the package always ships at least one revision
    return head


def current_revision(connection: "Connection") -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"version_table": _version_table()})
    return context.get_current_revision()


@dataclass(frozen=True)
class UpgradeResult:
    """What `upgrade` did: the revision before and after (equal when nothing was to do)."""

    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        """True when at least one migration ran."""
        return self.before != self.after


def upgrade(connection: "Connection", revision: str = "head") -> UpgradeResult:
    """Migrate the database to `revision` in one transaction, and commit.

    A transaction-level advisory lock serialises concurrent upgrades, so two
    `db upgrade` runs on a fresh database do not both try to create the tables.
    """
    from alembic import command
    from sqlalchemy import text

    if connection.in_transaction():
        connection.commit()
    with connection.begin():
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK_KEY})
        before = current_revision(connection)
        command.upgrade(alembic_config(connection), revision)
        after = current_revision(connection)
    return UpgradeResult(before, after)


# The newest revision under migrations/versions. Every command checks the schema
# against it, so it is a constant rather than a question to Alembic (whose import
# costs more than the rest of the check); tests/integration/test_schema.py keeps the
# two equal.
SCHEMA_HEAD = "0001"


def stored_revision(connection: "Connection") -> str | None:
    """The revision in the version table, or None when there is none; never raises for a missing table.

    Plain SQL (no Alembic), and no failing statement: safe inside a caller's transaction.
    """
    from sqlalchemy import text

    table = connection.execute(text("SELECT to_regclass(:name)"), {"name": _version_table()}).scalar()
    if table is None:
        return None
    return connection.execute(text(f"SELECT version_num FROM {_version_table()} LIMIT 1")).scalar()


def require_schema_at_head(connection: "Connection") -> None:
    """Raise a RegistryError naming `llm-registry db upgrade` unless the schema is at head."""
    current = stored_revision(connection)
    if current == SCHEMA_HEAD:
        return
    head = head_revision()
    if current is None:
        raise RegistryError(
            "the database has no llm-registry schema yet: run `llm-registry db upgrade` first"
        )
    raise RegistryError(
        f"the database schema is at revision {current}, this llm-registry needs {head}: "
        "run `llm-registry db upgrade` first"
    )


# --------------------------------------------------------------------------- embedded cluster


def embedded_home(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Path:
    """Directory of the embedded default cluster: `$LLM_REGISTRY_HOME`, else `./.llm-registry`."""
    environ = os.environ if environ is None else environ
    configured = environ.get(HOME_ENV, "")
    if configured:
        return Path(configured).expanduser().absolute()
    return (cwd or Path.cwd()).absolute() / DEFAULT_HOME_DIRNAME


_USUAL_BINDIRS = (
    "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu
    "/usr/pgsql-*/bin",  # PGDG on RHEL, Fedora
    "/usr/local/pgsql/bin",  # built from source
    "/opt/homebrew/opt/postgresql*/bin",  # Homebrew, Apple silicon
    "/usr/local/opt/postgresql*/bin",  # Homebrew, Intel
    "/Applications/Postgres.app/Contents/Versions/*/bin",
)


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path)) or (0,)


def find_postgres_bindir(environ: Mapping[str, str] | None = None) -> Path:
    """The directory holding `initdb`, `pg_ctl` and `postgres`.

    Looked up in order: `$LLM_REGISTRY_PG_BINDIR`, `pg_config --bindir`, `initdb` on
    PATH, then the usual install paths (newest version first). A RegistryError with
    the install command when none has the server binaries.
    """
    environ = os.environ if environ is None else environ
    candidates: list[Path] = []
    if environ.get(BINDIR_ENV):
        candidates.append(Path(environ[BINDIR_ENV]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            completed = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            if completed.returncode == 0 and completed.stdout.strip():
                candidates.append(Path(completed.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for pattern in _USUAL_BINDIRS:
        candidates.extend(Path(p) for p in sorted(glob.glob(pattern), key=_version_key, reverse=True))
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return directory
    raise RegistryError(f"no PostgreSQL server binaries (initdb, pg_ctl, postgres) found: {INSTALL_HINT}")


# Unix socket paths are limited to 107 bytes (sun_path); keep a margin.
_SOCKET_PATH_LIMIT = 100
_PORT = 5432  # names the socket file only: the cluster listens on no TCP port
_SUPERUSER = "llm_registry"
_DATABASE = "llm_registry"


class EmbeddedCluster:
    """The embedded default: a PostgreSQL cluster under `home`, reachable only by Unix socket.

    Layout of `home`:
        lock            flock serialising first creation and start (concurrent commands)
        postgres/       owned by the server's user, mode 0700
            data/       the cluster (initdb)
            run/        the socket directory (unless its path is too long, see socket_dir)
            server.log  the server's log

    Authentication is `trust` for local connections; only the server's user (and root)
    can enter the 0700 socket directory, which is what keeps others out.

    PostgreSQL refuses to run as root; when we are root the server runs as the user
    `postgres` (or `nobody`), which then owns `home/postgres`.
    """

    def __init__(
        self,
        home: Path,
        *,
        environ: Mapping[str, str] | None = None,
        server_settings: Mapping[str, str] | None = None,
    ) -> None:
        self.home = home
        self.environ = os.environ if environ is None else environ
        # Extra `-c name=value` settings at start (the test harness turns fsync off).
        self.server_settings = dict(server_settings or {})
        self.pg_dir = home / "postgres"
        self.data_dir = self.pg_dir / "data"
        self.log_file = self.pg_dir / "server.log"
        self.lock_file = home / "lock"

    # -- locations

    @property
    def socket_dir(self) -> Path:
        """Where the socket lives: `home/postgres/run`, or a short per-home dir under /tmp.

        The fallback is keyed by a hash of the home path, so every command on the same
        home computes the same directory.
        """
        preferred = self.pg_dir / "run"
        if len(str(preferred / f".s.PGSQL.{_PORT}.lock")) <= _SOCKET_PATH_LIMIT:
            return preferred
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:16]
        return Path("/tmp") / f"llm-registry-{digest}"

    def url(self, database: str = _DATABASE) -> str:
        """The SQLAlchemy URL of a database in this cluster."""
        from sqlalchemy.engine import URL

        return URL.create(
            "postgresql+psycopg",
            username=_SUPERUSER,
            database=database,
            query={"host": str(self.socket_dir), "port": str(_PORT)},
        ).render_as_string(hide_password=False)

    # -- running binaries as the right user

    def _server_user(self) -> pwd.struct_passwd | None:
        """None when we may run the server ourselves; else the unprivileged account to use."""
        if os.geteuid() != 0:
            return None
        for name in ("postgres", "nobody"):
            try:
                return pwd.getpwnam(name)
            except KeyError:
                continue
        raise RegistryError(
            "running as root, and PostgreSQL refuses to run as root: create a user `postgres` "
            "for the embedded cluster, or use --database-url"
        )

    def _run(self, args: list[str], *, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        user = self._server_user()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C",
            "LANG": "C",
            "HOME": user.pw_dir if user else os.environ.get("HOME", "/"),
        }
        kwargs: dict[str, object] = {}
        if user is not None:
            kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        try:
            completed = subprocess.run(
                args,
                capture_output=True,
                text=True,
                env=env,
                cwd="/",
                timeout=timeout,
                **kwargs,  # type: ignore[arg-type]
            )
        except subprocess.TimeoutExpired:
            raise RegistryError(f"{Path(args[0]).name} did not finish within {timeout:.0f} s") from None
        if check and completed.returncode != 0:
            detail = (completed.stderr or completed.stdout).strip().splitlines()
            raise RegistryError(
                f"{Path(args[0]).name} failed for the embedded cluster in {self.pg_dir}: "
                f"{detail[-1] if detail else 'exit ' + str(completed.returncode)}"
                + (f" (see {self.log_file})" if self.log_file.exists() else "")
            )
        return completed

    def _chown(self, path: Path) -> None:
        user = self._server_user()
        if user is not None:
            os.chown(path, user.pw_uid, user.pw_gid)

    def _check_reachable(self) -> None:
        """When the server runs as another user, make sure it can reach its directory."""
        user = self._server_user()
        if user is None:
            return
        test = shutil.which("test") or "/usr/bin/test"
        if self._run([test, "-w", str(self.pg_dir)], check=False).returncode != 0:
            raise RegistryError(
                f"the embedded cluster runs as user {user.pw_name!r} (PostgreSQL refuses root), "
                f"which cannot reach {self.pg_dir}: set LLM_REGISTRY_HOME to a directory every user "
                "can traverse (e.g. under /var/tmp), or use --database-url"
            )

    # -- lifecycle

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.lock_file, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def initialized(self) -> bool:
        """True when the cluster's data directory exists."""
        return (self.data_dir / "PG_VERSION").exists()

    def running(self) -> bool:
        """True when the cluster's server is up (pg_ctl status)."""
        if not self.initialized():
            return False
        bindir = find_postgres_bindir(self.environ)
        return self._run([str(bindir / "pg_ctl"), "status", "-D", str(self.data_dir)], check=False).returncode == 0

    def _prepare_dirs(self) -> None:
        self.pg_dir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.pg_dir, 0o700)
        self._chown(self.pg_dir)
        socket_dir = self.socket_dir
        socket_dir.mkdir(mode=0o700, parents=False, exist_ok=True)
        os.chmod(socket_dir, 0o700)
        self._chown(socket_dir)

    def _initdb(self, bindir: Path) -> None:
        self._run(
            [
                str(bindir / "initdb"),
                "-D", str(self.data_dir),
                "--username", _SUPERUSER,
                "--auth", "trust",
                "--encoding", "UTF8",
                "--no-locale",
                "--no-instructions",
            ]
        )  # fmt: skip
        # Never listen on TCP: the socket directory is the only way in.
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# llm-registry embedded cluster\n"
                "listen_addresses = ''\n"
                f"port = {_PORT}\n"
                "unix_socket_permissions = 0700\n"
            )

    def _start(self, bindir: Path) -> None:
        settings = {"unix_socket_directories": str(self.socket_dir), **self.server_settings}
        options = " ".join(f"-c {shlex.quote(f'{name}={value}')}" for name, value in settings.items())
        self._run(
            [
                str(bindir / "pg_ctl"), "start",
                "-D", str(self.data_dir),
                "-l", str(self.log_file),
                "-w", "-t", "60",
                "-o", options,
            ]
        )  # fmt: skip

    def _create_database(self) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(
                    host=str(self.socket_dir), port=_PORT, user=_SUPERUSER, dbname="postgres", autocommit=True
                ) as connection:
                    exists = connection.execute(
                        "SELECT 1 FROM pg_database WHERE datname = %s", (_DATABASE,)
                    ).fetchone()
                    if not exists:
                        connection.execute(f'CREATE DATABASE "{_DATABASE}"')
                return
            except psycopg.OperationalError:
                # "the database system is starting up": pg_ctl -w returned a hair early.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def ensure_running(self) -> str:
        """Create (first use) and start the cluster if needed; return the registry database's URL.

        Safe to call from several processes at once: a file lock serialises creation and
        start, and whoever comes second finds the server running.
        """
        bindir = find_postgres_bindir(self.environ)
        with self._locked():
            self._prepare_dirs()
            self._check_reachable()
            if not self.initialized():
                if self.data_dir.exists():
                    # a half-made data directory from an interrupted initdb
                    shutil.rmtree(self.data_dir)
                self._initdb(bindir)
            if self._run([str(bindir / "pg_ctl"), "status", "-D", str(self.data_dir)], check=False).returncode != 0:
                self._start(bindir)
            self._create_database()
        return self.url()

    def stop(self) -> bool:
        """Stop the server (fast shutdown). False when it was not running."""
        if not self.initialized():
            return False
        bindir = find_postgres_bindir(self.environ)
        with self._locked():
            if self._run([str(bindir / "pg_ctl"), "status", "-D", str(self.data_dir)], check=False).returncode != 0:
                return False
            self._run([str(bindir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60"])
            return True
