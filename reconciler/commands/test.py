"""`llm-registry test [DIR...] [--model NAME...]`: connection tests only; writes nothing but, with --from-db, audit events.

Tests the models of the registry directory (keys from their `${env:NAME}`
references) or, with `--from-db`, the models stored in the database (keys
decrypted). LiteLLM is imported only once tests actually run, inside
`reconciler.connection`, never when this module is imported (`--help` stays fast).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import click

from reconciler.commands._common import connection_test_options, database_url_option, directories_argument
from reconciler.console import is_quiet
from reconciler.connection import (
    ConnectionResult,
    ConnectionTarget,
    run_connection_tests,
    target_from_model,
)
from reconciler.diagnostics import escape_text, json_text
from reconciler.errors import EXIT_ERROR, EXIT_OK, RegistryError

if TYPE_CHECKING:  # pragma: no cover
    from reconciler.spec import ModelDefinition

_COLUMNS = ("NAME", "PROVIDER", "TYPE", "STATUS", "LATENCY", "MESSAGE")


def _env_key(model: "ModelDefinition", environ: Mapping[str, str]) -> str | None:
    """The key a model's `${env:NAME}` reference points to; None when unset or empty."""
    from reconciler.spec import env_reference_name

    if not model.api_key:
        return None
    name = env_reference_name(model.api_key)
    return (environ.get(name) or None) if name else None


def select_models(models: Sequence[Any], names: Sequence[str], where: str = "") -> tuple[list[Any], list[str]]:
    """(models to test, names of inactive models skipped).

    With NAMEs: exactly those, active or not, in the order given; an unknown name is
    an error listing the known ones. Without: every active model.
    """
    by_name = {model.name: model for model in models}
    if names:
        unknown = [name for name in names if name not in by_name]
        if unknown:
            known = ", ".join(sorted(by_name)) or "(none)"
            plural = "s" if len(unknown) > 1 else ""
            raise RegistryError(f"unknown model{plural}{where}: {', '.join(unknown)}; known: {known}")
        return [by_name[name] for name in dict.fromkeys(names)], []
    chosen = [model for model in models if _is_active(model)]
    skipped = [model.name for model in models if not _is_active(model)]
    return chosen, skipped


def _is_active(model: Any) -> bool:
    record = getattr(model, "record", None)  # a StoredModel (database row)
    if record is not None:
        return bool(record.get("is_active", True))
    return bool(getattr(model, "active", True))


def targets_from_directory(
    directory: Path | Sequence[Path], names: Sequence[str], environ: Mapping[str, str]
) -> tuple[list[ConnectionTarget], list[str]]:
    """Validate the registry directories (diagnostics printed as `validate` does) and build the targets."""
    from reconciler.commands._common import load_registry_reporting

    registry, _ = load_registry_reporting(directory)
    models, skipped = select_models(registry.models, names)
    return [target_from_model(model, _env_key(model, environ)) for model in models], skipped


STORED_KEY_SOURCE = "the API key stored in the registry"


def targets_from_database(
    database_url: str | None, names: Sequence[str], environ: Mapping[str, str]
) -> tuple[list[ConnectionTarget], list[str], list[str], set[str]]:
    """Read the stored models and decrypt their keys: (targets, skipped inactive, model ids, undecryptable ids)."""
    from reconciler import secrets
    from reconciler.commands._common import open_database
    from reconciler.state import read_state, stored_key_names

    with open_database(database_url) as connection:
        state = read_state(connection)
        models, skipped = select_models(state.models, names, where=" in the database")
        # Every row holding a key, fingerprinted or not (a row from the admin page may have none yet).
        holding = stored_key_names(connection)
        with_keys = [model.id for model in models if model.name in holding]
        keys: Mapping[str, str] = {}
        undecryptable: set[str] = set()
        if with_keys:
            # One row that does not open is that model's failure; the others are tested.
            decrypted = secrets.read_api_keys(connection, with_keys, secrets.encryption_passphrase(environ))
            keys = decrypted.keys
            undecryptable = {model.id for model in models if model.name in decrypted.undecryptable}
        connection.rollback()  # read only: end the transaction before the (slow) tests
    targets = [
        ConnectionTarget(
            name=model.name,
            type=model.record["type"],
            provider=model.record["provider"],
            model_id=model.record["model_id"],
            api_endpoint=model.record.get("api_endpoint"),
            api_version=model.record.get("api_version"),
            api_key=keys.get(model.id),
            dimensions=model.record.get("dimensions") if model.record["type"] == "embedding" else None,
            key_source=STORED_KEY_SOURCE,
        )
        for model in models
    ]
    return targets, skipped, [model.id for model in models], undecryptable


def record_audit_events(
    database_url: str | None,
    model_ids: Sequence[str],
    results: Sequence[ConnectionResult],
    environ: Mapping[str, str],
    environment: str | None = None,
) -> str | None:
    """One MODEL_CONNECTION_TESTED event per tested model, in one transaction, under `environment` (as apply records it).

    Returns None when recorded, else why not (a read-only role may test but not write):
    the tests ran all the same, and their outcome decides the exit code.
    """
    from sqlalchemy.exc import DBAPIError

    from reconciler.audit import connection_tested_event, default_actor, new_run_id, write_audit_events
    from reconciler.commands._common import open_database

    events = [connection_tested_event(result, model_id) for model_id, result in zip(model_ids, results)]
    if not events:
        return None
    try:
        with open_database(database_url) as connection:
            write_audit_events(
                connection, events, run_id=new_run_id(), actor=default_actor(environ),
                source_revision=environ.get("GITHUB_SHA") or None, environment=environment,
            )
            connection.commit()
    except DBAPIError as error:
        original = getattr(error, "orig", None) or error
        return (str(original).strip().splitlines() or [type(original).__name__])[0]
    return None


class _Progress:
    """Progress on stderr: a line at once, then one per finished test (rewritten in place on a terminal).

    The first line comes before LiteLLM is imported (seconds on a loaded machine), so
    that nobody wonders whether the command hangs. Nothing under --quiet.
    """

    def __init__(self, total: int, enabled: bool, terminal: bool = False) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.enabled = enabled
        self.terminal = terminal

    def start(self, concurrency: int, timeout: float) -> None:
        if self.enabled:
            click.echo(f"Testing {self.total} model{'s' * (self.total != 1)} "
                       f"({concurrency} at a time, timeout {timeout:g} s): loading provider clients...", err=True)

    def __call__(self, result: ConnectionResult) -> None:
        self.done += 1
        self.failed += not result.ok
        if self.enabled:
            failed = f", {self.failed} failed" if self.failed else ""
            line = f"[{self.done}/{self.total}{failed}] {escape_text(result.name)}: {result.status} ({result.latency_ms} ms)"
            if self.terminal:
                click.echo(f"\r\033[K{line}", err=True, nl=False)
            else:
                click.echo(line, err=True)

    def finish(self) -> None:
        if self.enabled and self.terminal and self.done:
            click.echo("\r\033[K", err=True, nl=False)


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def render_table(targets: Sequence[ConnectionTarget], results: Sequence[ConnectionResult]) -> str:
    """The result table (name, provider, type, status, latency, message) and a summary line."""
    rows: list[tuple[str, ...]] = [_COLUMNS]
    for target, result in zip(targets, results):
        cells = (result.name, target.provider, target.type, result.status, f"{result.latency_ms} ms", result.message)
        rows.append(tuple(escape_text(cell) for cell in cells))
    failed = sum(not r.ok for r in results)
    verdict = f"{len(results) - failed} passed, {failed} failed"
    return f"{_table(rows)}\n\n{verdict}"


def render_json(targets: Sequence[ConnectionTarget], results: Sequence[ConnectionResult], skipped: Sequence[str]) -> str:
    """`{"results": [...], "passed": N, "failed": M, "skipped_inactive": [...]}`."""
    items = [
        {
            "name": result.name,
            "provider": target.provider,
            "type": target.type,
            "model_id": target.model_id,
            "status": result.status,
            "ok": result.ok,
            "latency_ms": result.latency_ms,
            "message": result.message,
        }
        for target, result in zip(targets, results)
    ]
    failed = sum(not r.ok for r in results)
    payload = {"results": items, "passed": len(results) - failed, "failed": failed, "skipped_inactive": list(skipped)}
    return json_text(payload, indent=2)


@click.command("test")
@directories_argument
@click.option("--model", "names", multiple=True, metavar="NAME",
              help="Test only this model, active or not (repeatable). Default: every active model.")
@connection_test_options
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="table for people, json for scripts.")
@click.option("--from-db", "from_db", is_flag=True,
              help="Test the models stored in the database (keys decrypted) instead of the directory's, "
                   "and record a MODEL_CONNECTION_TESTED audit event for each.")
@database_url_option
@click.option("--environment", metavar="NAME",
              help="With --from-db: the environment recorded in the audit events, as apply records it.")
def command(
    directories: tuple[Path, ...], names: tuple[str, ...], concurrency: int, timeout: float, output_format: str,
    from_db: bool, database_url: str | None, environment: str | None,
) -> int:
    """Test that models answer: the key works, the endpoint is reachable, the model exists.

    \b
    Embedding models embed one short string and must return vectors of their
    declared dimensions; generation and NER models must return a one-token
    completion. Tests every active model of the registry in each DIR (default:
    registry.d), or only the --model NAMEs given (active or not). Keys come from the
    ${env:NAME} references of the registry or, with --from-db, from the database
    (LLM_REGISTRY_ENCRYPTION_KEY decrypts them). Exits 1 if any test fails.
    """
    if not from_db:
        if database_url is not None:
            raise RegistryError("--database-url needs --from-db (the directory's models are tested otherwise)")
        targets, skipped = targets_from_directory(directories or (Path("registry.d"),), names, os.environ)
        return run_and_report(targets, skipped, concurrency=concurrency, timeout=timeout, output_format=output_format)
    if directories:
        raise RegistryError("--from-db tests the models stored in the database: give no DIR (select with --model)")
    from reconciler.secrets import undecryptable_message

    targets, skipped, model_ids, undecryptable = targets_from_database(database_url, names, os.environ)
    testable = [t for t, model_id in zip(targets, model_ids) if model_id not in undecryptable]
    tested = iter(test_targets(testable, concurrency=concurrency, timeout=timeout))
    # An undecryptable key is that model's failure; the others are tested.
    results = [
        ConnectionResult(target.name, "key_undecryptable", 0, undecryptable_message([target.name]) + "; not tested")
        if model_id in undecryptable
        else next(tested)
        for target, model_id in zip(targets, model_ids)
    ]
    not_recorded = record_audit_events(database_url, model_ids, results, os.environ, environment)
    print_results(targets, results, skipped, output_format)
    if not_recorded is not None:
        click.echo(
            f"warning: could not record the results in the audit trail ({escape_text(not_recorded)}); "
            "the tests ran and their outcome decides the exit code",
            err=True,
        )
    return EXIT_OK if all(r.ok for r in results) else EXIT_ERROR


def run_and_report(
    targets: Sequence[ConnectionTarget],
    skipped: Sequence[str],
    *,
    concurrency: int,
    timeout: float,
    output_format: str,
) -> int:
    """Run the tests with progress on a terminal, print the results, return the exit code."""
    results = test_targets(targets, concurrency=concurrency, timeout=timeout)
    print_results(targets, results, skipped, output_format)
    return EXIT_OK if all(r.ok for r in results) else EXIT_ERROR


def test_targets(targets: Sequence[ConnectionTarget], *, concurrency: int, timeout: float) -> list[ConnectionResult]:
    """Run the connection tests, showing progress when stderr is a terminal."""
    if not targets:
        return []
    progress = _Progress(len(targets), enabled=not is_quiet(), terminal=_stderr_is_tty())
    progress.start(concurrency, timeout)
    try:
        return run_connection_tests(targets, concurrency=concurrency, timeout=timeout, on_result=progress)
    finally:
        progress.finish()


test_targets.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def print_results(
    targets: Sequence[ConnectionTarget], results: Sequence[ConnectionResult], skipped: Sequence[str], output_format: str
) -> None:
    """Print the table (or JSON) to stdout; notes to stderr."""
    if output_format == "json":
        click.echo(render_json(targets, results, skipped))
        return
    if skipped and not is_quiet():
        click.echo(f"skipped {len(skipped)} inactive model{'s' * (len(skipped) != 1)} "
                   f"({escape_text(', '.join(skipped))}); name them to test them", err=True)
    if not targets:
        click.echo("no models to test")
        return
    click.echo(render_table(targets, results))


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False
