"""The `llm-registry` command: a thin Click layer over the pipeline.

Each subcommand lives in `reconciler/commands/<name>.py` and is imported only when it
is run (or listed by --help), so that heavy libraries (LiteLLM, SQLAlchemy) load
only in the commands that need them. A command returns its exit code.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Any

import click

from reconciler import __version__
from reconciler.diagnostics import escape_text
from reconciler.errors import EXIT_ERROR, RegistryError

# command name -> module under reconciler.commands exposing `command`
COMMANDS: dict[str, str] = {
    "validate": "validate",
    "plan": "plan",
    "apply": "apply",
    "test": "test",
    "list": "list_models",
    "audit": "audit",
    "db": "db",
    "schema": "schema",
    "export": "export",
    "show": "show",
    "import": "import_litellm",
    "report": "report",
    "serve": "serve",
    "rotate-encryption-key": "rotate",
}

# command name -> its short help, exactly as Click derives it from the command's
# docstring (first sentence, untruncated). `llm-registry --help` lists commands from
# here without importing them (pydantic, SQLAlchemy and LiteLLM stay unloaded);
# tests/cli/test_help.py fails when an entry is missing or differs from the command.
# Adding a command: one line in COMMANDS, one line here.
SUMMARIES: dict[str, str] = {
    "validate": "Check every *.yaml/*.yml file under DIRECTORY (default: registry.d).",
    "plan": "Compare DIRECTORY (default: registry.d) with the registry in the database.",
    "apply": "Apply TARGET: a registry directory (default: registry.d) or a PLANFILE from `plan --out`.",
    "test": "Test that models answer: the key works, the endpoint is reachable, the model exists.",
    "list": "List the models registered in the database.",
    "audit": "Show the audit trail: every model created, updated, deleted or connection-tested.",
    "db": "Manage the registry's database schema and the embedded default cluster.",
    "schema": "Print the JSON Schema of a registry file (generated from the pydantic models).",
    "export": "Write every model of the database (managed and made by hand) as registry files.",
    "show": "Show one model: its full record, the KBs using it, its last connection test and audit events.",
    "import": "Turn a LiteLLM proxy config's model_list into registry files.",
    "report": "Write the registry as one self-contained HTML page: no network, works offline and as a CI artifact.",
    "serve": "Serve the registry page (the one `report --html` writes), live and read-only.",
    "rotate-encryption-key": "Re-encrypt every stored API key under a new passphrase, in one transaction.",
}

EXIT_INTERRUPTED = 130


def _module_exists(module_name: str) -> bool:
    return importlib.util.find_spec(f"reconciler.commands.{module_name}") is not None


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when it is needed, and owns exit codes."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, module in COMMANDS.items() if _module_exists(module)]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of --help from SUMMARIES, shortened as Click would; imports
        a command only when it has no summary there."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            summary = SUMMARIES.get(name)
            if summary is None:
                command = self.get_command(ctx, name)
                if command is None or command.hidden:
                    continue
                rows.append((name, command.get_short_help_str(limit)))
            else:
                # Click's own shortening rule, applied to the stored sentence.
                rows.append((name, click.Command(name, help=summary).get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = COMMANDS.get(cmd_name)
        if module_name is None or not _module_exists(module_name):
            return None
        return importlib.import_module(f"reconciler.commands.{module_name}").command

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:  # type: ignore[override]
        """Run the command and exit with the code DESIGN.md gives every outcome.

        Usage errors exit 1 (not Click's 2, which means "plan has changes"), a
        RegistryError prints one clean line, and nothing prints a traceback: an
        exception's text may carry data we do not control.
        """
        try:
            exit_code = super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Abort as abort:
            interrupted = isinstance(abort.__context__, KeyboardInterrupt)
            click.echo("Interrupted." if interrupted else "Aborted.", err=True)
            sys.exit(EXIT_INTERRUPTED if interrupted else EXIT_ERROR)
        except click.ClickException as error:
            error.show()
            sys.exit(EXIT_ERROR)
        except RegistryError as error:
            click.echo(f"error: {escape_text(error.message)}", err=True)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except Exception as error:  # noqa: BLE001 - last resort, see docstring
            if os.environ.get("LLM_REGISTRY_DEBUG"):
                raise
            click.echo(
                f"error: internal error ({type(error).__name__}); "
                "re-run with LLM_REGISTRY_DEBUG=1 for details",
                err=True,
            )
            sys.exit(EXIT_ERROR)
        sys.exit(exit_code if isinstance(exit_code, int) else 0)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="llm-registry")
def cli() -> None:
    """Reconcile the LLM model registry in PostgreSQL with the YAML files in registry.d/.

    \b
    Typical flow:
      llm-registry validate registry.d      check the files (no database)
      llm-registry plan registry.d          show what would change
      llm-registry apply registry.d         test connections, then write it
    """


def main() -> None:
    """Entry point of the console script."""
    cli.main(prog_name="llm-registry")
