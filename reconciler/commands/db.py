"""`llm-registry db upgrade | current | stop`: the registry schema and the embedded cluster."""

from __future__ import annotations

import click

from reconciler.commands._common import database_url_option
from reconciler.errors import EXIT_OK


@click.group("db")
def command() -> None:
    """Manage the registry's database schema and the embedded default cluster.

    \b
      llm-registry db upgrade    migrate the schema to this version's head (safe to repeat)
      llm-registry db current    show the schema revision of the database
      llm-registry db stop       stop the embedded cluster in ./.llm-registry
    """


def _describe(url_option: str | None) -> str:
    from reconciler import db
    from reconciler.commands._common import embedded_requested
    from reconciler.embedded import EmbeddedCluster, embedded_home

    configured = None if embedded_requested() else db.configured_database_url(url_option)
    if configured is None:
        return EmbeddedCluster(embedded_home()).describe()
    return db.display_url(configured)


@command.command("upgrade")
@database_url_option
def upgrade(database_url: str | None) -> int:
    """Create or migrate the registry tables (llm_models, knowledge_bases, registry_audit_events).

    Runs every pending migration in one transaction; running it again on an
    up-to-date database does nothing. Concurrent runs wait for each other.

    An llm_models table made by the story's admin page is taken over in place, every
    row, id, key and KB link kept; its rows stay unmanaged until a registry declares
    them. Rows that break llm-registry's rules are listed and nothing is changed.
    With LLM_REGISTRY_ENCRYPTION_KEY set (the passphrase the keys were stored with),
    stored keys get the fingerprint plans compare.
    """
    import os

    from reconciler import db
    from reconciler.commands._common import open_database
    from reconciler.legacy import show
    from reconciler.secrets import ENCRYPTION_KEY_ENV

    with open_database(database_url, require_head=False) as connection:
        result = db.upgrade(connection, passphrase=os.environ.get(ENCRYPTION_KEY_ENV) or None)
    where = _describe(database_url)
    if result.changed:
        click.echo(f"Upgraded {where} from {result.before or '(empty)'} to {result.after}.")
    else:
        click.echo(f"Already at head ({result.after}) in {where}: nothing to do.")
    if result.adopted is not None:
        click.echo(
            f"Took over the existing llm_models table with its {result.adopted} model(s), ids, keys and KB links "
            "unchanged. They stay unmanaged until a registry declares them: `llm-registry export --out DIR` "
            "writes them as definitions."
        )
    if result.fingerprints_filled:
        names = ", ".join(show(name) for name in result.fingerprints_filled)
        click.echo(f"Fingerprinted the stored API keys of {len(result.fingerprints_filled)} model(s): {names}.")
    if result.fingerprints_pending:
        names = ", ".join(show(name) for name in result.fingerprints_pending)
        click.echo(
            f"{len(result.fingerprints_pending)} model(s) have a stored API key without fingerprint: {names}. "
            f"Run `llm-registry db upgrade` again with {ENCRYPTION_KEY_ENV} set to the passphrase the keys were "
            "stored with; until then plans cannot compare those keys and refuse to adopt those models.",
            err=True,
        )
    return EXIT_OK


@command.command("current")
@database_url_option
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help='json: {"revision", "head", "at_head", "database"}.')
def current(database_url: str | None, output_format: str) -> int:
    """Show the schema revision of the database and whether it is at head."""
    import json

    from reconciler import db
    from reconciler.commands._common import open_database

    head = db.head_revision()
    with open_database(database_url, require_head=False) as connection:
        revision = db.current_revision(connection)
    if output_format == "json":
        document = {"revision": revision, "head": head, "at_head": revision == head, "database": _describe(database_url)}
        click.echo(json.dumps(document, indent=2))
    elif revision is None:
        click.echo(f"(none): no registry schema yet, run `llm-registry db upgrade` (head is {head})")
    elif revision == head:
        click.echo(f"{revision} (head)")
    else:
        click.echo(f"{revision} (head is {head}: run `llm-registry db upgrade`)")
    return EXIT_OK


@command.command("stop")
def stop() -> int:
    """Stop the embedded cluster ($LLM_REGISTRY_HOME, else ./.llm-registry) if it runs.

    Its data stay; the next command that needs the database starts it again.
    """
    from reconciler.embedded import EmbeddedCluster, embedded_home

    cluster = EmbeddedCluster(embedded_home())
    where = cluster.describe()
    if not cluster.initialized():
        click.echo(f"No embedded cluster in {cluster.home}.")
    elif cluster.stop():
        click.echo(f"Stopped {where}.")
    else:
        click.echo(f"{where[0].upper()}{where[1:]} is not running.")
    return EXIT_OK
