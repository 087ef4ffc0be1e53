"""`llm-registry show NAME`: one model, its KBs, its last connection test and its recent audit events."""

from __future__ import annotations

from datetime import timezone
from typing import Any

import click

from reconciler.commands._common import database_url_option
from reconciler.errors import EXIT_OK, RegistryError


@click.command("show")
@click.argument("name")
@database_url_option
@click.option("--events", "event_count", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many of the newest audit events to show.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people; json: the record, its last connection test and its events.")
def command(name: str, database_url: str | None, event_count: int, output_format: str) -> int:
    """Show one model: its full record, the KBs using it, its last connection test and audit events.

    Never a key: only whether one is stored. Exits 1 when no model has that name.
    """
    from reconciler.audit import MODEL_CONNECTION_TESTED, read_audit_events
    from reconciler.commands._common import open_database
    from reconciler.inventory import model_view
    from reconciler.state import read_state, stored_key_names

    with open_database(database_url, isolation_level="REPEATABLE READ") as connection:
        state = read_state(connection)
        model = state.by_name().get(name)
        if model is None:
            raise RegistryError(f"no model named {name!r} in the registry (see `llm-registry list`)")
        view = model_view(model, state.kbs_using(model.id), name in stored_key_names(connection))
        events = read_audit_events(connection, model=name)
    tests = [event for event in events if event.event_type == MODEL_CONNECTION_TESTED]
    last_test = tests[-1].as_json() if tests else None
    recent = [event.as_json() for event in events[-event_count:]] if event_count else []
    if output_format == "json":
        from reconciler.diagnostics import json_text

        click.echo(json_text({"model": view, "last_connection_test": last_test, "events": recent}, indent=2, default=str))
        return EXIT_OK
    click.echo(render_text(view, last_test, recent))
    return EXIT_OK


def _when(event: dict[str, Any]) -> str:
    from datetime import datetime

    return datetime.fromisoformat(event["occurred_at"]).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def render_text(view: dict[str, Any], last_test: dict[str, Any] | None, events: list[dict[str, Any]]) -> str:
    """The text page of one model; every value from the database escaped for the terminal."""
    from reconciler.commands.audit import details_summary
    from reconciler.inventory import terminal_text as t

    status = "Active" if view["active"] else "Inactive"
    if view["is_default"]:
        status += f", the default {view['type']} model"
    key = f"set (export names its variable {view['api_key_variable']})" if view["api_key_set"] else "none"
    fields = [
        ("model_id", view["model_id"]),
        ("api_endpoint", view["api_endpoint"]),
        ("api_version", view["api_version"]),
        ("api_key", key),
        ("status", status),
        ("managed", "yes (llm-registry)" if view["managed"] else "no (made by hand; adopted when git declares it)"),
        ("description", view["description"] or None),
        ("id", view["id"]),
    ]
    # One column for the values of both blocks, two spaces past the longest label
    # (max_output_tokens is longer than any label above it).
    width = max(len(label) for label in [*(label for label, _ in fields), *view["parameters"]]) + 2
    lines = [f"{t(view['name'])} ({t(view['type'])}, {t(view['provider'])})"]
    lines += [f"  {label:<{width}}{t(value)}" for label, value in fields]
    lines.append("Parameters")
    lines += [f"  {field:<{width}}{t(value) if value is not None else '(not set)'}" for field, value in view["parameters"].items()]
    lines.append(f"Knowledge bases ({view['kb_count']})")
    lines += [f"  {t(kb)}" for kb in view["knowledge_bases"]] or ["  none"]
    lines.append("Last connection test")
    if last_test is None:
        lines.append("  none recorded")
    else:
        details = last_test["details"]
        outcome = t(details.get("status") or details.get("outcome"))
        latency = f", {details['latency_ms']} ms" if details.get("latency_ms") is not None else ""
        message = f": {t(details['message'])}" if details.get("message") else ""
        lines.append(f"  {_when(last_test)}  {outcome}{latency}{message}")
    lines.append(f"Recent audit events ({len(events)}, oldest first)")
    if not events:
        lines.append("  none recorded")
    for event in events:
        summary = details_summary(event["details"])
        lines.append(
            f"  {_when(event)}  {t(event['event_type'])}  by {t(event['actor'])}  run {t(event['run_id'])}"
            + (f"  {t(summary)}" if summary else "")
        )
    return "\n".join(lines)
