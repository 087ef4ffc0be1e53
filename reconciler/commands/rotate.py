"""`llm-registry rotate-encryption-key`: re-encrypt every stored API key under a new passphrase."""

from __future__ import annotations

import os
import sys
from typing import Mapping

import click

from reconciler.commands._common import database_url_option, open_database
from reconciler.errors import EXIT_OK, RegistryError


def _new_passphrase(environ: Mapping[str, str]) -> str:
    """From LLM_REGISTRY_NEW_ENCRYPTION_KEY, else a hidden prompt (twice) on a terminal."""
    from reconciler.rotation import NEW_ENCRYPTION_KEY_ENV

    value = environ.get(NEW_ENCRYPTION_KEY_ENV, "")
    if value:
        return value
    if not (sys.stdin is not None and sys.stdin.isatty()):
        raise RegistryError(
            f"{NEW_ENCRYPTION_KEY_ENV} is not set: give the new passphrase in it (or run on a terminal to be asked); "
            "it is never taken as an argument, where it would be seen in the process list and shell history"
        )
    value = click.prompt("New passphrase", hide_input=True, confirmation_prompt="Repeat the new passphrase")
    if not value:
        raise RegistryError("the new passphrase is empty; nothing was changed")
    return str(value)


@click.command("rotate-encryption-key")
@database_url_option
@click.option("--dry-run", is_flag=True, help="Check that every key opens and re-encrypt them, then roll back.")
@click.option("--lock-timeout", type=click.FloatRange(min=0), default=60.0, show_default=True, help="Seconds to wait for a running apply.")
@click.option("--actor", help="Who rotates, for the audit trail [default: $LLM_REGISTRY_ACTOR, $GITHUB_ACTOR, else the OS user].")
def command(database_url: str | None, dry_run: bool, lock_timeout: float, actor: str | None) -> int:
    """Re-encrypt every stored API key under a new passphrase, in one transaction.

    The current passphrase is LLM_REGISTRY_ENCRYPTION_KEY; the new one is
    LLM_REGISTRY_NEW_ENCRYPTION_KEY or, on a terminal, typed at a hidden prompt
    (never an argument). Every key is re-encrypted, in rows llm-registry manages and
    in rows made by hand, with its fingerprint; the passphrase check is replaced and
    each model gets an ENCRYPTION_KEY_ROTATED audit event. If any key does not open
    with the current passphrase, nothing changes. Afterwards set
    LLM_REGISTRY_ENCRYPTION_KEY to the new passphrase everywhere llm-registry and
    the KB application run (docs/database.md, "Rotating the passphrase").

    \b
    Exit codes: 0 rotated (or, with --dry-run, would rotate), 1 error (nothing changed).
    """
    from reconciler.apply import ApplyOptions, Hooks
    from reconciler.audit import default_actor
    from reconciler.rotation import rotate_encryption_key
    from reconciler.secrets import encryption_passphrase

    old = encryption_passphrase(os.environ)
    new = _new_passphrase(os.environ)
    options = ApplyOptions(
        actor=actor or default_actor(os.environ), revision=None, dry_run=dry_run, lock_timeout=lock_timeout
    )

    class CliHooks(Hooks):
        def waiting_for_lock(self, holder: str) -> None:
            click.echo(f"Waiting for the registry lock, held by {holder} (up to {lock_timeout:g} s)...", err=True)

    with open_database(database_url, require_head=False) as connection:
        outcome = rotate_encryption_key(connection, old, new, options, CliHooks())

    count = len(outcome.models)
    keys = f"{count} API key{'s' * (count != 1)}"
    hand_made = f" ({len(outcome.hand_made)} in rows made by hand)" if outcome.hand_made else ""
    if dry_run:
        click.echo(f"DRY RUN: {keys}{hand_made} open with the current passphrase and would be re-encrypted; nothing was changed.")
        return EXIT_OK
    click.echo(f"Rotated: {keys}{hand_made} re-encrypted under the new passphrase, and the passphrase check replaced.")
    click.echo(f"Run {options.run_id} by {options.actor}; see `llm-registry audit --run {options.run_id}`.")
    click.echo(
        "Next: set LLM_REGISTRY_ENCRYPTION_KEY to the new passphrase wherever llm-registry runs (CI secrets), "
        "and give it to the KB application (docs/database.md, \"Rotating the passphrase\")."
    )
    return EXIT_OK
