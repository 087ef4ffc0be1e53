"""`llm-registry validate [DIR]`: check the registry files; no database, no network."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.diagnostics import format_github, format_json, format_text
from reconciler.errors import EXIT_ERROR, EXIT_OK
from reconciler.validate import validate_directory


@click.command("validate")
@click.argument("directory", default="registry.d", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="text: path:line:col messages; json: a list of objects; github: workflow commands that annotate the PR.",
)
def command(directory: Path, output_format: str) -> int:
    """Check every *.yaml/*.yml file under DIRECTORY (default: registry.d).

    Reports every error in every file, each at file:line:column, without touching
    the database or any provider. Exits 0 when the registry is valid (warnings
    allowed), 1 when it is not.
    """
    result = validate_directory(directory)
    if output_format == "json":
        click.echo(format_json(result.diagnostics))
    elif output_format == "github":
        for diagnostic in result.diagnostics:
            click.echo(format_github(diagnostic))
    else:
        for diagnostic in result.diagnostics:
            click.echo(format_text(diagnostic), err=diagnostic.severity == "error")
        files = len(result.files)
        if result.ok:
            models = len(result.spec.models) if result.spec else 0
            click.echo(
                f"{directory}: valid, {models} model{'s' * (models != 1)} in {files} file{'s' * (files != 1)}"
                + (f", {len(result.warnings)} warning{'s' * (len(result.warnings) != 1)}" if result.warnings else "")
            )
        else:
            errors = len(result.errors)
            click.echo(f"{directory}: {errors} error{'s' * (errors != 1)}; nothing was checked against the database", err=True)
    return EXIT_OK if result.ok else EXIT_ERROR
