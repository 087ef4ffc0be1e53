"""`llm-registry import --from-litellm CONFIG`: a LiteLLM proxy config's model_list as registry files."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import click

from reconciler.errors import EXIT_ERROR, EXIT_OK, RegistryError


@click.command("import")
@click.option(
    "--from-litellm",
    "config",
    metavar="CONFIG",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="A LiteLLM proxy config.yaml whose model_list to import.",
)
@click.option("--out", metavar="DIR", type=click.Path(path_type=Path), default=Path("registry.d"), show_default=True,
              help="The registry directory to write.")
@click.option("--split", type=click.Choice(["provider", "type", "none"]), default="provider", show_default=True,
              help="One file per provider, per type, or one models.yaml.")
@click.option("--force", is_flag=True, help="Overwrite files that exist.")
def command(config: Path, out: Path, split: str, force: bool) -> int:
    """Turn a LiteLLM proxy config's model_list into registry files.

    Provider and model_id come from litellm_params.model (`azure/my-deployment`),
    the type from model_info.mode; `os.environ/NAME` becomes `${env:NAME}`. A literal
    key becomes `${env:LLM_KEY_<NAME>}` with a warning naming its line (never the key).
    What has no place in the registry (routing and fallbacks, providers it does not
    serve, several deployments under one model_name, proxy-only settings) is
    reported with its line. Context window and vector size come from model_info,
    else from LiteLLM's own model map. The written files are validated. Exits 1 when
    a deployment could not be imported or the files do not validate (what could be
    imported is still written).
    """
    from pydantic import ValidationError

    from reconciler.commands.export import report_written, write_files
    from reconciler.diagnostics import error, format_text
    from reconciler.export import ExportModel, export_registry
    from reconciler.litellm_config import import_litellm
    from reconciler.load import load_file
    from reconciler.spec import MODEL_ADAPTER, desired_record

    if not config.is_file():
        raise RegistryError(f"{config}: no such file")
    document, problems = load_file(config)
    for problem in problems:
        click.echo(format_text(problem), err=True)
    if document is None:
        return EXIT_ERROR
    result = import_litellm(document, _litellm_model_info)
    found = list(result.diagnostics)
    models: list[ExportModel] = []
    for imported in result.models:
        try:
            model = MODEL_ADAPTER.validate_python(dict(imported.definition))
        except ValidationError as invalid:
            first = invalid.errors()[0]
            where = ".".join(str(part) for part in first["loc"][1:])
            reason = first["msg"].removeprefix("Value error, ")
            found.append(
                error("litellm-invalid", f"model {imported.definition['name']!r}: {where}: {reason}; not imported", imported.location)
            )
            continue
        models.append(ExportModel(model.name, desired_record(model), imported.key_variable))
    for diagnostic in sorted(found, key=lambda d: d.sort_key()):
        click.echo(format_text(diagnostic), err=True)
    if not models:
        raise RegistryError(f"{config}: no deployment could be imported; nothing was written")
    exported = export_registry(models, split=split)  # type: ignore[arg-type]
    write_files(out, exported.files, force)
    click.echo(
        f"Imported {len(models)} of {result.deployments} deployment{'s' * (result.deployments != 1)} into {out}: "
        f"{', '.join(f.name for f in exported.files)}"
    )
    valid = report_written(out, exported.variables)
    # What could be imported is written (for review); exit 1 says something was not.
    return EXIT_OK if valid and not any(d.severity == "error" for d in found) else EXIT_ERROR


def _litellm_model_info(model: str) -> Mapping[str, Any]:
    """What LiteLLM's bundled model map knows of a model string ({} when nothing).

    Not for Ollama: its models are whatever the server holds, and LiteLLM would ask
    the server (a network call from an import) and answer a generic chat model.
    """
    from reconciler.connection import configured_litellm
    from reconciler.providers import provider_from_litellm

    if (provider_from_litellm(model) or ("", ""))[0] == "ollama":
        return {}

    litellm = configured_litellm()
    try:
        return dict(litellm.get_model_info(model))
    except Exception:  # noqa: BLE001 - an unknown model is simply unknown
        return {}
