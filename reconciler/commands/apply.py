"""`llm-registry apply [DIR | PLANFILE]`: test the connections, then write the plan in one transaction."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Sequence

import click

from reconciler.commands._common import connection_test_options, database_url_option, load_registry_reporting, open_database
from reconciler.console import is_quiet, note
from reconciler.commands.plan import text_style, use_colour
from reconciler.diagnostics import escape_text, json_text
from reconciler.errors import EXIT_ERROR, EXIT_OK, RegistryError
from reconciler.target import ENVIRONMENT_HELP


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


def _progress_echo(as_json: bool) -> Any:
    """Where apply's human output goes: stdout, or stderr when stdout carries JSON."""
    return lambda message="", **kwargs: click.echo(message, err=as_json, **kwargs)


def outcome_json(outcome: Any, options: Any, error: str | None = None, results: Sequence[Any] = ()) -> str:
    """The JSON result of `apply --format json` (docs/cli.md): actions, tests, run id, audit events."""
    from reconciler.render import plan_to_json_data

    plan = outcome.plan if outcome is not None else None
    tests = outcome.results if outcome is not None else results
    document: dict[str, Any] = {
        "format_version": 1,
        "run_id": options.run_id,
        "actor": options.actor,
        "revision": options.revision,
        "environment": options.environment,
        "dry_run": options.dry_run,
        "committed": bool(outcome and outcome.committed),
        "declined": bool(outcome and outcome.declined),
        "summary": (
            {"create": plan.count("create"), "update": plan.count("update"), "delete": plan.count("delete")}
            if plan is not None else None
        ),
        "plan": plan_to_json_data(plan) if plan is not None else None,
        "connection_tests": [
            {"name": r.name, "status": r.status, "ok": r.ok, "latency_ms": r.latency_ms, "message": r.message}
            for r in tests
        ],
        "audit_events": [
            {"event_type": e.event_type, "model_name": e.model_name, "model_id": e.model_id, "details": dict(e.details)}
            for e in (outcome.events if outcome is not None else ())
        ],
    }
    if error is not None:
        document["error"] = {"kind": "error", "message": error, "exit_code": EXIT_ERROR, "diagnostics": []}
    return json_text(document, indent=2, default=str)


@click.command("apply")
@click.argument("sources", nargs=-1, metavar="[DIR]... | PLANFILE", type=click.Path(path_type=Path))
@database_url_option
@click.option("--dry-run", is_flag=True, help="Do everything, connection tests and writes included, then roll back.")
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation (needed without a terminal, e.g. in CI).")
@click.option("--skip-connection-tests", is_flag=True, help="Write without testing connections (recorded in the audit trail).")
@connection_test_options
@click.option("--lock-timeout", type=click.FloatRange(min=0), default=60.0, show_default=True, help="Seconds to wait for another apply to finish.")
@click.option("--allow-delete-all", is_flag=True, help="Allow deleting every managed model.")
@click.option("--actor", help="Who applies, for the audit trail [default: $LLM_REGISTRY_ACTOR, $GITHUB_ACTOR, else the OS user].")
@click.option("--revision", help="Source revision for the audit trail [default: the plan file's, $GITHUB_SHA, else git HEAD of DIR].")
@click.option("--environment", metavar="NAME", help=ENVIRONMENT_HELP + " A plan file applies only to its own.")
@click.option(
    "--target", "targets", multiple=True, metavar="NAME",
    help="Only this model and what it needs (a default moving between two models needs both); repeatable. "
    "For emergencies: the output and the audit trail say the run was partial.",
)
@click.option(
    "--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
    help="text for people; json: the outcome (actions, connection tests, run id, audit events) on stdout, "
    "everything else on stderr.",
)
def command(
    sources: tuple[Path, ...],
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
    targets: tuple[str, ...],
    output_format: str,
) -> int:
    """Apply the registry in each DIR (default: registry.d), or a PLANFILE from `plan --out`.

    Under the registry lock, re-reads the database and re-plans; a saved plan is
    applied only if nothing changed since it was made. Then tests the connection of
    every created or changed active model, writes the changes and their audit events
    in one transaction, and commits. Any failure leaves the database as it was.

    From directories, apply shows the plan and asks for `yes` on a terminal; without
    a terminal it needs --auto-approve. --dry-run runs everything and rolls back.

    \b
    Exit codes: 0 applied (or nothing to do), 1 error, failed connection test or
    declined prompt, 3 the plan holds a blocked change.
    """
    from reconciler.apply import ApplyOptions, ConnectionTestsFailed, Hooks, apply_registry
    from reconciler.audit import default_actor
    from reconciler.planfile import read_planfile, signing_passphrase
    from reconciler.render import render_text
    from reconciler.target import Target, default_revision, describe_url

    as_json = output_format == "json"
    echo = _progress_echo(as_json)
    colour = use_colour(sys.stderr if as_json else None)
    style = text_style() if not as_json or colour else (lambda text, **_: text)
    saved = None
    planfiles = [source for source in sources if _is_planfile(source)]
    if planfiles:
        if len(sources) > 1:
            raise RegistryError("apply takes either one PLANFILE or registry directories, not both")
        saved = read_planfile(planfiles[0], signing_passphrase(os.environ))
        registry = saved.registry
        allow_delete_all = allow_delete_all or saved.allow_delete_all
        source_dir = Path(saved.directory) if saved.directory else None
        revision = revision or saved.target.revision
        if targets and tuple(dict.fromkeys(targets)) != saved.targets:
            raise RegistryError(
                f"the plan file was made with --target {' '.join(saved.targets) or '(none)'}: "
                "apply it without --target, or make a new plan"
            )
        targets = saved.targets
    else:
        directories = sources or (Path("registry.d"),)
        registry, _ = load_registry_reporting(directories)
        source_dir = directories[0]
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
        targets=tuple(dict.fromkeys(targets)),
        plan_digests=output_format == "json",
    )
    interactive = saved is None and not auto_approve and not dry_run

    class CliHooks(Hooks):
        def __init__(self, target: Target) -> None:
            self.target = target  # named in the plan and the prompt

        def waiting_for_lock(self, holder: str) -> None:
            click.echo(f"Waiting for the registry lock, held by {escape_text(holder)} (up to {lock_timeout:g} s)...", err=True)

        def planned(self, plan: Any) -> None:
            # The plan is shown once, as computed under the lock (what will be written).
            if interactive or not is_quiet():
                echo(render_text(plan, style=style, target=self.target), color=colour)

        def confirm(self, plan: Any) -> bool:
            if not interactive:
                return True
            echo("")
            where = self.target
            question = f"Do you want to apply these changes to {where.database} (environment {where.environment or '(none)'})?"
            answer = click.prompt(f"{question} Only 'yes' will be accepted", default="", show_default=False, err=as_json)
            return answer.strip() == "yes"

        def testing(self, targets: Sequence[Any]) -> None:
            if targets and not is_quiet():
                # Shown at once: importing LiteLLM takes seconds on a loaded machine.
                plural = "s" * (len(targets) != 1)
                echo(f"\nTesting connections of {len(targets)} model{plural} (concurrency {concurrency}, timeout {timeout:g} s)...")
                echo("  loading provider clients...")

        def tested(self, result: Any) -> None:
            if is_quiet() and result.ok:
                return
            mark = style("ok  ", fg="green") if result.ok else style("FAIL", fg="red", bold=True)
            message = "" if result.ok else f"  {result.status}: {escape_text(result.message)}"
            echo(f"  {mark} {escape_text(result.name)} ({result.latency_ms} ms){message}", color=colour)

    try:
        # apply_registry checks the schema inside its own transaction.
        with open_database(database_url, require_head=False) as connection:
            shown_url = connection.engine.url.render_as_string(hide_password=True)
            hooks = CliHooks(Target(describe_url(shown_url), options.environment, options.revision))
            outcome = apply_registry(connection, registry, os.environ, options, hooks, saved)
    except ConnectionTestsFailed as failed:
        click.echo(f"error: {escape_text(failed.message)}", err=True)
        if failed.recorded:
            click.echo(f"The test attempts are in the audit trail: llm-registry audit --run {options.run_id}", err=True)
        elif not dry_run:
            click.echo("warning: the test attempts could not be recorded in the audit trail", err=True)
        if as_json:
            click.echo(outcome_json(None, options, error=escape_text(failed.message), results=failed.results))
        return EXIT_ERROR

    plan = outcome.plan
    if as_json:
        click.echo(outcome_json(outcome, options))
    if outcome.declined:
        click.echo("Apply cancelled; nothing was written.", err=True)
        return EXIT_ERROR
    if not plan.has_changes or as_json:
        return EXIT_OK
    counts = f"{plan.count('create')} created, {plan.count('update')} updated, {plan.count('delete')} deleted"
    if outcome.dry_run:
        click.echo(style("\nDRY RUN: everything was rolled back; nothing was written.", bold=True), color=colour)
        click.echo(f"Apply would have: {counts}. Audit events that would have been written (run {options.run_id}):")
        for line in _event_lines(outcome.events):
            click.echo(line)
        return EXIT_OK
    partial = f" PARTIAL (--target {', '.join(options.targets)})" if options.targets else ""
    if not is_quiet():  # --quiet: the exit code says it (docs/cli.md)
        click.echo(style(f"\nApply complete{partial}: {counts}.", fg="green", bold=True), color=colour)
    note(f"Run {options.run_id} by {escape_text(options.actor)}; see `llm-registry audit --run {options.run_id}`.", err=False)
    return EXIT_OK
