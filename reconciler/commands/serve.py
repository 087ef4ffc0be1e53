"""`llm-registry serve`: the registry page, live from the database, read-only."""

from __future__ import annotations

import click

from reconciler.commands._common import database_url_option
from reconciler.errors import EXIT_OK


@click.command("serve")
@database_url_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind. Anything but loopback: put an authenticating proxy in front (docs/page.md).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port to bind (0: any free port, printed at start).")
@click.option(
    "--allow-host", "allow_hosts", multiple=True, metavar="NAME",
    help="A Host header name to accept besides localhost (the name a proxy forwards); repeatable.",
)  # fmt: skip
def command(database_url: str | None, host: str, port: int, allow_hosts: tuple[str, ...]) -> int:
    """Serve the registry page (the one `report --html` writes), live and read-only.

    Every reload reads the database afresh, in one read-only transaction. Answers
    GET and HEAD of / only (any other method: 405), with a strict
    Content-Security-Policy. Binds 127.0.0.1 by default and then accepts only
    requests addressed to this machine. There is no login: to share it, put it
    behind an authenticating proxy (docs/page.md). Ctrl-C stops it.
    """
    from sqlalchemy.exc import DBAPIError

    from reconciler import gc_pause
    from reconciler.commands._common import database_engine
    from reconciler.errors import RegistryError
    from reconciler.page.data import display_database, gather_registry_page, read_only_transaction
    from reconciler.page.render import render_registry_html
    from reconciler.page.server import PageUnavailable, allowed_hosts_for, create_server, make_app

    gc_pause.for_long_running_process()  # every request's garbage must not pile up until Ctrl-C
    with database_engine(database_url) as engine:
        database = display_database(engine)

        def render_page() -> str:
            try:
                with read_only_transaction(engine) as connection:
                    page = gather_registry_page(connection, database=database)
            except (DBAPIError, RegistryError) as error:
                reason = type(getattr(error, "orig", None) or error).__name__
                click.echo(f"error: cannot read the registry from {database} ({reason})", err=True)
                raise PageUnavailable(f"cannot read the registry database ({reason}); see the server's log") from None
            return render_registry_html(page)

        app = make_app(render_page, allowed_hosts=allowed_hosts_for(host, allow_hosts))
        try:
            server = create_server(app, host, port)
        except OSError as error:
            raise RegistryError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
        bound_host, bound_port = server.server_address[:2]
        shown_host = f"[{bound_host}]" if ":" in str(bound_host) else bound_host
        click.echo(f"Serving the registry page of {database} at http://{shown_host}:{bound_port}/ (read-only; Ctrl-C to stop)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            click.echo("Stopped.")
        finally:
            server.server_close()
    return EXIT_OK
