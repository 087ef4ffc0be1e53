"""Export: the registry as it is (rows of the database) -> registry files. Pure, no I/O.

What `llm-registry export` writes, so that a team that already has models (entered
through the old admin page, or applied elsewhere) starts from files that say
exactly what the table holds:

- every row, managed or made by hand, as one model definition, fields in the
  documented order (`spec.RECORD_FIELDS`), sorted by name;
- fields equal to their default left out (unless `explicit`), and a column that is
  NULL where the format has a default written as `null` ("not set"), so that
  `plan` on the output shows nothing but the adoption of hand-made rows;
- keys never: a model whose row holds a key gets `${env:NAME}` with NAME from
  `key_variable`, and the caller prints the list of variables to set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, Mapping, Sequence

import yaml

from reconciler.references import redact_endpoint
from reconciler.spec import MODEL_CLASSES, PARAMETER_FIELDS, SCHEMA_VERSION, parameter_fields

Split = Literal["provider", "type", "none"]
SPLITS: tuple[str, ...] = ("provider", "type", "none")

# The modeline of every exported file: the schema sits beside the registry directory,
# as in this repository (registry.d/ and schemas/); see docs/format.md for other layouts.
MODELINE = "# yaml-language-server: $schema=../schemas/registry.schema.json"

KEY_VARIABLE_PREFIX = "LLM_KEY_"


@dataclass(frozen=True)
class ExportModel:
    """One model to export: its name, record (`spec.RECORD_FIELDS`; `api_key` unused) and key.

    `key_variable` is the environment variable its `${env:NAME}` reference names, None
    when the model has no key. `managed` is False for a row made by hand.
    """

    name: str
    record: Mapping[str, Any]
    key_variable: str | None = None
    managed: bool = True


@dataclass(frozen=True)
class ExportedFile:
    """One file to write: its name inside the output directory and its text."""

    name: str
    text: str


@dataclass(frozen=True)
class Export:
    """The files, the variables to set (variable, model name) and what the reader should know."""

    files: tuple[ExportedFile, ...]
    variables: tuple[tuple[str, str], ...]
    warnings: tuple[str, ...]


def key_variable(name: str) -> str:
    """The environment variable that holds a model's key: `LLM_KEY_` + the name upper-cased.

    Every character other than a letter or digit becomes `_` (`gpt-4o.mini` ->
    `LLM_KEY_GPT_4O_MINI`). The variable is a convention of `export`; the database
    does not store variable names.
    """
    return KEY_VARIABLE_PREFIX + re.sub(r"[^A-Z0-9]", "_", name.upper())


def key_variables(names_with_keys: Sequence[str]) -> dict[str, str]:
    """`key_variable` of each name, made unique (`_2`, `_3`, ... where two names collide)."""
    taken: set[str] = set()
    result: dict[str, str] = {}
    for name in sorted(names_with_keys):
        variable = base = key_variable(name)
        counter = 2
        while variable in taken:
            variable, counter = f"{base}_{counter}", counter + 1
        taken.add(variable)
        result[name] = variable
    return result


def _parameter_defaults(model_type: str) -> dict[str, Any]:
    """Each parameter of the type -> its default (None when it has none or is required)."""
    parameters_class = MODEL_CLASSES[model_type].model_fields["parameters"].annotation
    fields = parameters_class.model_fields  # type: ignore[union-attr]
    return {name: None if fields[name].is_required() else fields[name].default for name in parameter_fields(model_type)}


def model_document(model: ExportModel, *, explicit: bool = False) -> tuple[dict[str, Any], list[str]]:
    """The definition of one model (plain data, documented field order) and warnings about it."""
    record = model.record
    model_type = record["type"]
    warnings: list[str] = []
    document: dict[str, Any] = {"name": model.name, "type": model_type, "provider": record["provider"], "model_id": record["model_id"]}
    for field in ("api_endpoint", "api_version"):
        if record[field] is not None or explicit:
            document[field] = record[field]
    if redact_endpoint(record["api_endpoint"]) != record["api_endpoint"]:
        # Never copy credentials into files bound for git; validate refuses the placeholder until fixed.
        document["api_endpoint"] = redact_endpoint(record["api_endpoint"])
        warnings.append(f"{model.name}: api_endpoint holds credentials, written as ***: put the key in api_key instead")
    if model.key_variable is not None:
        document["api_key"] = f"${{env:{model.key_variable}}}"
    if explicit or not record["is_active"]:
        document["active"] = bool(record["is_active"])
    if explicit or record["is_default"]:
        document["default"] = bool(record["is_default"])
    if explicit or record["description"]:
        document["description"] = record["description"] or ""
    if model_type not in MODEL_CLASSES:  # the table's CHECK makes this impossible; keep the row visible
        warnings.append(f"model {model.name!r}: unknown type {model_type!r}")
        return document, warnings
    defaults = _parameter_defaults(model_type)
    parameters: dict[str, Any] = {}
    for field in PARAMETER_FIELDS:
        value = record[field]
        if field not in defaults:
            if value is not None:
                warnings.append(
                    f"model {model.name!r}: column {field} holds {value!r}, but {model_type} models take no {field}; "
                    "the file cannot say it, so apply would clear it"
                )
            continue
        # NULL where the format has a default differs from it: written as `null`, "not set".
        if explicit or value != defaults[field]:
            parameters[field] = value
    if parameters or model_type != "ner":  # parameters are optional only for ner
        document["parameters"] = parameters
    return document, warnings


def _file_name(model: ExportModel, split: Split) -> str:
    if split == "provider":
        return f"{model.record['provider']}.yaml"
    if split == "type":
        return f"{model.record['type']}.yaml"
    return "models.yaml"


# A YAML 1.2 number (the registry's loader reads 1.2): `1e5` is a string to PyYAML's
# emitter (YAML 1.1), so it would be written bare and read back as a number.
_YAML12_NUMBER = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|0o[0-7]+|0x[0-9a-fA-F]+")


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """PyYAML's safe dumper, quoting every string a YAML 1.2 reader would take for a number."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if _YAML12_NUMBER.fullmatch(value):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="'")
    return dumper.represent_str(value)


_Dumper.add_representer(str, _represent_str)


def _dump_model(document: dict[str, Any]) -> str:
    """One list item under `models:`, indented by two spaces."""
    text = yaml.dump([document], Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=4096)
    return "".join(f"  {line}\n" for line in text.splitlines())


def export_registry(models: Sequence[ExportModel], *, split: Split = "provider", explicit: bool = False) -> Export:
    """Registry files holding every model, grouped by `split`; files and models sorted by name."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}")
    groups: dict[str, list[str]] = {}
    warnings: list[str] = []
    variables: list[tuple[str, str]] = []
    for model in sorted(models, key=lambda m: m.name):
        document, found = model_document(model, explicit=explicit)
        warnings.extend(found)
        if model.key_variable is not None:
            variables.append((model.key_variable, model.name))
        comment = "" if model.managed else "  # made by hand: the next apply adopts it (marks it managed)\n"
        groups.setdefault(_file_name(model, split), []).append(comment + _dump_model(document))
    files = tuple(
        ExportedFile(name, f"{MODELINE}\nversion: {SCHEMA_VERSION}\nmodels:\n" + "".join(items))
        for name, items in sorted(groups.items())
    )
    if not files:
        files = (ExportedFile("models.yaml", f"{MODELINE}\nversion: {SCHEMA_VERSION}\nmodels: []\n"),)
    return Export(files=files, variables=tuple(sorted(variables)), warnings=tuple(warnings))
