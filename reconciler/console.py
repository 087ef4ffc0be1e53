"""What every command shares about output: --quiet, notes on stderr, errors as JSON.

Imports only Click (the CLI's start-up cost stays low). The state lives in the root
Click context's `meta`, so in-process runs (tests) never leak it into each other.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import click

_QUIET = "llm_registry.quiet"


def set_quiet(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    """Click callback of `-q/--quiet`: remember it for the whole invocation (never turns it off)."""
    if value:
        ctx.find_root().meta[_QUIET] = True
    return value


def is_quiet() -> bool:
    """True when --quiet (or LLM_REGISTRY_QUIET) was given anywhere on the command line."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().meta.get(_QUIET))


def note(message: str, *, err: bool = True, **kwargs: Any) -> None:
    """An informational line (progress, hints): on stderr by default, nothing under --quiet."""
    if not is_quiet():
        click.echo(message, err=err, **kwargs)


def wants_json(args: Sequence[str], environ: Mapping[str, str]) -> bool:
    """Whether this invocation asked for `--format json` (on the command line or in the environment).

    Read from the raw arguments, so that even an error found while Click parses them
    (an unknown option, a bad value) comes out as JSON.
    """
    tokens = list(args)
    for index, token in enumerate(tokens):
        if token == "--":
            break
        if token == "--format=json" or (token == "--format" and index + 1 < len(tokens) and tokens[index + 1] == "json"):
            return True
    if "--format" in tokens or any(token.startswith("--format=") for token in tokens):
        return False  # an explicit other format wins over the environment
    words = [t for i, t in enumerate(tokens) if not t.startswith("-") and (i == 0 or tokens[i - 1] not in ("-C", "--chdir"))]
    commands = [word.upper().replace("-", "_") for word in words][:2]
    names = ["LLM_REGISTRY_FORMAT"] + [f"LLM_REGISTRY_{'_'.join(commands[: n + 1])}_FORMAT" for n in range(len(commands))]
    return any(environ.get(name) == "json" for name in names)


def error_document(message: str, exit_code: int, kind: str, diagnostics: Iterable[Any] = ()) -> str:
    """The JSON object printed on stdout for an error under `--format json`.

    `{"error": {"kind": ..., "message": ..., "exit_code": N, "diagnostics": [...]}}`;
    `kind` is one of usage, error, blocked, interrupted, internal (docs/cli.md).
    """
    rows = []
    for diagnostic in diagnostics:
        location = diagnostic.location
        rows.append(
            {
                "file": location.file if location else None,
                "line": location.line if location else None,
                "column": location.column if location else None,
                "severity": diagnostic.severity,
                "code": diagnostic.code,
                "message": diagnostic.message,
            }
        )
    from reconciler.diagnostics import json_text

    return json_text(
        {"error": {"kind": kind, "message": message, "exit_code": exit_code, "diagnostics": rows}}, indent=2
    )
