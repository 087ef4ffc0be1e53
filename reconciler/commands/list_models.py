"""`llm-registry list`: the models in the database, the admin's view. Never a key."""

from __future__ import annotations

from typing import Any

import click

from reconciler.commands._common import database_url_option
from reconciler.errors import EXIT_OK
from reconciler.providers import PROVIDERS
from reconciler.spec import MODEL_TYPES

COLUMNS = (
    ("NAME", "name"),
    ("TYPE", "type"),
    ("PROVIDER", "provider"),
    ("MODEL ID", "model_id"),
    ("STATUS", "status"),
    ("DEFAULT", "default"),
    ("MANAGED", "managed"),
    ("KBS", "knowledge_bases"),
)


def format_table(rows: list[dict[str, Any]], columns: tuple[tuple[str, str], ...]) -> str:
    """Plain left-aligned columns with a header, two spaces apart (no trailing spaces).

    Every cell is data (a name made by hand may hold anything): escaped by `escape_text`.
    """
    from reconciler.diagnostics import escape_text

    cells = [[title for title, _ in columns]] + [
        ["-" if row[key] is None else escape_text(row[key]) for _, key in columns] for row in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells)


@click.command("list")
@database_url_option
@click.option("--type", "model_type", type=click.Choice(MODEL_TYPES), help="Only models of this type.")
@click.option("--provider", type=click.Choice(PROVIDERS), help="Only models of this provider.")
@click.option("--status", type=click.Choice(["active", "inactive"]), help="Only active or only inactive models.")
@click.option(
    "--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True,
    help="json: the full record of each model (endpoint, api_version, parameters, KBs; never a key).",
)
def command(
    database_url: str | None, model_type: str | None, provider: str | None, status: str | None, output_format: str
) -> int:
    """List the models registered in the database.

    Shows each model's name, type, provider, model id, status (Active/Inactive),
    whether it is its type's default, whether llm-registry manages it (rows made by
    hand are listed too), and how many knowledge bases use it. API keys are never shown.
    """
    from reconciler.commands._common import resolve_url
    from reconciler.db import snapshot
    from reconciler.inventory import model_view
    from reconciler.state import read_state, stored_key_names

    with snapshot(resolve_url(database_url)) as connection:  # read-only, without SQLAlchemy
        state = read_state(connection)
        with_keys = stored_key_names(connection)
    rows = []
    for model in state.models:
        record = model.record
        if model_type and record["type"] != model_type:
            continue
        if provider and record["provider"] != provider:
            continue
        if status and bool(record["is_active"]) != (status == "active"):
            continue
        rows.append(model_view(model, state.kbs_using(model.id), model.name in with_keys))
    if output_format == "json":
        from reconciler.diagnostics import json_text

        click.echo(json_text({"models": rows}, indent=2))
        return EXIT_OK
    if not rows:
        click.echo("No models registered." if not (model_type or provider or status) else "No models match.")
        return EXIT_OK
    table_rows = [
        {
            **row,
            "status": "Active" if row["active"] else "Inactive",
            "default": "yes" if row["is_default"] else "",
            "managed": "yes" if row["managed"] else "no (by hand)",
            "knowledge_bases": row["kb_count"],
        }
        for row in rows
    ]
    click.echo(format_table(table_rows, COLUMNS))
    return EXIT_OK
