"""Validate located documents into a RegistrySpec, with every problem at `file:line:col`.

Three layers, each reporting all it finds rather than stopping at the first:
1. the shape of each file (`version: 1`, `models:` a list);
2. each model through the pydantic models of `spec.py` (types, ranges, unknown keys)
   plus the provider matrix, which needs the whole model to judge;
3. rules across files: unique names, renames, one default per type.

`validate_documents` is pure; `validate_directory` adds the loader in front.
Messages never repeat the value of an `api_key`, whatever was written there.
"""

from __future__ import annotations

import datetime
import difflib
import os
import typing
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

from pydantic import BaseModel, ValidationError

from reconciler import providers, spec
from reconciler.diagnostics import Diagnostic, Location, error, has_errors, warning
from reconciler.gc_pause import collector_paused
from reconciler.load import Document, Path_, discover_files, load_file, no_files_warning
from reconciler.references import (
    KEY_VARIABLES_ENV,
    endpoint_credentials_problem,
    parse_allow_list,
    refused_variable,
    refused_variable_message,
)

_YAML_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "a list",
    dict: "a mapping",
    type(None): "null",
    datetime.date: "a date",
    datetime.datetime: "a timestamp",
}
_EXPECTED = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "tuple_type": "a list",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dict_type": "a mapping",
}
_SECRET_FIELDS = {"api_key"}


@dataclass(frozen=True)
class ValidationResult:
    """What `validate` found: the spec (None when any error), every diagnostic, files read."""

    spec: spec.RegistrySpec | None
    diagnostics: tuple[Diagnostic, ...]
    files: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not has_errors(self.diagnostics)

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        """Only the errors."""
        return tuple(d for d in self.diagnostics if d.severity == "error")

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        """Only the warnings."""
        return tuple(d for d in self.diagnostics if d.severity == "warning")


def validate_directory(directory: Path, *, key_variables: Iterable[str] | None = None) -> ValidationResult:
    """Load and validate every registry file under `directory` (or one file).

    `key_variables` are the glob patterns a key reference must match (None: read
    them from LLM_REGISTRY_KEY_VARIABLES; empty: any variable that is not refused).
    """
    return validate_directories([directory], key_variables=key_variables)


def validate_directories(directories: Sequence[Path], *, key_variables: Iterable[str] | None = None) -> ValidationResult:
    """Load and validate every registry file under each directory, as one registry.

    Model names are unique across all of them (`registry.d/common registry.d/prod`);
    `key_variables` as for `validate_directory`.
    """
    if key_variables is None:
        key_variables = parse_allow_list(os.environ.get(KEY_VARIABLES_ENV))
    with collector_paused():
        registry, every, files = _load_and_validate(directories, tuple(key_variables))
    return ValidationResult(spec=None if has_errors(every) else registry, diagnostics=tuple(every), files=files)


def _load_and_validate(
    directories: Sequence[Path], key_variables: tuple[str, ...]
) -> tuple[spec.RegistrySpec, list[Diagnostic], tuple[str, ...]]:
    # One file at a time: each document (data and positions, several times the size of
    # the models it yields) is validated as soon as it is read and dropped before the
    # next file is read, so peak memory holds one document, not all of them.
    load_diagnostics: list[Diagnostic] = []
    found: list[tuple[Path, list[Path], bool]] = []
    for directory in dict.fromkeys(directories):
        files, problems = discover_files(directory)
        load_diagnostics.extend(problems)
        found.append((directory, files, bool(problems)))
    read: list[str] = []

    def documents() -> Iterator[Document]:
        for _, files, _ in found:
            for path in files:
                document, problems = load_file(path)
                load_diagnostics.extend(problems)
                if document is not None:
                    read.append(document.file)
                    yield document

    registry, diagnostics = validate_documents(documents(), key_variables=key_variables)
    for directory, files, unreadable in found:
        if not files and not unreadable:
            load_diagnostics.append(no_files_warning(directory))
    every = sorted([*load_diagnostics, *diagnostics], key=Diagnostic.sort_key)
    return registry, every, tuple(read)


class _Facts(NamedTuple):
    """What the rules across files need from one model, read from its raw mapping.

    Taken from every model whose name is well-formed, valid or not, so that a duplicate
    name or a second default shows in the same run as a typo elsewhere in the model.
    """

    name: str
    model_type: str | None
    active: bool
    default: bool
    previous_names: tuple[tuple[str, Location], ...]
    location: Location
    name_location: Location
    default_location: Location | None


def _facts(document: Document, path: Path_, raw: Any, location: Location) -> _Facts | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        return None
    # Locations taken now, so that the facts do not keep the document alive.
    previous = raw.get("previous_names")
    default = raw.get("default") is True
    return _Facts(
        name=raw["name"],
        model_type=raw.get("type") if raw.get("type") in spec.MODEL_TYPES else None,
        active=raw.get("active", True) is not False,
        default=default,
        previous_names=tuple(
            (n, document.location(path + ("previous_names", i))) for i, n in enumerate(previous) if isinstance(n, str)
        ) if isinstance(previous, list) else (),
        location=location,
        name_location=document.location(path + ("name",)),
        default_location=document.location(path + ("default",)) if default else None,
    )


def validate_documents(
    documents: Iterable[Document], *, key_variables: Iterable[str] = ()
) -> tuple[spec.RegistrySpec, list[Diagnostic]]:
    """Validate parsed documents; the spec holds the models that passed on their own.

    Every problem in every document is returned (never just the first): each model is
    checked field by field, then the rules across files run over every model that has
    a name, including models with errors of their own. `key_variables`: the admin's
    allow-list of variable patterns (`references.refused_variable`).
    """
    key_variables = tuple(key_variables)
    diagnostics: list[Diagnostic] = []
    valid: list[tuple[spec.ModelDefinition, Location, tuple[spec.FieldReference, ...]]] = []
    facts: list[_Facts] = []
    for document in documents:
        for index, raw in _file_models(document, diagnostics):
            path: Path_ = ("models", index)
            location = document.location(path)
            model = _validate_model(document, path, raw, diagnostics, key_variables)
            if model is not None:
                valid.append((model, location, tuple(_references(model, document, path))))
            fact = _facts(document, path, raw, location)
            if fact is not None:
                facts.append(fact)
    diagnostics.extend(_cross_file_rules(facts))
    unique: dict[str, tuple[spec.ModelDefinition, Location, tuple[spec.FieldReference, ...]]] = {}
    for entry in valid:
        unique.setdefault(entry[0].name, entry)
    names = sorted(unique)
    registry = spec.RegistrySpec(
        models=tuple(unique[name][0] for name in names),
        locations={name: unique[name][1] for name in names},
        references=tuple(ref for name in names for ref in unique[name][2]),
    )
    return registry, diagnostics


def _references(model: spec.ModelDefinition, document: Document, path: Path_) -> Iterable[spec.FieldReference]:
    """The plan-time `${env:NAME}` fields of a valid model, each with its location."""
    for field_name in spec.PLAN_TIME_REFERENCE_FIELDS:
        value = getattr(model, field_name)
        variable = spec.env_reference_name(value) if isinstance(value, str) else None
        if variable is not None:
            yield spec.FieldReference(model.name, field_name, variable, document.location(path + (field_name,)))


def _file_models(document: Document, diagnostics: list[Diagnostic]) -> list[tuple[int, Any]]:
    data = document.data
    here = document.location(())
    if not isinstance(data, dict):
        diagnostics.append(error("not-a-mapping", f"expected a mapping with 'version: {spec.SCHEMA_VERSION}' and 'models:' at the top of the file, found {_yaml_type(data)}", here))
        return []
    for key in data:
        if key not in ("version", "models"):
            diagnostics.append(error("unknown-key", f"unknown top-level key {_show_key(key)}{_suggest(key, ('version', 'models'))}; a file holds 'version' and 'models'", document.location((key,), key=True)))
    if "version" not in data:
        diagnostics.append(error("missing-version", f"missing 'version: {spec.SCHEMA_VERSION}' at the top of the file", here))
    elif data["version"] != spec.SCHEMA_VERSION or isinstance(data["version"], bool):
        diagnostics.append(error("bad-version", f"unsupported version {data['version']!r}: this llm-registry reads 'version: {spec.SCHEMA_VERSION}'", document.location(("version",))))
    if "models" not in data:
        diagnostics.append(error("missing-models", "missing 'models:' (a list of model definitions)", here))
        return []
    models = data["models"]
    if models is None:
        return []  # `models:` with nothing under it: an empty file of models
    if not isinstance(models, list):
        diagnostics.append(error("bad-models", f"'models' must be a list of model definitions, not {_yaml_type(models)}", document.location(("models",))))
        return []
    return list(enumerate(models))


def _validate_model(
    document: Document, path: Path_, raw: Any, diagnostics: list[Diagnostic], key_variables: tuple[str, ...] = ()
) -> spec.ModelDefinition | None:
    # The matrix rules read the raw mapping, so they report even when other fields are wrong.
    problems: list[Diagnostic] = []
    model: spec.ModelDefinition | None = None
    try:
        if isinstance(raw, dict):
            problems.extend(_provider_rules(document, path, raw))
            problems.extend(_trust_rules(document, path, raw, key_variables))
        try:
            model = spec.MODEL_ADAPTER.validate_python(raw)
        except ValidationError as exc:
            problems.extend(_pydantic_diagnostics(document, path, raw, exc))
            model = None
    except Exception as exc:  # noqa: BLE001 - any value that makes Python raise is an error at its place
        problems.append(
            error("bad-value", f"this model holds a value llm-registry cannot read ({type(exc).__name__}); check its fields", document.location(path))
        )
        model = None
    if not problems:
        return model
    diagnostics.extend(problems)
    return None if has_errors(problems) else model


def _pydantic_diagnostics(document: Document, base: Path_, raw: Any, exc: ValidationError) -> list[Diagnostic]:
    model_type = raw.get("type") if isinstance(raw, dict) else None
    found: list[Diagnostic] = []
    for item in exc.errors(include_url=False, include_context=True):
        loc = tuple(item["loc"])
        if loc and loc[0] == model_type:
            loc = loc[1:]  # strip the discriminator tag pydantic puts first
        path = base + loc
        found.append(_describe(document, path, loc, model_type, item, raw))
    return found


def _field_label(loc: tuple[Any, ...]) -> str:
    """`parameters.top_k`, `previous_names[1]`: the field as a user finds it in the file."""
    label = ""
    for part in loc:
        label += f"[{part}]" if isinstance(part, int) else (f".{part}" if label else str(part))
    return label or "model"


def _show_key(key: Any) -> str:
    """A key as YAML spells it: 'name', null, true, 3."""
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return repr(key)


def _got(value: Any) -> str:
    """`the string 'yes'`, `an integer (5)`: what was written, for type errors (never for secrets)."""
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, (bool, int, float)) or value is None:
        return f"{_yaml_type(value)} ({_show_key(value)})" if value is not None else "null"
    return _yaml_type(value)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _type_hint(kind: str, value: Any) -> str:
    if kind == "string_type" and isinstance(value, (bool, int, float, datetime.date)):
        return "; put the value in quotes"
    if kind in ("int_type", "float_type") and isinstance(value, str) and _is_number(value):
        return "; write the number without quotes"
    if kind == "bool_type" and isinstance(value, str):
        return "; write true or false"
    return ""


def _describe(document: Document, path: Path_, loc: tuple[Any, ...], model_type: Any, item: dict[str, Any], raw_model: Any) -> Diagnostic:
    kind = item["type"]
    field_name = str(loc[-1]) if loc else ""
    label = _field_label(loc)
    value = item.get("input")
    secret = bool(set(map(str, loc)) & _SECRET_FIELDS)
    ctx = item.get("ctx") or {}

    if kind == "union_tag_not_found":
        return error("missing-key", "missing key 'type' (one of embedding, generation, ner)", document.location(path))
    if kind == "union_tag_invalid":
        raw_type = raw_model.get("type") if isinstance(raw_model, dict) else None
        if not isinstance(raw_type, str):
            return error("wrong-type", f"type: expected one of embedding, generation, ner, got {_got(raw_type)}", document.location(path + ("type",)))
        tag = str(ctx.get("tag"))
        return error("bad-value", f"type {tag!r} is not one of embedding, generation, ner{_suggest(tag, spec.MODEL_TYPES)}", document.location(path + ("type",)))
    if kind == "missing":
        where = f" in {_field_label(loc[:-1])}" if len(loc) > 1 else ""
        return error("missing-key", f"missing required key {field_name!r}{where}", document.location(path[:-1], key=True))
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model_type, loc[:-1])
        hint = _suggest(field_name, allowed) or (f" (allowed here: {', '.join(allowed)})" if allowed else "")
        where = f" in {_field_label(loc[:-1])}" if len(loc) > 1 else ""
        return error("unknown-key", f"unknown key {field_name!r}{where}{hint}", document.location(path, key=True))
    where = document.location(path)
    if secret:
        return error("bad-secret", _secret_message(value), where)
    if kind in _EXPECTED and not loc:
        return error("wrong-type", f"each entry under 'models' must be a mapping (name: ..., type: ..., ...), not {_yaml_type(value)}", where)
    if kind in _EXPECTED:
        return error("wrong-type", f"{label}: expected {_EXPECTED[kind]}, got {_got(value)}{_type_hint(kind, value)}", where)
    if kind == "literal_error":
        choices = ctx.get("expected", "")
        options = [c.strip(" '") for c in choices.replace(" or ", ", ").split(",")]
        return error("bad-value", f"{label}: {value!r} is not one of {', '.join(options)}{_suggest(str(value), options)}", where)
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return error("out-of-range", f"{label}: {_range_text(loc, model_type, kind)} (got {value!r})", where)
    if kind == "string_pattern_mismatch" and (field_name == "name" or (len(loc) >= 2 and loc[-2] == "previous_names")):
        return error("bad-name", f"{label}: {value!r} is not a valid model name: use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit, at most 63 characters", where)
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return error("bad-value", f"{label}: must not be empty", where)
    if kind in ("string_too_short", "string_too_long"):
        return error("bad-value", f"{label}: {item['msg'].lower()}", where)
    if kind == "value_error":
        message = str(item["msg"]).removeprefix("Value error, ")
        # A rule across fields names its field first: point at that field when it is there.
        named = path + (message.split(" ", 1)[0],)
        return error("bad-value", message, document.positions.get(named, where))
    return error("bad-value", f"{label}: {item['msg']}", where)


def _secret_message(value: Any) -> str:
    # Never echo the value: it may be a real key pasted by mistake.
    if isinstance(value, str) and spec.looks_like_reference(value):
        return "api_key: malformed reference; write it as ${env:NAME} with NAME made of letters, digits and '_'"
    return (
        "api_key holds a literal value; never commit a key. Write a reference such as "
        "${env:OPENAI_API_KEY} and set that variable where plan and apply run"
    )


def _range_text(loc: tuple[Any, ...], model_type: Any, kind: str) -> str:
    """The field's range in words, read from its pydantic bounds."""
    model_class = _class_at(model_type, loc[:-1])
    info = model_class.model_fields.get(str(loc[-1])) if model_class else None
    low = high = None
    strict_low = False
    metadata = list(info.metadata) if info else []
    # `PositiveInt | None` keeps its bounds inside the Annotated member of the union.
    for member in typing.get_args(info.annotation) if info else ():
        for extra in typing.get_args(member)[1:]:
            metadata.extend(getattr(extra, "metadata", [extra]))
    for meta in metadata:
        low = getattr(meta, "ge", low)
        if getattr(meta, "gt", None) is not None:
            low, strict_low = meta.gt, True
        high = getattr(meta, "le", high)
    if strict_low and low == 0 and high is not None and high >= spec.INT4_MAX:
        if kind in ("less_than", "less_than_equal"):
            return f"must be at most {high}, the largest number the registry stores"
        return "must be a positive integer"
    if strict_low and low == 0:
        return f"must be a positive integer, at most {high}"
    if low is not None and high is not None:
        return f"must be between {low} and {high}"
    return "out of range"


def _class_at(model_type: Any, loc: tuple[Any, ...]) -> type[BaseModel] | None:
    current: type[BaseModel] | None = spec.MODEL_CLASSES.get(model_type) if isinstance(model_type, str) else None
    for part in loc:
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            return None
        annotation = current.model_fields[part].annotation
        current = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return current


def _allowed_keys(model_type: Any, loc: tuple[Any, ...]) -> tuple[str, ...]:
    model_class = _class_at(model_type, loc)
    if model_class is None and not loc:
        return tuple(sorted({f for cls in spec.MODEL_CLASSES.values() for f in cls.model_fields}))
    return tuple(model_class.model_fields) if model_class else ()


def _suggest(word: Any, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _yaml_type(value: Any) -> str:
    return _YAML_TYPE_NAMES.get(type(value), type(value).__name__)


def _provider_rules(document: Document, path: Path_, raw: dict[Any, Any]) -> Iterable[Diagnostic]:
    """The provider matrix of DESIGN.md, active/default and top_k, on one model's raw mapping.

    Each rule runs only when the fields it reads are well-formed; pydantic reports the rest.
    """
    provider, model_type, name = raw.get("provider"), raw.get("type"), raw.get("name")
    if provider not in providers.PROVIDER_MATRIX:
        return
    rules = providers.PROVIDER_MATRIX[provider]
    at = document.location
    label = f"model {name!r}: " if isinstance(name, str) else ""
    if model_type in spec.MODEL_TYPES and model_type not in rules["types"]:
        offers = " and ".join(rules["types"])
        yield error("provider-type", f"{provider} does not serve {model_type} models ({provider} offers {offers})", at(path + ("provider",)))
    if rules["api_key"] == "required" and raw.get("api_key") is None:
        variable = f"{provider.upper()}_API_KEY"
        yield error("missing-api-key", f"{label}{provider} needs an api_key, e.g. 'api_key: ${{env:{variable}}}'", at(path))
    if rules["api_key"] == "forbidden" and raw.get("api_key") is not None:
        yield error("unexpected-api-key", f"{provider} takes no api_key; remove it", at(path + ("api_key",), key=True))
    if rules["api_endpoint"] == "required" and raw.get("api_endpoint") is None:
        example = "http://ollama.internal:11434" if provider == "ollama" else "https://<resource>.openai.azure.com"
        yield error("missing-endpoint", f"{label}{provider} needs an api_endpoint, e.g. {example}", at(path))
    if provider == "azure" and raw.get("api_version") is None:
        yield error("missing-api-version", f"{label}azure needs an api_version, e.g. '2024-10-21'", at(path))
    if provider != "azure" and raw.get("api_version") is not None:
        yield error("unexpected-api-version", f"api_version applies only to azure, not {provider}; remove it", at(path + ("api_version",), key=True))
    if raw.get("default") is True and raw.get("active") is False:
        yield error("inactive-default", f"{label}a default model must be active: set 'active: true' or remove 'default: true'", at(path + ("default",)))
    previous = raw.get("previous_names")
    if isinstance(previous, list) and name in previous:
        where = at(path + ("previous_names", previous.index(name)))
        yield error("bad-rename", f"{label}lists its own name in previous_names; remove it", where)
    parameters = raw.get("parameters")
    top_k = parameters.get("top_k") if isinstance(parameters, dict) else None
    if isinstance(top_k, int) and not isinstance(top_k, bool) and top_k > 0 and provider in providers.PROVIDERS_WITHOUT_TOP_K:
        yield warning("ignored-top-k", f"{provider} does not offer top_k; it will be stored but has no effect", at(path + ("parameters", "top_k")))


def _trust_rules(document: Document, path: Path_, raw: dict[Any, Any], key_variables: tuple[str, ...]) -> Iterable[Diagnostic]:
    """References to variables a registry may not use, and endpoints with credentials (references.py)."""
    for field_name in ("api_key", "api_endpoint", "api_version"):
        value = raw.get(field_name)
        name = spec.env_reference_name(value) if isinstance(value, str) else None
        if name is None:
            continue
        reason = refused_variable(name, key_variables, field=field_name)
        if reason is not None:
            yield error("refused-variable", refused_variable_message(field_name, name, reason), document.location(path + (field_name,)))
    endpoint = raw.get("api_endpoint")
    if isinstance(endpoint, str):
        problem = endpoint_credentials_problem(endpoint)
        if problem is not None:
            yield error("endpoint-credentials", problem, document.location(path + ("api_endpoint",)))


def _cross_file_rules(models: list[_Facts]) -> list[Diagnostic]:
    """Unique names, consistent renames, at most one default per type, a default per used type."""
    found: list[Diagnostic] = []
    first_by_name: dict[str, Location] = {}
    by_name: dict[str, list[_Facts]] = defaultdict(list)
    for model in models:
        by_name[model.name].append(model)
        first_by_name.setdefault(model.name, model.location)
    for name, same in by_name.items():
        if len(same) < 2:
            continue
        # An error at every place the name is defined: whichever file the reader has
        # open, the message points at the other(s).
        for model in same:
            # The same place as each other's own error (the name's value), so both read alike.
            others = ", ".join(str(other.name_location) for other in same if other is not model)
            found.append(
                error(
                    "duplicate-name",
                    f"duplicate model name {name!r}: also defined at {others}; "
                    "names are unique across all files and directories",
                    model.name_location,
                )
            )

    claimed_by: dict[str, tuple[str, Location]] = {}
    for model in models:
        for old_name, where in model.previous_names:
            if old_name == model.name:
                continue  # reported on the model itself (bad-rename)
            if old_name in first_by_name:
                found.append(
                    error(
                        "rename-conflict",
                        f"{old_name!r} is in previous_names of {model.name!r} but is also a model of its own "
                        f"(at {first_by_name[old_name]}); remove one of them",
                        where,
                    )
                )
            elif old_name in claimed_by and claimed_by[old_name][0] != model.name:
                other, other_at = claimed_by[old_name]
                found.append(
                    error(
                        "rename-conflict",
                        f"{old_name!r} is in previous_names of both {other!r} (at {other_at}) and {model.name!r}; "
                        "a model can be renamed into only one",
                        where,
                    )
                )
            else:
                claimed_by.setdefault(old_name, (model.name, where))

    defaults: dict[str, list[tuple[_Facts, Location]]] = defaultdict(list)
    active_by_type: dict[str, list[_Facts]] = defaultdict(list)
    for model in models:
        if model.model_type is None:
            continue
        if model.default:
            defaults[model.model_type].append((model, model.default_location or model.location))
        if model.active:
            active_by_type[model.model_type].append(model)
    for model_type, marked in defaults.items():
        first, first_at = marked[0]
        for other, where in marked[1:]:
            found.append(
                error(
                    "multiple-defaults",
                    f"more than one default {model_type} model: {other.name!r} and {first.name!r} (at {first_at}); "
                    "keep 'default: true' on one",
                    where,
                )
            )
    for model_type in spec.MODEL_TYPES:
        if active_by_type.get(model_type) and model_type not in defaults:
            first = active_by_type[model_type][0]
            found.append(
                warning(
                    "no-default",
                    f"no default {model_type} model: set 'default: true' on one of the active {model_type} models",
                    first.location,
                )
            )
    return found
