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
from typing import Any, Sequence

import click

from reconciler import __version__, gc_pause
from reconciler.diagnostics import escape_text
from reconciler.console import error_document, set_quiet, wants_json
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
    "validate": "Check every *.yaml/*.yml file under each DIR (default: registry.d), as one registry.",
    "plan": "Compare the registry in each DIR (default: registry.d) with the database.",
    "apply": "Apply the registry in each DIR (default: registry.d), or a PLANFILE from `plan --out`.",
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
ENV_PREFIX = "LLM_REGISTRY"
# Options whose variable another module owns (with its own rules for empty values).
_OWN_ENV_HANDLING = {"database_url"}


def _env_name(*words: str) -> str:
    return "_".join([ENV_PREFIX, *(word.upper().replace("-", "_") for word in words)])


def add_environment_variables(command: click.Command, path: Sequence[str]) -> None:
    """Let every option of `command` (and its subcommands) be set by environment variable.

    Each option `--some-option` of `llm-registry CMD` reads `LLM_REGISTRY_CMD_SOME_OPTION`,
    else `LLM_REGISTRY_SOME_OPTION` (docs/cli.md). An option that names its own
    variable keeps it. Also adds `-q/--quiet`, so it works after the command name too.
    """
    if getattr(command, "_llm_registry_env", False):
        return
    command._llm_registry_env = True  # type: ignore[attr-defined]
    if not any(isinstance(p, click.Option) and p.name == "quiet" for p in command.params):
        command.params.append(
            click.Option(
                ["-q", "--quiet"], is_flag=True, expose_value=False, callback=set_quiet,
                help="Print only results and errors: no progress, no hints.",
            )
        )
    for param in command.params:
        if not isinstance(param, click.Option) or param.envvar or param.name in _OWN_ENV_HANDLING:
            continue
        long_names = [opt for opt in param.opts if opt.startswith("--")]
        if not long_names:
            continue
        option = long_names[0][2:]
        param.envvar = [_env_name(*path, option), _env_name(option)] if path else [_env_name(option)]
        param.show_envvar = True
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            add_environment_variables(sub, [*path, name])


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
        command = importlib.import_module(f"reconciler.commands.{module_name}").command
        add_environment_variables(command, [cmd_name])
        return command

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:  # type: ignore[override]
        """Run the command and exit with the code DESIGN.md gives every outcome.

        Usage errors exit 1 (not Click's 2, which means "plan has changes"), a
        RegistryError prints one clean line, and nothing prints a traceback: an
        exception's text may carry data we do not control.
        """
        raw_args = kwargs.get("args", args[0] if args else None)
        as_json = wants_json(sys.argv[1:] if raw_args is None else list(raw_args), os.environ)
        started_in = os.getcwd()  # -C changes it; an in-process caller gets it back

        def fail(message: str, code: int, kind: str, diagnostics: Any = ()) -> None:
            if as_json:
                click.echo(error_document(message, code, kind, diagnostics))
            sys.exit(code)

        try:
            exit_code = super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Abort as abort:
            interrupted = isinstance(abort.__context__, KeyboardInterrupt)
            click.echo("Interrupted." if interrupted else "Aborted.", err=True)
            fail("interrupted" if interrupted else "aborted", EXIT_INTERRUPTED if interrupted else EXIT_ERROR, "interrupted")
        except click.ClickException as error:
            error.show()
            fail(error.format_message(), EXIT_ERROR, "usage")
        except RegistryError as error:
            click.echo(f"error: {escape_text(error.message)}", err=True)
            result = getattr(error, "result", None)  # InvalidRegistry: every diagnostic
            kind = "blocked" if error.exit_code == 3 else "error"
            fail(escape_text(error.message), error.exit_code, kind, getattr(result, "diagnostics", ()))
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            fail("interrupted", EXIT_INTERRUPTED, "interrupted")
        except Exception as error:  # noqa: BLE001 - last resort, see docstring
            if os.environ.get("LLM_REGISTRY_DEBUG"):
                raise
            denied = _permission_denied(error)
            if denied is not None:
                click.echo(f"error: {escape_text(denied)}", err=True)
                fail(escape_text(denied), EXIT_ERROR, "error")
            message = f"internal error ({type(error).__name__}); re-run with LLM_REGISTRY_DEBUG=1 for details"
            click.echo(f"error: {message}", err=True)
            fail(message, EXIT_ERROR, "internal")
        finally:
            if os.getcwd() != started_in:
                os.chdir(started_in)
        sys.exit(exit_code if isinstance(exit_code, int) else 0)


def _permission_denied(error: BaseException) -> str | None:
    """A database error for a missing privilege, as a clean line (db imported only when one happened).

    SQLAlchemy's errors carry the driver's as `orig`; `plan` meets psycopg's own (db.snapshot).
    """
    if getattr(getattr(error, "orig", None) or error, "sqlstate", None) is None:
        return None
    from reconciler.db import permission_denied

    return permission_denied(error)


def _change_directory(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value:
        try:
            os.chdir(value)
        except OSError as error:
            raise click.BadParameter(f"cannot change to {value!r}: {error.strerror}") from None
    return value


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="llm-registry")
@click.option(
    "-C", "--chdir", metavar="DIR", envvar="LLM_REGISTRY_CHDIR", show_envvar=True, expose_value=False,
    is_eager=True, callback=_change_directory,
    help="Run as if started in DIR: relative paths, git revision and the embedded cluster (./.llm-registry) follow it.",
)
@click.option(
    "-q", "--quiet", is_flag=True, envvar="LLM_REGISTRY_QUIET", show_envvar=True, expose_value=False,
    callback=set_quiet, help="Print only results and errors: no progress, no hints.",
)
def cli() -> None:
    """Reconcile the LLM model registry in PostgreSQL with the YAML files in registry.d/.

    \b
    Typical flow:
      llm-registry validate registry.d      check the files (no database)
      llm-registry plan registry.d          show what would change
      llm-registry apply registry.d         test connections, then write it

    Every option can also be set as LLM_REGISTRY_<OPTION> or LLM_REGISTRY_<COMMAND>_<OPTION>
    (docs/cli.md); shell completion: docs/cli.md#shell-completion.
    """


def main() -> None:
    """Entry point of the console script: one command, in a process of its own (see gc_pause)."""
    gc_pause.for_one_shot_process()
    cli.main(prog_name="llm-registry")
