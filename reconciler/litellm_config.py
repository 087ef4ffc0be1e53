"""LiteLLM proxy configs both ways: `model_list` -> registry models, registry models -> `model_list`. Pure.

Import reads the `model_list` of a LiteLLM proxy `config.yaml` (already loaded, with
positions, by `load.load_file`) and gives registry definitions plus diagnostics that
point at the config's lines: literal keys (replaced by `${env:...}`; the key is never
repeated), what has no place in the registry (routing, fallbacks, providers we do
not serve, several deployments under one name, proxy-only parameters). Export turns
registry models into a `model_list` that LiteLLM's Router loads.

Which provider a model string means, and LiteLLM's defaults, are facts of
`providers`; what a definition may hold is `spec`'s. Model facts LiteLLM knows
(context window, vector size) come in through `model_info`, a lookup the caller
supplies (LiteLLM's own model map in the command, a dict in tests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from reconciler.diagnostics import Diagnostic, Location, error, warning
from reconciler.export import ExportModel, key_variable
from reconciler.load import Document, Path_
from reconciler.providers import (
    LITELLM_AZURE_BASE_VARIABLE,
    LITELLM_AZURE_VERSION_VARIABLE,
    LITELLM_KEY_VARIABLES,
    PROVIDER_MATRIX,
    litellm_model,
    provider_from_litellm,
    requests_dimensions,
    translate_endpoint,
)
from reconciler.references import redact_endpoint
from reconciler.spec import NAME_PATTERN, parameter_fields

ModelInfoLookup = Callable[[str], Mapping[str, Any]]

_ENVIRON = re.compile(r"^os\.environ/([A-Za-z_][A-Za-z0-9_]*)$")
_NAME = re.compile(NAME_PATTERN)
_GENERATION_MODES = ("chat", "completion", "responses")
# litellm_params we read; every other one is reported as having no place in the registry.
_READ_PARAMS = frozenset(
    {"model", "api_base", "api_key", "api_version", "dimensions", "max_tokens", "temperature", "top_p", "top_k"}
)
_READ_INFO = frozenset({"mode", "base_model", "id", "max_input_tokens", "max_tokens", "output_vector_size", "description"})
# Top-level settings that route between models: no place in a registry of single models.
_ROUTING = (
    ("router_settings", "fallbacks"),
    ("router_settings", "context_window_fallbacks"),
    ("router_settings", "content_policy_fallbacks"),
    ("router_settings", "default_fallbacks"),
    ("router_settings", "model_group_alias"),
    ("router_settings", "routing_strategy"),
    ("litellm_settings", "fallbacks"),
    ("litellm_settings", "context_window_fallbacks"),
    ("litellm_settings", "content_policy_fallbacks"),
    ("litellm_settings", "default_fallbacks"),
    ("litellm_settings", "model_group_alias"),
)


@dataclass(frozen=True)
class ImportedModel:
    """One deployment that maps to a registry model: its definition and the key variable it names."""

    definition: Mapping[str, Any]
    key_variable: str | None
    location: Location


@dataclass(frozen=True)
class LiteLLMImport:
    """What import made of a config: the models, in config order, and what it reports."""

    models: tuple[ImportedModel, ...]
    diagnostics: tuple[Diagnostic, ...]
    deployments: int


def registry_name(model_name: str) -> str:
    """A LiteLLM `model_name` as a registry name: lower case, other characters `-`, at most 63."""
    name = re.sub(r"[^a-z0-9._-]+", "-", model_name.strip().lower())
    name = re.sub(r"^[^a-z0-9]+", "", name)[:63]
    return name


def _environ(value: Any) -> str | None:
    """NAME of an `os.environ/NAME` value, else None."""
    match = _ENVIRON.match(value.strip()) if isinstance(value, str) else None
    return match.group(1) if match else None


class _Importer:
    def __init__(self, document: Document, model_info: ModelInfoLookup) -> None:
        self.document = document
        self.model_info = model_info
        self.found: list[Diagnostic] = []

    def at(self, path: Path_, *, key: bool = False) -> Any:
        return self.document.location(path, key=key)

    def warn(self, code: str, message: str, path: Path_, *, key: bool = False) -> None:
        self.found.append(warning(code, message, self.at(path, key=key)))

    def fail(self, code: str, message: str, path: Path_, *, key: bool = False) -> None:
        self.found.append(error(code, message, self.at(path, key=key)))

    def run(self) -> LiteLLMImport:
        data = self.document.data
        if not isinstance(data, dict) or not isinstance(data.get("model_list"), list):
            self.fail("no-model-list", "not a LiteLLM proxy config: expected a mapping with a 'model_list:' list", ())
            return LiteLLMImport((), tuple(self.found), 0)
        for section, key in _ROUTING:
            settings = data.get(section)
            if isinstance(settings, dict) and settings.get(key):
                self.warn(
                    "litellm-routing",
                    f"{section}.{key}: LiteLLM routing has no place in the registry (one model per name); not imported",
                    (section, key),
                    key=True,
                )
        models: list[ImportedModel] = []
        first_line: dict[str, int] = {}
        deployments = data["model_list"]
        for index, entry in enumerate(deployments):
            path: Path_ = ("model_list", index)
            model_name = entry.get("model_name") if isinstance(entry, dict) else None
            name = registry_name(model_name) if isinstance(model_name, str) else None
            if name and name in first_line:
                self.fail(
                    "litellm-several-deployments",
                    f"model_name {model_name!r} has several deployments (first at line {first_line[name]}): "
                    "a registry model is one deployment; this one is not imported",
                    path,
                )
                continue
            if name:
                first_line[name] = self.at(path).line
            imported = self.deployment(entry, path)
            if imported is not None:
                models.append(imported)
        return LiteLLMImport(tuple(models), tuple(self.found), len(deployments))

    def deployment(self, entry: Any, path: Path_) -> ImportedModel | None:
        if not isinstance(entry, dict) or not isinstance(entry.get("litellm_params"), dict):
            self.fail("litellm-entry", "a model_list entry needs model_name and litellm_params; not imported", path)
            return None
        params: dict[str, Any] = entry["litellm_params"]
        info: dict[str, Any] = entry.get("model_info") if isinstance(entry.get("model_info"), dict) else {}
        model_name, model = entry.get("model_name"), params.get("model")
        if not isinstance(model_name, str) or not isinstance(model, str):
            self.fail("litellm-entry", "a model_list entry needs model_name and litellm_params.model (strings); not imported", path)
            return None
        if "*" in model_name or "*" in model:
            self.fail("litellm-wildcard", f"wildcard route {model_name!r} -> {model!r} has no place in the registry; not imported", path)
            return None
        mapped = provider_from_litellm(model)
        if mapped is None:
            self.fail(
                "litellm-unknown-provider",
                f"{model!r}: not a provider the registry serves ({', '.join(PROVIDER_MATRIX)}); not imported",
                path + ("litellm_params", "model"),
            )
            return None
        provider, model_id = mapped
        name = registry_name(model_name)
        if not _NAME.match(name):
            self.fail("litellm-name", f"model_name {model_name!r} cannot be made a registry name; not imported", path + ("model_name",))
            return None
        if name != model_name:
            self.warn("litellm-renamed", f"model_name {model_name!r} becomes registry name {name!r}", path + ("model_name",))
        known = dict(self.model_info(info["base_model"] if isinstance(info.get("base_model"), str) else model) or {})
        if not known and provider == "azure":  # a deployment is often named after its model
            known = dict(self.model_info(model_id) or {})
        model_type = self.model_type(model, model_id, info, known, path)
        if model_type is None:
            return None
        if model_type not in PROVIDER_MATRIX[provider]["types"]:
            self.fail("litellm-provider-type", f"{provider} does not serve {model_type} models; not imported", path + ("litellm_params", "model"))
            return None
        definition: dict[str, Any] = {"name": name, "type": model_type, "provider": provider, "model_id": model_id}
        self.endpoint(definition, params, path)
        key = self.key(definition, params, path)
        if isinstance(info.get("description"), str):
            definition["description"] = info["description"]
        parameters = self.parameters(model_type, params, info, known, path)
        if parameters is None:
            return None
        definition["parameters"] = parameters
        ignored = sorted(str(k) for k in params if k not in _READ_PARAMS)
        ignored += sorted(f"model_info.{k}" for k in info if k not in _READ_INFO)
        ignored += sorted(str(k) for k in entry if k not in ("model_name", "litellm_params", "model_info"))
        if ignored:
            self.warn(
                "litellm-ignored",
                f"model {name!r}: {', '.join(ignored)} ha{'ve' if len(ignored) > 1 else 's'} no place in the registry; left out",
                path,
            )
        return ImportedModel(definition, key, self.at(path))

    def model_type(self, model: str, model_id: str, info: Mapping[str, Any], known: Mapping[str, Any], path: Path_) -> str | None:
        mode = info.get("mode") or known.get("mode")
        if mode == "embedding":
            return "embedding"
        if mode in _GENERATION_MODES:
            return "generation"
        if mode is not None:
            self.fail("litellm-mode", f"{model!r}: mode {mode!r} is not embedding or generation; not imported", path + ("model_info", "mode"))
            return None
        guessed = "embedding" if "embed" in model_id.lower() else "generation"
        self.warn(
            "litellm-type-guessed",
            f"{model!r}: no model_info.mode; taken as {guessed} from its name (set mode: embedding or chat to be sure)",
            path + ("litellm_params", "model"),
        )
        return guessed

    def endpoint(self, definition: dict[str, Any], params: Mapping[str, Any], path: Path_) -> None:
        provider = definition["provider"]
        for source, target, variable in (
            ("api_base", "api_endpoint", LITELLM_AZURE_BASE_VARIABLE),
            ("api_version", "api_version", LITELLM_AZURE_VERSION_VARIABLE),
        ):
            value = params.get(source)
            if target == "api_version" and provider != "azure":
                if value is not None:
                    self.warn("litellm-ignored", f"api_version applies only to azure, not {provider}; left out", path + ("litellm_params", source), key=True)
                continue
            if value is None:
                if provider == "azure":  # LiteLLM falls back to AZURE_API_BASE / AZURE_API_VERSION
                    definition[target] = f"${{env:{variable}}}"
                    self.warn("litellm-default", f"no {source}: LiteLLM reads {variable}; written as ${{env:{variable}}}", path + ("litellm_params",))
                continue
            environ = _environ(value)
            definition[target] = f"${{env:{environ}}}" if environ else (str(value).rstrip("/") if target == "api_endpoint" else str(value))

    def key(self, definition: dict[str, Any], params: Mapping[str, Any], path: Path_) -> str | None:
        provider, name = definition["provider"], definition["name"]
        value = params.get("api_key")
        where = path + ("litellm_params", "api_key")
        if PROVIDER_MATRIX[provider]["api_key"] == "forbidden":
            if value is not None:
                self.warn("litellm-ignored", f"{provider} takes no api_key; left out", where, key=True)
            return None
        if value is None:
            variable = LITELLM_KEY_VARIABLES[provider]
            self.warn("litellm-default", f"model {name!r}: no api_key: LiteLLM reads {variable}; written as ${{env:{variable}}}", path + ("litellm_params",))
        else:
            variable = _environ(value)
            if variable is None:
                variable = key_variable(name)
                # Never the value: not raw, not masked, not its length.
                self.warn(
                    "litellm-literal-key",
                    f"a literal api_key is in the config: written as ${{env:{variable}}}; set that variable "
                    "to the key and take the key out of the config",
                    where,
                )
        definition["api_key"] = f"${{env:{variable}}}"
        return variable

    def parameters(
        self, model_type: str, params: Mapping[str, Any], info: Mapping[str, Any], known: Mapping[str, Any], path: Path_
    ) -> dict[str, Any] | None:
        parameters: dict[str, Any] = {}
        if model_type == "embedding":
            dimensions = params.get("dimensions") or info.get("output_vector_size") or known.get("output_vector_size")
            if not isinstance(dimensions, int) or isinstance(dimensions, bool):
                self.fail(
                    "litellm-no-dimensions",
                    "embedding model without a known vector size: add litellm_params.dimensions or "
                    "model_info.output_vector_size; not imported",
                    path,
                )
                return None
            parameters["dimensions"] = dimensions
            return parameters
        context = info.get("max_input_tokens") or known.get("max_input_tokens") or info.get("max_tokens") or known.get("max_tokens")
        if not isinstance(context, int) or isinstance(context, bool):
            self.fail(
                "litellm-no-context-window",
                "generation model without a known context window: add model_info.max_input_tokens; not imported",
                path,
            )
            return None
        parameters["context_window"] = context
        for source, target in (("max_tokens", "max_output_tokens"), ("temperature", "temperature"), ("top_p", "top_p"), ("top_k", "top_k")):
            if params.get(source) is not None:
                parameters[target] = params[source]
        if isinstance(parameters.get("max_output_tokens"), int) and parameters["max_output_tokens"] > context:
            self.warn(
                "litellm-ignored",
                f"max_tokens {parameters['max_output_tokens']} exceeds the context window {context}; left out",
                path + ("litellm_params", "max_tokens"),
            )
            del parameters["max_output_tokens"]
        return parameters


def import_litellm(document: Document, model_info: ModelInfoLookup = lambda model: {}) -> LiteLLMImport:
    """The registry models a LiteLLM proxy config's `model_list` maps to, and what could not be mapped.

    `model_info(model_string)` gives what LiteLLM knows about a model (`mode`,
    `max_input_tokens`, `output_vector_size`); the config's own `model_info` wins.
    """
    return _Importer(document, model_info).run()


def litellm_entry(model: ExportModel) -> dict[str, Any]:
    """One `model_list` entry for a registry model: LiteLLM's model string, api_base, key variable, parameters."""
    record = model.record
    provider, model_type = record["provider"], record["type"]
    params: dict[str, Any] = {"model": litellm_model(provider, model_type, record["model_id"])}
    # A row made by hand may hold user:password@ or ?key=: never copied, as in registry files.
    api_base = translate_endpoint(provider, model_type, redact_endpoint(record["api_endpoint"]))
    if api_base is not None:
        params["api_base"] = api_base
    if provider == "azure" and record["api_version"]:
        params["api_version"] = record["api_version"]
    if model.key_variable is not None:
        params["api_key"] = f"os.environ/{model.key_variable}"
    info: dict[str, Any] = {"mode": "embedding" if model_type == "embedding" else "chat"}
    if model_type == "embedding":
        if requests_dimensions(provider, record["model_id"]):
            params["dimensions"] = record["dimensions"]
        info["output_vector_size"] = record["dimensions"]
    else:
        fields = parameter_fields(model_type)
        if "context_window" in fields and record["context_window"] is not None:
            info["max_input_tokens"] = record["context_window"]
        for source, target in (("max_output_tokens", "max_tokens"), ("temperature", "temperature"), ("top_p", "top_p"), ("top_k", "top_k")):
            if source in fields and record[source] is not None:
                params[target] = record[source]
    if record["description"]:
        info["description"] = record["description"]
    return {"model_name": model.name, "litellm_params": params, "model_info": info}


@dataclass(frozen=True)
class LiteLLMExport:
    """A proxy config (`{"model_list": [...]}`) and warnings about what it could not hold."""

    config: dict[str, Any]
    warnings: tuple[str, ...]


def export_litellm(models: Sequence[ExportModel]) -> LiteLLMExport:
    """A LiteLLM proxy config holding the active models, sorted by name."""
    active = sorted((m for m in models if m.record["is_active"]), key=lambda m: m.name)
    warnings = tuple(
        f"{model.name}: api_endpoint holds credentials, written as ***: give the proxy its key as api_key (os.environ/NAME) instead"
        for model in active
        if redact_endpoint(model.record["api_endpoint"]) != model.record["api_endpoint"]
    )
    return LiteLLMExport({"model_list": [litellm_entry(model) for model in active]}, warnings)
