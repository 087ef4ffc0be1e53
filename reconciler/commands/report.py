"""`llm-registry report --html FILE`: the registry page (or a plan's) as one self-contained file."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click

from reconciler.commands._common import database_url_option
from reconciler.errors import EXIT_OK, RegistryError


def write_page(out: str, html: str) -> None:
    """Write the page to `out` atomically (`-` is standard output)."""
    if out == "-":
        sys.stdout.write(html)
        return
    path = Path(out)
    if path.is_dir():
        raise RegistryError(f"cannot write the page to {out}: it is a directory (give a file name, e.g. {path / 'registry.html'})")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise RegistryError(f"cannot write the page to {out}: {error.strerror or error}") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(html)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@click.command("report")
@click.option("--html", "out", required=True, metavar="FILE", help="Write the page to FILE (`-`: standard output).")
@click.option(
    "--plan", "planfile", type=click.Path(dir_okay=False, path_type=Path), metavar="PLANFILE",
    help="Render this saved plan (`plan --out PLANFILE`) instead of the registry; no database needed, "
    "but LLM_REGISTRY_ENCRYPTION_KEY, to check the plan file's signature as apply does.",
)  # fmt: skip
@database_url_option
def command(out: str, planfile: Path | None, database_url: str | None) -> int:
    """Write the registry as one self-contained HTML page: no network, works offline and as a CI artifact.

    The page shows every model (type tabs and a provider filter, status badges,
    defaults, managed or made by hand, KB counts), each model's parameters, the KBs
    that use it, its last connection tests and audit events, and the recent audit
    events by run. API keys are never shown, only whether one is set. The database
    is read in one read-only transaction.

    With --plan PLANFILE, the page shows that plan instead: summary, blocked
    changes first with their KBs, every field before -> after; a plan file whose
    signature does not hold (edited after plan wrote it) is refused.
    """
    from reconciler.page.render import render_plan_html, render_registry_html

    if planfile is not None:
        import json

        from reconciler.planfile import document_mac, read_planfile, signing_passphrase

        # Only a plan whose signature holds is shown: a page must not present an edited
        # plan as the one plan wrote (the same check as apply PLANFILE).
        passphrase = signing_passphrase(os.environ)
        saved = read_planfile(planfile, passphrase)  # refuses an unusable or edited file, with the reason
        document = json.loads(planfile.read_text())  # the whole plan document, checked again below
        if document.get("mac") != document_mac(document, passphrase):
            raise RegistryError(f"{planfile} changed while it was being read; run report again")
        html = render_plan_html(document["plan"], source=f"{planfile} · made {saved.created_at}")
        write_page(out, html)
        if out != "-":
            click.echo(f"Wrote the plan page to {out}.", err=True)
        return EXIT_OK

    from reconciler.commands._common import database_engine
    from reconciler.page.data import display_database, gather_registry_page, read_only_transaction

    with database_engine(database_url) as engine:
        with read_only_transaction(engine) as connection:
            page = gather_registry_page(connection, database=display_database(engine))
    write_page(out, render_registry_html(page))
    if out != "-":
        click.echo(f"Wrote the registry page to {out} ({len(page.models)} models).", err=True)
    return EXIT_OK
