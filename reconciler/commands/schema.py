"""`llm-registry schema`: print the JSON Schema of a registry file."""

from __future__ import annotations

import json

import click

from reconciler.spec import json_schema


@click.command("schema")
def command() -> int:
    """Print the JSON Schema of a registry file (generated from the pydantic models).

    schemas/registry.schema.json in the repository is this output; point your
    editor at it with the modeline
    `# yaml-language-server: $schema=../schemas/registry.schema.json`.
    """
    click.echo(json.dumps(json_schema(), indent=2, sort_keys=True))
    return 0
