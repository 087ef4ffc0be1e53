"""`llm-registry apply [DIR | PLANFILE]`: test the connections, then write the plan in one transaction."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Sequence

import click

from reconciler.commands._common import database_url_option, load_registry_reporting, open_database
from reconciler.commands.plan import text_style, use_colour
from reconciler.diagnostics import escape_text, json_text
from reconciler.errors import EXIT_ERROR, EXIT_OK, RegistryError
from reconciler.target import ENVIRONMENT_ENV, ENVIRONMENT_HELP


def _is_planfile(path: Path) -> bool:
    if not path.is_file() or path.suffix in (".yaml", ".yml"):
        return False
    with path.open("rb") as handle:
        return handle.read(1) == b"{"


def _stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def _event_lines(events: Sequence[Any]) -> list[str]:
    return [
        f"  {event.event_type:<24} {escape_text(event.model_name):<28} {json_text(event.details, sort_keys=True, default=str)}"
        for event in events
    ]


@click.command("apply")
@click.argument("target", default="registry.d", type=click.Path(path_type=Path))
@database_url_option
@click.option("--dry-run", is_flag=True, help="Do everything, connection tests and writes included, then roll back.")
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation (needed without a terminal, e.g. in CI).")
@click.option("--skip-connection-tests", is_flag=True, help="Write without testing connections (recorded in the audit trail).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=8, show_default=True, help="Connection tests run at once.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True, help="Seconds per connection test.")
@click.option("--lock-timeout", type=click.FloatRange(min=0), default=60.0, show_default=True, help="Seconds to wait for another apply to finish.")
@click.option("--allow-delete-all", is_flag=True, help="Allow deleting every managed model.")
@click.option("--actor", help="Who applies, for the audit trail [default: $LLM_REGISTRY_ACTOR, $GITHUB_ACTOR, else the OS user].")
@click.option("--revision", help="Source revision for the audit trail [default: the plan file's, $GITHUB_SHA, else git HEAD of DIR].")
@click.option("--environment", metavar="NAME", envvar=ENVIRONMENT_ENV, help=ENVIRONMENT_HELP + " A plan file applies only to its own.")
def command(
    target: Path,
    database_url: str | None,
    dry_run: bool,
    auto_approve: bool,
    skip_connection_tests: bool,
    concurrency: int,
    timeout: float,
    lock_timeout: float,
    allow_delete_all: bool,
    actor: str | None,
    revision: str | None,
    environment: str | None,
) -> int:
    """Apply TARGET: a registry directory (default: registry.d) or a PLANFILE from `plan --out`.

    Under the registry lock, re-reads the database and re-plans; a saved plan is
    applied only if nothing changed since it was made. Then tests the connection of
    every created or changed active model, writes the changes and their audit events
    in one transaction, and commits. Any failure leaves the database as it was.

    From a directory, apply shows the plan and asks for `yes` on a terminal; without
    a terminal it needs --auto-approve. --dry-run runs everything and rolls back.

    \b
    Exit codes: 0 applied (or nothing to do), 1 error or failed connection test,
    3 the plan holds a blocked change.
    """
    from reconciler.apply import ApplyOptions, ConnectionTestsFailed, Hooks, apply_registry
    from reconciler.audit import default_actor
    from reconciler.planfile import read_planfile, signing_passphrase
    from reconciler.render import render_text
    from reconciler.target import Target, default_revision, describe_url

    style = text_style()
    saved = None
    if _is_planfile(target):
        saved = read_planfile(target, signing_passphrase(os.environ))
        registry = saved.registry
        allow_delete_all = allow_delete_all or saved.allow_delete_all
        source_dir = Path(saved.directory) if saved.directory else None
        revision = revision or saved.target.revision
    else:
        registry, _ = load_registry_reporting(target)
        source_dir = target
        if not (auto_approve or dry_run or _stdin_is_terminal()):
            raise RegistryError(
                "apply needs confirmation: run it on a terminal, pass --auto-approve (CI), "
                "or apply a saved plan (`plan --out PLANFILE`, then `apply PLANFILE`)"
            )

    options = ApplyOptions(
        actor=actor or default_actor(os.environ),
        revision=revision or default_revision(os.environ, source_dir),
        # A plan file's own environment unless one is given (then they must agree).
        environment=environment or (saved.target.environment if saved is not None else None),
        dry_run=dry_run,
        skip_connection_tests=skip_connection_tests,
        concurrency=concurrency,
        timeout=timeout,
        lock_timeout=lock_timeout,
        allow_delete_all=allow_delete_all,
    )
    interactive = saved is None and not auto_approve and not dry_run

    class CliHooks(Hooks):
        def __init__(self, target: Target) -> None:
            self.target = target  # named in the plan and the prompt

        def waiting_for_lock(self, holder: str) -> None:
            click.echo(f"Waiting for the registry lock, held by {escape_text(holder)} (up to {lock_timeout:g} s)...", err=True)

        def planned(self, plan: Any) -> None:
            click.echo(render_text(plan, style=style, target=self.target), color=use_colour())

        def confirm(self, plan: Any) -> bool:
            if not interactive:
                return True
            click.echo("")
            where = self.target
            question = f"Do you want to apply these changes to {where.database} (environment {where.environment or '(none)'})?"
            answer = click.prompt(f"{question} Only 'yes' will be accepted", default="", show_default=False)
            return answer.strip() == "yes"

        def testing(self, targets: Sequence[Any]) -> None:
            if targets:
                click.echo(f"\nTesting connections of {len(targets)} model{'s' * (len(targets) != 1)} (concurrency {concurrency}, timeout {timeout:g} s)...")

        def tested(self, result: Any) -> None:
            mark = style("ok  ", fg="green") if result.ok else style("FAIL", fg="red", bold=True)
            message = "" if result.ok else f"  {result.status}: {escape_text(result.message)}"
            click.echo(f"  {mark} {escape_text(result.name)} ({result.latency_ms} ms){message}", color=use_colour())

    try:
        # apply_registry checks the schema inside its own transaction.
        with open_database(database_url, require_head=False) as connection:
            hooks = CliHooks(Target(describe_url(connection.engine.url), options.environment, options.revision))
            outcome = apply_registry(connection, registry, os.environ, options, hooks, saved)
    except ConnectionTestsFailed as failed:
        click.echo(f"error: {escape_text(failed.message)}", err=True)
        if failed.recorded:
            click.echo(f"The test attempts are in the audit trail: llm-registry audit --run {options.run_id}", err=True)
        elif not dry_run:
            click.echo("warning: the test attempts could not be recorded in the audit trail", err=True)
        return EXIT_ERROR

    plan = outcome.plan
    if outcome.declined:
        click.echo("Apply cancelled; nothing was written.")
        return EXIT_OK
    if not plan.has_changes:
        return EXIT_OK
    counts = f"{plan.count('create')} created, {plan.count('update')} updated, {plan.count('delete')} deleted"
    if outcome.dry_run:
        click.echo(style("\nDRY RUN: everything was rolled back; nothing was written.", bold=True), color=use_colour())
        click.echo(f"Apply would have: {counts}. Audit events that would have been written (run {options.run_id}):")
        for line in _event_lines(outcome.events):
            click.echo(line)
        return EXIT_OK
    click.echo(style(f"\nApply complete: {counts}.", fg="green", bold=True), color=use_colour())
    click.echo(f"Run {options.run_id} by {escape_text(options.actor)}; see `llm-registry audit --run {options.run_id}`.")
    return EXIT_OK
