"""`llm-registry export`: the registry a team already has, as registry files (or a LiteLLM config)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler.commands._common import database_url_option
from reconciler.diagnostics import escape_text
from reconciler.errors import EXIT_ERROR, EXIT_OK, RegistryError

if TYPE_CHECKING:
    from typing import Sequence

    from reconciler.export import ExportedFile, ExportModel


@click.command("export")
@database_url_option
@click.option(
    "--out",
    "out",
    metavar="PATH",
    default=None,
    help="registry: the directory to write [default: registry.d]; litellm: the file to write [default: stdout].",
)
@click.option(
    "--split",
    type=click.Choice(["provider", "type", "none"]),
    default="provider",
    show_default=True,
    help="One file per provider, per type, or one models.yaml.",
)
@click.option("--explicit", is_flag=True, help="Write every field, also those equal to their default.")
@click.option("--force", is_flag=True, help="Overwrite files that exist.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["registry", "litellm"]),
    default="registry",
    show_default=True,
    help="registry: files for registry.d/; litellm: a LiteLLM proxy config (model_list) of the active models.",
)
@click.option(
    "--registry",
    "registry_dir",
    metavar="DIR",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=None,
    help="Export the models of these registry files instead of the database (keeps their variable names).",
)
def command(
    database_url: str | None,
    out: str | None,
    split: str,
    explicit: bool,
    force: bool,
    output_format: str,
    registry_dir: Path | None,
) -> int:
    """Write every model of the database (managed and made by hand) as registry files.

    Fields follow the documented order; those equal to their default are left out
    (unless --explicit); a column the table leaves NULL is written `null` (not set).
    Keys are never written: a model with a stored key gets `api_key:
    ${env:LLM_KEY_<NAME>}` (the name upper-cased, other characters `_`), and the
    command lists the variables to set before `plan`/`apply`. Existing files are
    not overwritten without --force. `plan` on the output then shows only the
    adoption of hand-made rows. The written files are validated; exit 1 when rows
    break a rule of the format (the files are written; fix them before plan). With
    --format litellm: a LiteLLM proxy config of the active models instead (see
    docs/adoption.md).
    """
    models = _models_from_registry(registry_dir) if registry_dir is not None else _models_from_database(database_url)
    if output_format == "litellm":
        return _write_litellm(models, out, force)
    return _write_registry(models, Path(out or "registry.d"), split, explicit, force)


def _models_from_database(database_url: str | None) -> list["ExportModel"]:
    from reconciler.commands._common import resolve_url
    from reconciler.db import snapshot
    from reconciler.export import ExportModel, key_variables
    from reconciler.state import read_state, stored_key_names

    with snapshot(resolve_url(database_url)) as connection:  # read-only, without SQLAlchemy
        state = read_state(connection)
        with_keys = stored_key_names(connection)
    variables = key_variables(sorted(with_keys | {m.name for m in state.models if m.record["api_key"] is not None}))
    return [ExportModel(m.name, m.record, variables.get(m.name), m.managed) for m in state.models]


def _models_from_registry(directory: Path) -> list["ExportModel"]:
    from reconciler.commands._common import load_registry_reporting
    from reconciler.export import ExportModel
    from reconciler.spec import desired_record, env_reference_name

    registry, _ = load_registry_reporting(directory)
    return [
        ExportModel(model.name, desired_record(model), env_reference_name(model.api_key) if model.api_key else None)
        for model in registry.models
    ]


def write_files(out: Path, files: "Sequence[ExportedFile]", force: bool) -> None:
    """Write the files into `out`, all or none: refused (RegistryError) when one exists and not `force`.

    Warns about other registry files already in `out`, which would be read with these.
    """
    if out.exists() and not out.is_dir():
        raise RegistryError(f"--out {out} is not a directory; nothing was written")
    existing = sorted(f.name for f in files if (out / f.name).exists())
    if existing and not force:
        raise RegistryError(f"{out} already has {', '.join(existing)}; use --force to overwrite (nothing was written)")
    out.mkdir(parents=True, exist_ok=True)
    ours = {f.name for f in files}
    for exported in files:
        (out / exported.name).write_text(exported.text, encoding="utf-8")
    others = sorted(
        str(p.relative_to(out)) for p in out.rglob("*") if p.suffix in (".yaml", ".yml") and p.name not in ours
    )
    if others:
        click.echo(f"warning: {out} also holds {', '.join(others)}, read together with these files", err=True)


def report_written(out: Path, variables: "Sequence[tuple[str, str]]") -> bool:
    """The variables to set, then `validate` over what was written: every finding and its
    verdict line, as `validate` prints them. True when the written registry is valid."""
    from reconciler.commands.validate import summary
    from reconciler.diagnostics import format_text
    from reconciler.validate import validate_directory

    if variables:
        click.echo("Set these environment variables to the models' keys before plan/apply:")
        width = max(len(variable) for variable, _ in variables)
        for variable, name in variables:
            click.echo(f"  {variable.ljust(width)}  model {escape_text(name)}")  # a hand-made name is data
    validation = validate_directory(out)
    if not validation.ok:
        click.echo("The written models break rules of the format; fix these before plan:", err=True)
    for diagnostic in validation.diagnostics:
        click.echo(format_text(diagnostic), err=True)
    click.echo(summary(str(out), validation), err=not validation.ok)
    return validation.ok


def _write_registry(models: list["ExportModel"], out: Path, split: str, explicit: bool, force: bool) -> int:
    from reconciler.export import export_registry

    result = export_registry(models, split=split, explicit=explicit)  # type: ignore[arg-type]
    write_files(out, result.files, force)
    count = len(models)
    click.echo(f"Wrote {count} model{'s' * (count != 1)} to {out}: {', '.join(f.name for f in result.files)}")
    for warning in result.warnings:
        click.echo(f"warning: {escape_text(warning)}", err=True)
    # Written either way (the rows are what they are); exit 1 says they need fixing first.
    return EXIT_OK if report_written(out, result.variables) else EXIT_ERROR


def _write_litellm(models: list["ExportModel"], out: str | None, force: bool) -> int:
    import yaml

    from reconciler.litellm_config import export_litellm

    exported = export_litellm(models)
    config = exported.config
    for warning in exported.warnings:
        click.echo(f"warning: {escape_text(warning)}", err=True)
    header = (
        "# LiteLLM proxy config written by `llm-registry export --format litellm`: the registry's active models.\n"
        "# Keys are read from the environment (os.environ/NAME); set each variable before starting the proxy.\n"
    )
    to_stdout = out is None or out == "-"
    # On a terminal, text from the database is escaped (no bidi override or control character
    # acts there); YAML's own \u escapes keep the same data.
    text = header + yaml.safe_dump(config, sort_keys=False, allow_unicode=not to_stdout, default_flow_style=False, width=4096)
    if to_stdout:
        click.echo(text, nl=False)
    else:
        path = Path(out)
        if path.exists() and not force:
            raise RegistryError(f"{path} exists; use --force to overwrite (nothing was written)")
        path.write_text(text, encoding="utf-8")
        click.echo(f"Wrote {len(config['model_list'])} models to {path}", err=True)
    variables = sorted({m.key_variable for m in models if m.key_variable and m.record["is_active"]})
    if variables:
        click.echo(f"Variables the proxy reads keys from: {', '.join(variables)}", err=True)
    return EXIT_OK
