"""The embedded default: a PostgreSQL cluster of the project's own, for when no URL is given.

Created on first use from the machine's PostgreSQL binaries (`initdb`, `pg_ctl`,
`postgres`), reachable only by a Unix socket in a 0700 directory, started on demand
and stopped by `llm-registry db stop`. Which URL a command uses, and whether it may
fall back to this cluster at all, is `reconciler.db`'s business; this module only
makes, starts, finds and stops clusters.

Where the files go: the project's home is `$LLM_REGISTRY_HOME`, else `./.llm-registry`.
The cluster's files live in `<home>/postgres`, except when we run as root and the
server's user (PostgreSQL refuses root) cannot traverse the home: a clone under
`/root` or a `mktemp -d` folder. Then they go to `/var/tmp/llm-registry-<hash of the
home>` and `<home>/cluster-dir` records where, so that every later command (and
`db stop`) finds them; the tool names the location in its messages.
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
import stat
import subprocess
import time
from pathlib import Path
from typing import Iterator, Mapping

from reconciler.errors import RegistryError

HOME_ENV = "LLM_REGISTRY_HOME"
BINDIR_ENV = "LLM_REGISTRY_PG_BINDIR"
DEFAULT_HOME_DIRNAME = ".llm-registry"
# Written in the home when the cluster's files live elsewhere (see the module docstring).
CLUSTER_POINTER = "cluster-dir"
# Parent of the per-project cluster directories used when the home is out of the server's reach.
FALLBACK_PARENT = Path("/var/tmp")

INSTALL_HINT = (
    "install them with `apt-get install postgresql` (Debian/Ubuntu), `dnf install postgresql-server` "
    "(Fedora/RHEL) or `brew install postgresql` (macOS), set LLM_REGISTRY_PG_BINDIR to their directory, "
    "or point the command at a database with --database-url / LLM_REGISTRY_DATABASE_URL"
)


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


def require_postgres_binaries() -> None:
    """For scripts: print the one-step install hint and exit 1 when there are no server binaries."""
    import sys

    try:
        find_postgres_bindir()
    except RegistryError as error:
        print(f"error: {error.message}", file=sys.stderr)
        raise SystemExit(1) from None


# Unix socket paths are limited to 107 bytes (sun_path); keep a margin.
_SOCKET_PATH_LIMIT = 100
_PORT = 5432  # names the socket file only: the cluster listens on no TCP port
_SUPERUSER = "llm_registry"
_DATABASE = "llm_registry"


class EmbeddedCluster:
    """The embedded default: a PostgreSQL cluster under `home`, reachable only by Unix socket.

    Layout of `home`:
        lock            flock serialising first creation and start (concurrent commands)
        cluster-dir     only when the files live outside the home: their directory
        postgres/       owned by the server's user, mode 0700 (the `pg_dir`)
            data/       the cluster (initdb)
            run/        the socket directory (unless its path is too long, see socket_dir)
            server.log  the server's log

    Authentication is `trust` for local connections; only the server's user (and root)
    can enter the 0700 socket directory, which is what keeps others out.

    PostgreSQL refuses to run as root; when we are root the server runs as the user
    `postgres` (or `nobody`), which then owns `pg_dir`; when that user cannot
    traverse `home`, `pg_dir` is a per-home directory under /var/tmp (module docstring).
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
        self.lock_file = home / "lock"

    # -- locations

    @property
    def pg_dir(self) -> Path:
        """The cluster's own directory: `home/postgres`, or the one `home/cluster-dir` records."""
        try:
            recorded = (self.home / CLUSTER_POINTER).read_text().strip()
        except OSError:
            recorded = ""
        return Path(recorded) if recorded else self.home / "postgres"

    @property
    def data_dir(self) -> Path:
        """The PostgreSQL data directory (initdb's -D)."""
        return self.pg_dir / "data"

    @property
    def log_file(self) -> Path:
        """The server's log."""
        return self.pg_dir / "server.log"

    def fallback_dir(self) -> Path:
        """Where the files go when the server's user cannot reach the home: keyed by the home's path."""
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:16]
        return FALLBACK_PARENT / f"llm-registry-{digest}"

    def describe(self) -> str:
        """How messages name this cluster: its home, and where its files are when elsewhere."""
        if self.pg_dir == self.home / "postgres":
            return f"the embedded cluster in {self.home}"
        return f"the embedded cluster of {self.home} (files in {self.pg_dir})"

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

    def _choose_location(self) -> None:
        """Before the first initdb: put the files outside the home if the server's user cannot reach it.

        Decided once and recorded in `home/cluster-dir`; a cluster already in the home stays there.
        """
        user = self._server_user()
        pointer = self.home / CLUSTER_POINTER
        if user is None or pointer.exists() or (self.home / "postgres" / "data").exists():
            return
        test = shutil.which("test") or "/usr/bin/test"
        if self._run([test, "-x", str(self.home)], check=False).returncode == 0:
            return
        temporary = pointer.with_name(pointer.name + ".tmp")
        temporary.write_text(f"{self.fallback_dir()}\n")
        os.replace(temporary, pointer)

    def _make_owned_dir(self, path: Path) -> None:
        """mkdir (0700) owned by the server's user; refuses a symlink or someone else's directory.

        The fallback lives in world-writable /var/tmp: another local user could have put
        a symlink or a directory of theirs there first.
        """
        path.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(path)
        user = self._server_user()
        allowed = {os.geteuid()} | ({user.pw_uid} if user else set())
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode) or info.st_uid not in allowed:
            raise RegistryError(
                f"{path} is not a directory of ours (a symlink or owned by another user): "
                f"remove it, or set LLM_REGISTRY_HOME elsewhere"
            )
        os.chmod(path, 0o700)
        self._chown(path)

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
        self._choose_location()
        self._make_owned_dir(self.pg_dir)
        self._make_owned_dir(self.socket_dir)

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
