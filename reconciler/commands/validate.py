"""`llm-registry validate [DIR]`: check the registry files; no database, no network."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.console import is_quiet
from reconciler.diagnostics import format_github, format_json, format_text
from reconciler.errors import EXIT_ERROR, EXIT_OK
from reconciler.validate import ValidationResult, validate_directories


@click.command("validate")
@click.argument("directories", nargs=-1, metavar="[DIR]...", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="text: path:line:col messages; json: a list of objects; github: workflow commands that annotate the PR.",
)
def command(directories: tuple[Path, ...], output_format: str) -> int:
    """Check every *.yaml/*.yml file under each DIR (default: registry.d), as one registry.

    Reports every error in every file, each at file:line:column, without touching
    the database or any provider. Model names are unique across all DIRs
    (`validate registry.d/common registry.d/prod`). Exits 0 when the registry is
    valid (warnings allowed), 1 when it is not.
    """
    directories = directories or (Path("registry.d"),)
    result = validate_directories(directories)
    if output_format == "json":
        click.echo(format_json(result.diagnostics))
    elif output_format == "github":
        for diagnostic in result.diagnostics:
            click.echo(format_github(diagnostic))
    else:
        # Diagnostics go to stderr, like a compiler's, in file/line order; the one-line
        # verdict goes to stdout when valid (scripts may read it) and stderr when not.
        for diagnostic in result.diagnostics:
            click.echo(format_text(diagnostic), err=True)
        if not result.ok or not is_quiet():
            if result.files or result.ok or any(d.location for d in result.diagnostics):
                click.echo(summary(" ".join(map(str, directories)), result), err=not result.ok)
    return EXIT_OK if result.ok else EXIT_ERROR


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' * (number != 1)}"


def summary(directory: str, result: ValidationResult) -> str:
    """`registry.d: valid, 11 models in 6 files` or `registry.d: invalid, 3 errors in 2 files`."""
    warnings = f", {_count(len(result.warnings), 'warning')}" if result.warnings else ""
    if result.ok:
        models = len(result.spec.models) if result.spec else 0
        return f"{directory}: valid, {_count(models, 'model')} in {_count(len(result.files), 'file')}{warnings}"
    files = {d.location.file for d in result.errors if d.location}
    where = f" in {_count(len(files), 'file')}" if files else ""
    return f"{directory}: invalid, {_count(len(result.errors), 'error')}{where}{warnings}"
