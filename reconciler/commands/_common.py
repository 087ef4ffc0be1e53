"""What the commands that use the database share: the `--database-url` option and opening it.

Usage in a command module (import heavy modules inside the function body):

    from reconciler.commands._common import database_url_option, open_database

    @click.command("list")
    @database_url_option
    def command(database_url: str | None) -> int:
        with open_database(database_url) as connection:   # schema checked to be at head
            ...
        return EXIT_OK

This module itself imports only Click, so that `--help` and `validate` stay free of
SQLAlchemy.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence, TypeVar

import click

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.engine import Connection, Engine

    from reconciler.diagnostics import Diagnostic
    from reconciler.spec import RegistrySpec
    from reconciler.validate import ValidationResult

F = TypeVar("F", bound=Callable[..., Any])

DATABASE_URL_HELP = (
    "PostgreSQL URL of the registry, e.g. postgresql://user@host/db "
    "[default: $LLM_REGISTRY_DATABASE_URL, else the embedded cluster in ./.llm-registry; "
    "in CI, or with the variable set but empty, an error]"
)
EMBEDDED_HELP = (
    "Use the embedded cluster (./.llm-registry, or $LLM_REGISTRY_HOME) explicitly, "
    "even in CI where a missing URL is otherwise an error."
)
# Where the --embedded flag is kept for the duration of a command (Click's ctx.meta),
# so that every command has it without a parameter of its own.
_EMBEDDED_META = "llm_registry.embedded"


def _remember_embedded(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta[_EMBEDDED_META] = True
    return value


def embedded_requested() -> bool:
    """True when the running command was given `--embedded` (or LLM_REGISTRY_[<COMMAND>_]EMBEDDED=1)."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(_EMBEDDED_META))


def database_url_option(function: F) -> F:
    """Add `--database-url URL` (parameter `database_url`, None when not given) and `--embedded`.

    The environment variable, the embedded default and the refusal to fall back to it
    in CI are applied by `reconciler.db.resolve_database_url`, not by Click, so that one
    function owns the order. `--embedded` reaches it through `embedded_requested()`.
    """
    function = click.option(
        "--embedded",
        is_flag=True,
        expose_value=False,  # its variables (LLM_REGISTRY_[<COMMAND>_]EMBEDDED) come from cli.py
        callback=_remember_embedded,
        help=EMBEDDED_HELP,
    )(function)
    return click.option(
        "--database-url",
        "database_url",
        metavar="URL",
        default=None,
        help=DATABASE_URL_HELP,
    )(function)


def connection_test_options(function: F) -> F:
    """Add `--concurrency N` and `--timeout S`: the same bounds and defaults for every
    command that runs connection tests (apply, test)."""
    from reconciler.connection import DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT, MAX_CONCURRENCY, MAX_TIMEOUT

    function = click.option(
        "--timeout", default=DEFAULT_TIMEOUT, show_default=True, type=click.FloatRange(0, MAX_TIMEOUT, min_open=True),
        help="Seconds each connection test may take; there are no retries.",
    )(function)
    return click.option(
        "--concurrency", default=DEFAULT_CONCURRENCY, show_default=True, type=click.IntRange(1, MAX_CONCURRENCY),
        help="Connection tests running at once.",
    )(function)


def resolve_url(database_url: str | None) -> str:
    """The command's database URL (`db.resolve_database_url`, with this command's --embedded)."""
    from reconciler import db

    return db.resolve_database_url(database_url, embedded=embedded_requested())


@contextlib.contextmanager
def database_engine(database_url: str | None, *, require_head: bool = True) -> Iterator["Engine"]:
    """An engine on the command's database, checked reachable and (by default) at the head revision.

    Resolves the URL (`resolve_url`: option > LLM_REGISTRY_DATABASE_URL > embedded default,
    starting the embedded cluster if needed, refused in CI). A database that cannot be reached, or whose schema is
    not at head, is a RegistryError (the latter names `llm-registry db upgrade`). The
    engine is disposed on exit.
    """
    from reconciler import db

    url = resolve_url(database_url)
    engine = db.create_engine(url)
    try:
        with db.connect(engine, url) as connection:
            if require_head:
                db.require_schema_at_head(connection)
        yield engine
    finally:
        engine.dispose()


@contextlib.contextmanager
def open_database(
    database_url: str | None, *, require_head: bool = True, isolation_level: str | None = None
) -> Iterator["Connection"]:
    """One connection on the command's database (see `database_engine`); rolled back unless committed.

    `isolation_level` (e.g. "REPEATABLE READ", one snapshot for every read) applies
    from the first statement on. With `require_head=False` no statement has run yet, so
    the caller may begin its own transaction.
    """
    from reconciler import db

    url = resolve_url(database_url)
    engine = db.create_engine(url)
    try:
        with db.connect(engine, url) as connection:
            if isolation_level is not None:
                connection.execution_options(isolation_level=isolation_level)
            if require_head:
                db.require_schema_at_head(connection)
            yield connection
    finally:
        engine.dispose()


def directories_argument(function: F) -> F:
    """Add the `[DIR]...` argument (parameter `directories`, a tuple; empty means registry.d)."""
    from pathlib import Path

    return click.argument("directories", nargs=-1, metavar="[DIR]...", type=click.Path(path_type=Path))(function)


def load_registry_reporting(
    directory: "Path | Sequence[Path]", *, annotate: bool = False
) -> tuple["RegistrySpec", "ValidationResult"]:
    """Validate the registry (one or several directories) for a command that goes on further.

    Plan-time `${env:NAME}` references are resolved from the environment. Diagnostics
    are printed as `validate` prints them (stderr, file/line order), and with
    `annotate` also as GitHub annotations on stdout; an invalid registry raises
    InvalidRegistry (exit 1) before anything else happens. No directory at all means
    `registry.d`.
    """
    import os
    from pathlib import Path

    from reconciler.diagnostics import format_github, format_text
    from reconciler.pipeline import InvalidRegistry, load_registry

    def report(diagnostics: "Iterable[Diagnostic]") -> None:
        for diagnostic in diagnostics:
            click.echo(format_text(diagnostic), err=True)
            if annotate:
                click.echo(format_github(diagnostic))

    directories = [directory] if isinstance(directory, Path) else list(directory) or [Path("registry.d")]
    try:
        registry, validation = load_registry(directories, os.environ)
    except InvalidRegistry as invalid:
        report(invalid.result.diagnostics)
        raise
    report(validation.diagnostics)
    return registry, validation
