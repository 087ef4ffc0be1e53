"""`llm-registry audit`: what the registry's audit trail recorded, filtered."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import click

from reconciler.commands._common import database_url_option
from reconciler.errors import EXIT_OK, RegistryError
from reconciler.schema_names import AUDIT_EVENT_TYPES
from reconciler.target import short_revision

_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str, now: datetime | None = None, option: str = "--since") -> datetime:
    """Turn `--since` into an aware datetime.

    Accepts a duration back from now (`30m`, `24h`, `7d`, `2w`), an ISO date
    (`2026-11-01`, midnight UTC) or an ISO date and time (`2026-11-01T08:00`, UTC
    unless it carries an offset such as `+01:00` or `Z`).
    """
    now = now or datetime.now(timezone.utc)
    relative = _RELATIVE.match(value)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        return now - timedelta(**{_UNITS[unit]: amount})
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise RegistryError(
            f"{option} {value!r} is neither a duration (30m, 24h, 7d, 2w) nor an ISO date or time "
            "(2026-11-01, 2026-11-01T08:00Z)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def details_summary(details: dict[str, Any]) -> str:
    """One line of details for the table (the full record is in --format json)."""
    if "changes" in details and isinstance(details["changes"], dict):
        return "changed: " + ", ".join(sorted(details["changes"]))
    if "outcome" in details:
        parts = [str(details.get("status") or details["outcome"])]
        if details.get("latency_ms") is not None:
            parts.append(f"{details['latency_ms']} ms")
        return " ".join(parts)
    if "knowledge_bases" in details:
        kbs = details["knowledge_bases"] or []
        return f"used by {len(kbs)} KB(s)" + (f": {', '.join(kbs)}" if kbs else "")
    return ""


@click.command("audit")
@database_url_option
@click.option("--model", "model", metavar="NAME", help="Only events of this model, followed through renames (by its id).")
@click.option("--event", "event_types", multiple=True, type=click.Choice(AUDIT_EVENT_TYPES, case_sensitive=False),
              help="Only events of this type (repeatable).")
@click.option("--actor", "actors", multiple=True, metavar="WHO", help="Only events of this actor (repeatable).")
@click.option("--environment", metavar="NAME", help="Only events of runs for this --environment.")
@click.option("--since", "since", metavar="WHEN", help="Only events since WHEN: 24h, 7d, 2026-11-01, 2026-11-01T08:00Z.")
@click.option("--until", "until", metavar="WHEN", help="Only events until WHEN (inclusive), in the forms --since takes.")
@click.option("--run", "run_id", metavar="RUN_ID", help="Only events of this apply run.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the newest N events.")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="table for people; json: every column of each event (docs/audit.md).")
def command(
    database_url: str | None,
    model: str | None,
    event_types: tuple[str, ...],
    actors: tuple[str, ...],
    environment: str | None,
    since: str | None,
    until: str | None,
    run_id: str | None,
    limit: int | None,
    output_format: str,
) -> int:
    """Show the audit trail: every model created, updated, deleted or connection-tested.

    Oldest first. Times are UTC. Records never hold an API key (`api_key: changed`).
    Filters combine (all must hold). --format json prints every field of every
    event (docs/audit.md); a revision ending in -dirty was applied from a working
    tree with uncommitted changes.
    """
    from reconciler.audit import read_audit_events
    from reconciler.commands._common import open_database

    since_time = parse_since(since) if since else None
    until_time = parse_since(until, option="--until") if until else None
    if since_time and until_time and until_time < since_time:
        raise RegistryError("--until is before --since: no event can match")
    with open_database(database_url) as connection:
        events = read_audit_events(
            connection, model=model, since=since_time, until=until_time, run_id=run_id, limit=limit,
            event_types=[name.upper() for name in event_types], actors=actors, environment=environment,
        )
    if output_format == "json":
        from reconciler.diagnostics import json_text

        click.echo(json_text({"events": [event.as_json() for event in events]}, indent=2, default=str))
        return EXIT_OK
    if not events:
        click.echo("No audit events.")
        return EXIT_OK
    from reconciler.commands.list_models import format_table

    rows = [
        {
            "time": event.occurred_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ"),
            "run": event.run_id,
            "event": event.event_type,
            "model": event.model_name,
            "actor": event.actor,
            "revision": short_revision(event.source_revision),
            "environment": event.environment,
            "details": details_summary(dict(event.details)) or None,
        }
        for event in events
    ]
    columns = (
        ("TIME (UTC)", "time"),
        ("RUN", "run"),
        ("EVENT", "event"),
        ("MODEL", "model"),
        ("ACTOR", "actor"),
        ("ENV", "environment"),
        ("REVISION", "revision"),
        ("DETAILS", "details"),
    )
    click.echo(format_table(rows, columns))
    return EXIT_OK
