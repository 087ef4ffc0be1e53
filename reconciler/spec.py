"""The model definition format: pydantic models, the provider matrix and the flat record.

Everything here is pure. `load.py` turns files into located documents; `validate.py`
runs these models over them and maps every error back to `file:line:column`.

A model in git becomes a *record*: a flat dict with one key per column of
`llm_models` (see `RECORD_FIELDS`). Defaults are filled in here, once, so that the
plan compares like with like: an omitted field that equals its default is no change.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Annotated, Any, Literal, Mapping, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from reconciler.diagnostics import Location
# The provider facts live in `providers`; re-exported here for the format's readers.
from reconciler.providers import PROVIDER_MATRIX, PROVIDERS, PROVIDERS_WITHOUT_TOP_K, Provider  # noqa: F401

# The format's `version:` (validate, export and the JSON Schema write and read this one).
SCHEMA_VERSION = 1

ModelType = Literal["embedding", "generation", "ner"]
DistanceMetric = Literal["cosine", "dot_product", "euclidean"]
MODEL_TYPES: tuple[str, ...] = get_args(ModelType)

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
ENV_REFERENCE_PATTERN = r"^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$"
ENDPOINT_PATTERN = r"^https?://[^\s/?#]+[^\s]*$"
# What a file may hold in api_endpoint: a URL, or `${env:NAME}` resolved at plan time.
ENDPOINT_OR_REFERENCE_PATTERN = r"^(https?://[^\s/?#]+[^\s]*|\$\{env:[A-Za-z_][A-Za-z0-9_]*\})$"
_ENV_REFERENCE = re.compile(ENV_REFERENCE_PATTERN)

# Largest value a PostgreSQL `integer` column holds; bounds keep every value storable.
INT4_MAX = 2_147_483_647
MAX_DIMENSIONS = 65_536
MAX_BATCH_SIZE = 2048

# The columns of llm_models that a definition determines, in display order.
# `api_key` stands for the pair of columns (api_key: the ciphertext, api_key_fingerprint).
RECORD_FIELDS: tuple[str, ...] = (
    "type",
    "provider",
    "model_id",
    "api_endpoint",
    "api_version",
    "api_key",
    "is_active",
    "is_default",
    "description",
    "dimensions",
    "max_tokens",
    "normalize",
    "distance_metric",
    "batch_size",
    "context_window",
    "max_output_tokens",
    "temperature",
    "top_p",
    "top_k",
)
PARAMETER_FIELDS: tuple[str, ...] = RECORD_FIELDS[RECORD_FIELDS.index("dimensions") :]


class _Strict(BaseModel):
    """Base for every part of the format: unknown keys are errors, no type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


PositiveInt = Annotated[int, Field(gt=0, le=INT4_MAX)]


class EmbeddingParameters(_Strict):
    """Parameters of an embedding model (AC-7.9.5)."""

    dimensions: int = Field(gt=0, le=MAX_DIMENSIONS, description="Length of the vectors the model returns.")
    max_tokens: PositiveInt | None = Field(8192, description="Longest input the model embeds, in tokens; null: not set.")
    normalize: bool | None = Field(True, description="Whether vectors are normalised to unit length; null: not set.")
    distance_metric: DistanceMetric | None = Field("cosine", description="How KBs compare the vectors; null: not set.")
    batch_size: int | None = Field(32, ge=1, le=MAX_BATCH_SIZE, description="Texts sent per embedding request; null: not set.")


class GenerationParameters(_Strict):
    """Parameters of a generation model (AC-7.9.6)."""

    context_window: PositiveInt = Field(description="Tokens the model reads, prompt and answer together.")
    max_output_tokens: PositiveInt | None = Field(None, description="Longest answer; at most context_window.")
    temperature: float | None = Field(0.7, ge=0.0, le=2.0, description="Sampling temperature, 0.0 to 2.0; null: not set.")
    top_p: float | None = Field(1.0, ge=0.0, le=1.0, description="Nucleus sampling, 0.0 to 1.0; null: not set.")
    top_k: PositiveInt | None = Field(None, description="Top-k sampling; not offered by openai or azure.")

    @model_validator(mode="after")
    def _output_fits_context(self) -> "GenerationParameters":
        if self.max_output_tokens is not None and self.max_output_tokens > self.context_window:
            raise ValueError(
                f"max_output_tokens ({self.max_output_tokens}) must not exceed "
                f"context_window ({self.context_window})"
            )
        return self


class NerParameters(_Strict):
    """Parameters of a named-entity-recognition model."""

    max_tokens: PositiveInt | None = Field(8192, description="Longest input, in tokens; null: not set.")
    batch_size: int | None = Field(32, ge=1, le=MAX_BATCH_SIZE, description="Texts sent per request; null: not set.")


class _ModelBase(_Strict):
    """The fields every type of model has. Never validated itself (its subclasses are),
    so pydantic builds no validator for it: `defer_build`, which the subclasses turn off."""

    model_config = ConfigDict(defer_build=True)

    name: str = Field(pattern=NAME_PATTERN, description="Unique across all files; the model's identity.")
    provider: Provider
    model_id: str = Field(min_length=1, max_length=255, description="The provider's name for the model.")
    api_endpoint: str | None = Field(
        None, max_length=2048, description="Base URL of the provider's API, or ${env:NAME} resolved at plan time."
    )
    api_version: str | None = Field(
        None, min_length=1, max_length=64, description="Azure API version, or ${env:NAME} resolved at plan time."
    )
    api_key: str | None = Field(
        None,
        pattern=ENV_REFERENCE_PATTERN,
        description="A reference such as ${env:OPENAI_API_KEY}, never the key itself.",
    )
    active: bool = True
    default: bool = Field(False, description="At most one default per type; a default must be active.")
    description: str = Field("", max_length=2000)
    # strict=False on the container only: YAML gives a list, and a strict tuple refuses
    # lists. The items stay strict (a number is still not a name).
    previous_names: tuple[Annotated[str, Field(pattern=NAME_PATTERN)], ...] = Field(
        (),
        strict=False,
        description="Earlier names of this model: renames it in place, keeping its id and KB links.",
    )

    @field_validator("api_endpoint")
    @classmethod
    def _endpoint_is_http_url(cls, value: str | None) -> str | None:
        if value is None or env_reference_name(value) is not None:
            return value  # a reference is resolved, then checked, at plan time
        if looks_like_reference(value):
            raise ValueError("api_endpoint: malformed reference; write it as ${env:NAME}")
        if not is_http_url(value):
            raise ValueError("api_endpoint must be an http:// or https:// URL")
        return value

    @field_validator("api_version")
    @classmethod
    def _version_reference_well_formed(cls, value: str | None) -> str | None:
        if value is not None and looks_like_reference(value) and env_reference_name(value) is None:
            raise ValueError("api_version: malformed reference; write it as ${env:NAME}")
        return value


class EmbeddingModel(_ModelBase):
    """A model that turns text into vectors for a KB's index."""

    model_config = ConfigDict(defer_build=False)
    type: Literal["embedding"]
    parameters: EmbeddingParameters


class GenerationModel(_ModelBase):
    """A model that writes answers."""

    model_config = ConfigDict(defer_build=False)
    type: Literal["generation"]
    parameters: GenerationParameters


class NerModel(_ModelBase):
    """A model that extracts named entities."""

    model_config = ConfigDict(defer_build=False)
    type: Literal["ner"]
    parameters: NerParameters = NerParameters()


ModelSpec = Annotated[Union[EmbeddingModel, GenerationModel, NerModel], Field(discriminator="type")]


class RegistryFile(_Strict):
    """One file of the registry directory."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        json_schema_extra={"title": "llm-registry model definitions"},
        # Only `json_schema()` (the `schema` command) uses this class; `validate` checks a
        # file's shape itself and each model through MODEL_ADAPTER, so the validator is
        # built on first use rather than at every start.
        defer_build=True,
    )

    version: Literal[1]  # = SCHEMA_VERSION: typing.Literal takes the value itself, not a name
    models: tuple[ModelSpec, ...] = Field(strict=False)  # a YAML list; see previous_names


REGISTRY_FILE_ADAPTER: TypeAdapter[RegistryFile] = TypeAdapter(RegistryFile)


SCHEMA_ID = "https://llm-registry.dev/schemas/registry.schema.json"


def json_schema() -> dict[str, Any]:
    """Return the JSON Schema of one registry file, for editors and `llm-registry schema`.

    Generated from the pydantic models, plus what pydantic cannot say on its own and
    `validate` checks across fields of one model: the provider matrix as `if`/`then`
    (key required or forbidden, endpoint required, `api_version` only for azure),
    which providers serve each type, the endpoint's URL shape, and that a default is
    active. What needs more than one model (unique names, one default per type) or
    two fields' values (max_output_tokens <= context_window) stays with `validate`.
    """
    schema = REGISTRY_FILE_ADAPTER.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    for model_type, model_class in MODEL_CLASSES.items():
        definition = schema["$defs"][model_class.__name__]
        properties = definition["properties"]
        properties["provider"]["enum"] = [p for p in PROVIDERS if model_type in PROVIDER_MATRIX[p]["types"]]
        for option in properties["api_endpoint"]["anyOf"]:
            if option.get("type") == "string":
                option["pattern"] = ENDPOINT_OR_REFERENCE_PATTERN
        definition["allOf"] = _matrix_rules()
    # `oneOf` + OpenAPI's `discriminator` (which JSON Schema validators ignore) makes a
    # validator report "not valid under any of the given schemas" for any mistake; an
    # if/then per type points at the field instead, in every validator.
    items = schema["properties"]["models"]["items"]
    mapping = items["discriminator"]["mapping"]
    del items["oneOf"]
    items.update(
        type="object",
        required=["type"],
        properties={"type": {"enum": list(MODEL_TYPES), "description": "Decides which parameters apply."}},
        allOf=[
            {"if": {"properties": {"type": {"const": t}}, "required": ["type"]}, "then": {"$ref": ref}}
            for t, ref in mapping.items()
        ],
    )
    return schema


def _matrix_rules() -> list[dict[str, Any]]:
    """`if provider is P then ...` for every provider, and `if default then active`."""
    rules: list[dict[str, Any]] = []
    for provider, matrix in PROVIDER_MATRIX.items():
        required: list[str] = []
        absent: dict[str, Any] = {}  # null, like an omitted field, as validate reads it
        for field in ("api_key", "api_endpoint"):
            if matrix[field] == "required":
                required.append(field)
            elif matrix[field] == "forbidden":
                absent[field] = {"type": "null", "description": f"{provider} takes no {field}"}
        if provider == "azure":
            required.append("api_version")
        else:
            absent["api_version"] = {"type": "null", "description": "api_version applies only to azure"}
        then: dict[str, Any] = {"required": required} if required else {}
        if absent:
            then["properties"] = absent
        rules.append({"if": {"properties": {"provider": {"const": provider}}, "required": ["provider"]}, "then": then})
    rules.append(
        {
            "if": {"properties": {"default": {"const": True}}, "required": ["default"]},
            "then": {"properties": {"active": {"const": True, "description": "A default model must be active."}}},
        }
    )
    return rules


# Fields that may hold `${env:NAME}` resolved at plan time (environments: one registry,
# several deployments). api_key is different: resolved only at apply, never shown.
PLAN_TIME_REFERENCE_FIELDS: tuple[str, ...] = ("api_endpoint", "api_version")


def is_http_url(value: str) -> bool:
    """True for an http:// or https:// URL with a host (what api_endpoint accepts)."""
    return bool(re.match(ENDPOINT_PATTERN, value))


def env_reference_name(reference: str) -> str | None:
    """Return NAME for a well-formed `${env:NAME}` reference, else None."""
    if not reference.startswith("${env:"):  # most values (URLs, versions): no regex needed
        return None
    match = _ENV_REFERENCE.match(reference)
    return match.group(1) if match else None


def looks_like_reference(value: str) -> bool:
    """True when a value was meant as a reference (starts with `$`), well-formed or not."""
    return value.strip().startswith("$")


def desired_record(model: "ModelDefinition") -> dict[str, Any]:
    """Flatten a validated model into the column values it asks for, defaults filled in.

    `api_key` holds the reference string (or None); the plan compares it by fingerprint.
    Parameters that do not belong to the model's type are None, as in the table.
    """
    record: dict[str, Any] = dict.fromkeys(RECORD_FIELDS)
    record["type"] = model.type
    record["provider"] = model.provider
    record["model_id"] = model.model_id
    record["api_endpoint"] = model.api_endpoint
    record["api_version"] = model.api_version
    record["api_key"] = model.api_key
    record["is_active"] = model.active
    record["is_default"] = model.default
    record["description"] = model.description
    # A parameters model holds plain values only (no nested models, aliases or extras),
    # so its __dict__ is its model_dump() at a tenth of the cost (a test holds the two equal).
    record.update(model.parameters.__dict__)
    if record["temperature"] is not None:
        record["temperature"] = float(record["temperature"])
    if record["top_p"] is not None:
        record["top_p"] = float(record["top_p"])
    return record


ModelDefinition = Union[EmbeddingModel, GenerationModel, NerModel]


def keep_unset_parameters(
    model: "ModelDefinition", desired: Mapping[str, Any], stored: Mapping[str, Any]
) -> dict[str, Any]:
    """`desired` for an existing row, with omitted parameters left unset where the row has them unset.

    A parameter the file does not write takes its default on a new row. On an existing
    row whose column is NULL (a row from the old admin page) the default is *not*
    filled in: writing it would change a KB-used embedding model's `normalize` or
    `distance_metric`, a change the plan blocks, and nobody asked for it. Writing the
    value (or `null`) in the file says what is wanted either way.
    """
    written = model.parameters.model_fields_set
    adjusted = dict(desired)
    for name in _parameter_names(type(model.parameters)):
        if name not in written and adjusted[name] is not None and stored.get(name) is None:
            adjusted[name] = None
    return adjusted


@functools.cache
def _parameter_names(parameters_class: type[BaseModel]) -> tuple[str, ...]:
    # model_fields is a computed class property in pydantic: read once per class.
    return tuple(parameters_class.model_fields)


MODEL_CLASSES: dict[str, type[_ModelBase]] = {"embedding": EmbeddingModel, "generation": GenerationModel, "ner": NerModel}
MODEL_ADAPTER: TypeAdapter[ModelDefinition] = TypeAdapter(ModelSpec)


@dataclass(frozen=True)
class FieldReference:
    """A `${env:NAME}` in a plan-time field (PLAN_TIME_REFERENCE_FIELDS) of one model.

    `value` is None until `pipeline.resolve_field_references` fills it in.
    """

    model: str
    field: str
    variable: str
    location: Location | None = None
    value: str | None = None


@dataclass(frozen=True)
class RegistrySpec:
    """The validated registry: every model in git, sorted by name, and where each is defined.

    `references` lists the plan-time `${env:NAME}` fields, in model then field order.
    """

    models: tuple[ModelDefinition, ...] = ()
    locations: Mapping[str, Location] = dataclass_field(default_factory=dict)
    references: tuple[FieldReference, ...] = ()

    def by_name(self) -> dict[str, ModelDefinition]:
        """The models keyed by name."""
        return {model.name: model for model in self.models}


def parameter_fields(model_type: str) -> tuple[str, ...]:
    """The parameters a model of this type takes, in `PARAMETER_FIELDS` order (none for an unknown type)."""
    model_class = MODEL_CLASSES.get(model_type)
    if model_class is None:
        return ()
    taken = model_class.model_fields["parameters"].annotation.model_fields  # type: ignore[union-attr]
    return tuple(field for field in PARAMETER_FIELDS if field in taken)


_FIELD_NAMES_IN_YAML = {"is_active": "active", "is_default": "default"}


def yaml_field_name(record_field: str) -> str:
    """How a record field is written in a registry file (`dimensions` -> `parameters.dimensions`)."""
    if record_field in PARAMETER_FIELDS:
        return f"parameters.{record_field}"
    return _FIELD_NAMES_IN_YAML.get(record_field, record_field)
