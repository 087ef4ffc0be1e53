"""`llm-registry --help` lists commands from cli.SUMMARIES without importing them: the
static table must say exactly what each command's own help says."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click
import pytest

from reconciler import cli


def real_command(name: str) -> click.Command:
    return importlib.import_module(f"reconciler.commands.{cli.COMMANDS[name]}").command


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_command_has_its_real_short_help_as_static_summary(name: str) -> None:
    command = real_command(name)
    assert not command.hidden and not command.deprecated
    assert cli.SUMMARIES.get(name) == command.get_short_help_str(limit=10**6), (
        f"cli.SUMMARIES[{name!r}] must be the first sentence of the command's help"
    )


def _commands(command: click.Command, path: str) -> list[tuple[str, click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            found += _commands(sub, f"{path} {name}")
    return found


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_option_and_command_says_what_it_is_for(name: str) -> None:
    for path, command in _commands(real_command(name), name):
        assert command.help, f"llm-registry {path} has no help"
        silent = [p.opts[-1] for p in command.params if isinstance(p, click.Option) and not p.hidden and not p.help]
        assert silent == [], f"llm-registry {path}: options without help"


def test_no_summary_without_a_command() -> None:
    assert set(cli.SUMMARIES) <= set(cli.COMMANDS)


@pytest.mark.parametrize("width", [40, 60, 80, 100, 200])
def test_help_reads_as_if_every_command_were_imported(width: int) -> None:
    class InOrder(click.Group):
        def list_commands(self, ctx: click.Context) -> list[str]:
            return list(self.commands)

    eager = InOrder("llm-registry", help=cli.cli.help, context_settings=cli.cli.context_settings, params=cli.cli.params)
    for name in cli.COMMANDS:
        eager.add_command(real_command(name), name)

    def render(group: click.Group) -> str:
        # The group's context settings as a real run applies them: Click caches a command's
        # help option from the first context it sees, so a bare Context here would render
        # `--help` or `-h, --help` depending on whether an earlier test ran the command.
        settings = {**cli.cli.context_settings, "terminal_width": width, "max_content_width": 100}
        with click.Context(group, info_name="llm-registry", **settings) as ctx:
            return group.get_help(ctx)

    assert render(cli.cli) == render(eager)


def test_help_imports_no_command_and_no_pydantic() -> None:
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['llm-registry', '--help']\n"
        "try:\n    runpy.run_module('reconciler', run_name='__main__')\n"
        "except SystemExit as exit:\n    assert exit.code == 0, exit.code\n"
        "print(sorted(m for m in sys.modules if m.startswith('reconciler.commands.') or m.split('.')[0] in "
        "{'pydantic', 'yaml', 'sqlalchemy', 'litellm', 'asyncio'}), file=sys.stderr)\n"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert completed.stderr.splitlines()[-1] == "[]", completed.stderr
    assert "Commands:" in completed.stdout and "validate" in completed.stdout
