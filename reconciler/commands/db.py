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
      llm-registry db roles      create/grant the plan, apply and KB-reader roles (docs/roles.md)
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

    from reconciler import db
    from reconciler.commands._common import open_database

    head = db.head_revision()
    with open_database(database_url, require_head=False) as connection:
        revision = db.current_revision(connection)
    if output_format == "json":
        document = {"revision": revision, "head": head, "at_head": revision == head, "database": _describe(database_url)}
        from reconciler.diagnostics import json_text

        click.echo(json_text(document, indent=2))
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


@command.command("roles")
@database_url_option
@click.option("--plan", "plan_role", metavar="ROLE", help="Read-only role: plan, list, audit, show, test --from-db.")
@click.option("--apply", "apply_role", metavar="ROLE", help="Applying role: apply, apply --dry-run, rotate-encryption-key.")
@click.option("--reader", "reader_role", metavar="ROLE", help="The KB application's role: reads llm_models only.")
@click.option("--login", is_flag=True, help="Create missing roles with LOGIN (default NOLOGIN: grant them to login users).")
@click.option("--print", "print_only", is_flag=True, help="Print the SQL instead of running it (for a DBA; runs as is in psql).")
def roles(database_url: str | None, plan_role: str | None, apply_role: str | None, reader_role: str | None, login: bool, print_only: bool) -> int:
    """Create (if missing) and grant the database roles a deployment needs.

    Each role gets only what its commands use; running it again changes nothing, and
    after a `db upgrade` it grants on tables a new migration added. Needs a user that
    may create roles and owns the registry's tables (the one that ran `db upgrade`).
    Role names are cluster-wide in PostgreSQL. See docs/roles.md.
    """
    from reconciler.errors import RegistryError
    from reconciler.roles import RoleNames, roles_sql

    names = RoleNames(plan=plan_role, apply=apply_role, reader=reader_role)
    if not (plan_role or apply_role or reader_role):
        raise RegistryError("name at least one role: --plan ROLE, --apply ROLE, --reader ROLE")
    statements = roles_sql(names, login=login)
    if print_only:
        click.echo("BEGIN;\n" + "\n".join(statements) + "\nCOMMIT;")
        return EXIT_OK
    from sqlalchemy import text

    from reconciler.commands._common import open_database

    with open_database(database_url) as connection:
        for statement in statements:
            connection.execute(text(statement))
        connection.commit()
    granted = ", ".join(f"{kind} {name}" for kind, name in (("plan", plan_role), ("apply", apply_role), ("reader", reader_role)) if name)
    click.echo(f"Granted in {_describe(database_url)}: {granted}.")
    return EXIT_OK
