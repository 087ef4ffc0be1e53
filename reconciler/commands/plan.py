"""`llm-registry plan [DIR]`: show what apply would change, and what it would refuse."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from reconciler.commands._common import database_url_option, directories_argument, load_registry_reporting, resolve_url
from reconciler.console import note
from reconciler.errors import EXIT_BLOCKED, EXIT_CHANGES, EXIT_ERROR, EXIT_OK, RegistryError
from reconciler.target import ENVIRONMENT_HELP


def use_colour(stream: Any = None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")


def text_style() -> Callable[..., str]:
    """click.style on a colour terminal, else a no-op with the same signature."""
    if use_colour():
        return click.style
    return lambda text, **_: text


@click.command("plan")
@directories_argument
@database_url_option
@click.option(
    "--format", "output_format", type=click.Choice(["text", "json", "markdown", "github", "html"]), default="text",
    show_default=True,
    help="text for a terminal; json (docs/plan-format.md) for tools; markdown for a PR comment; "
    "github for workflow annotations on the PR diff; html for a self-contained page (docs/page.md).",
)
@click.option("--out", "out", metavar="PLANFILE", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the plan to PLANFILE for `apply PLANFILE`.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when the plan has changes (0 only when there are none).")
@click.option("--allow-delete-all", is_flag=True, help="Allow a plan that deletes every managed model.")
@click.option("--environment", metavar="NAME", help=ENVIRONMENT_HELP)
@click.option(
    "--target", "targets", multiple=True, metavar="NAME",
    help="Only this model and what it needs (a default moving between two models needs both); repeatable. "
    "For emergencies: the output and the audit trail say the run was partial.",
)
@click.option(
    "--pr-comment", is_flag=True,
    help="Also post the plan as ONE sticky comment on the pull request (updated in place on every run, "
    "found by a hidden marker per directory and environment), write it to $GITHUB_STEP_SUMMARY and print "
    "annotations. Needs GITHUB_TOKEN, GITHUB_REPOSITORY and the PR (GITHUB_EVENT_PATH or --pr).",
)
@click.option("--pr", "pr_number", type=click.IntRange(min=1), metavar="N", help="Pull request number for --pr-comment [default: from $GITHUB_EVENT_PATH].")
@click.option(
    "--drift-issue", is_flag=True,
    help="Scheduled drift check: open or update one issue (label llm-registry-drift) when the plan has "
    "changes, close it when there are none; also writes $GITHUB_STEP_SUMMARY.",
)
def command(
    directories: tuple[Path, ...],
    database_url: str | None,
    output_format: str,
    out: Path | None,
    detailed_exitcode: bool,
    allow_delete_all: bool,
    environment: str | None,
    pr_comment: bool,
    pr_number: int | None,
    drift_issue: bool,
    targets: tuple[str, ...],
) -> int:
    """Compare the registry in each DIR (default: registry.d) with the database.

    Several DIRs make one registry (`plan registry.d/common registry.d/prod`);
    model names are unique across them.

    Names its target first (database, environment, source revision), then shows
    every model to create, update (field by field, before -> after) or
    delete, and refuses deletes or breaking changes of models that knowledge bases
    use. API keys are compared by fingerprint and never shown. Writes nothing.

    \b
    Exit codes:
      0  no changes (or changes, without --detailed-exitcode)
      1  error: invalid files, database unreachable, ...
      2  the plan has changes (with --detailed-exitcode)
      3  the plan holds a blocked change
    """
    from reconciler.db import snapshot
    from reconciler.pipeline import plan_registry
    from reconciler.planfile import signing_passphrase, write_planfile
    from reconciler.render import render_github, render_json, render_markdown, render_text
    from reconciler.state import read_state
    from reconciler.target import default_revision, read_target

    if pr_number is not None and not pr_comment:
        raise click.UsageError("--pr goes with --pr-comment")
    directories = directories or (Path("registry.d"),)
    # For GitHub (a PR comment or a drift issue) the run annotates too, on stdout: never
    # beside a JSON document, which stdout holds alone.
    annotate = (pr_comment or drift_issue) and output_format != "json"
    registry, _ = load_registry_reporting(directories, annotate=annotate)
    # One read-only snapshot for every query: models and KB links agree with each other.
    url = resolve_url(database_url)
    with snapshot(url) as connection:
        state = read_state(connection)
        target = read_target(connection, url=url, environment=environment, revision=default_revision(os.environ, directories[0]))

    # The digests a saved plan and the JSON document carry; a plan only shown skips them.
    digests = out is not None or output_format in ("json", "html")
    run = plan_registry(
        registry, state, os.environ, allow_delete_all=allow_delete_all, targets=targets, fingerprints=digests
    )
    plan = run.plan
    if out is not None:
        # Signed (planfile.py): checked after the database, whose absence is the first thing to report.
        passphrase = signing_passphrase(os.environ)
        write_planfile(
            out, plan, registry, directory=str(directories[0]), allow_delete_all=allow_delete_all, target=target,
            passphrase=passphrase,
        )

    if output_format == "json":
        click.echo(render_json(plan, target))
    elif output_format == "markdown":
        click.echo(render_markdown(plan, target))
    elif output_format == "github":
        click.echo(render_github(plan))
    elif output_format == "html":
        from reconciler.page.render import render_plan_html
        from reconciler.render import plan_to_json_data

        click.echo(render_plan_html(plan_to_json_data(plan, target), source=f"definitions in {' '.join(map(str, directories))}"))
    else:
        click.echo(render_text(plan, style=text_style(), target=target), color=use_colour())
        if out is not None:
            note(f"\nSaved the plan to {out}. Apply exactly this plan with:\n  llm-registry apply {out}", err=False)
    delivered = True
    if pr_comment or drift_issue:
        from reconciler.diagnostics import escape_github_data
        from reconciler.github import deliver_plan

        if annotate and output_format != "github":  # the github format printed them already
            click.echo(render_github(plan))
        try:
            for line in deliver_plan(
                plan, target, os.environ, directories=[str(d) for d in directories], pr_comment=pr_comment,
                pr_number=pr_number, drift_issue=drift_issue,
            ):  # fmt: skip
                click.echo(line, err=True)
        except RegistryError as failed:
            # The plan above is current; what GitHub shows may be an older one.
            delivered = False
            message = f"could not post the plan to GitHub: {failed}; the comment or issue may show an older plan"
            if annotate:
                click.echo(f"::error title=llm-registry plan::{escape_github_data(message)}")
            click.echo(f"error: {message}", err=True)

    if plan.is_blocked:
        return EXIT_BLOCKED  # whatever else failed: a blocked plan must never read as anything else
    if not delivered:
        return EXIT_ERROR
    if plan.has_changes and detailed_exitcode:
        return EXIT_CHANGES
    return EXIT_OK

