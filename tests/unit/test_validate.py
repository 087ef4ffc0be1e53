"""Every rule of `validate`, accepted and rejected, with its message and its place.

Files are written with the factories; `at()` finds where a piece of text sits in the
written file, so each test asserts the exact line and column a user would be sent to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.diagnostics import Diagnostic
from reconciler.validate import ValidationResult, validate_directories, validate_directory
from tests.factories import (
    CANARY_KEY,
    embedding_model,
    generation_model,
    ner_model,
    write_registry_file,
    write_text_file,
)

# --------------------------------------------------------------------------- helpers


def check(directory: Path, *models: dict[str, Any], filename: str = "models.yaml") -> ValidationResult:
    """Write `models` into one registry file and validate the directory."""
    write_registry_file(directory, models, filename)
    return validate_directory(directory)


def check_text(directory: Path, text: str, filename: str = "models.yaml") -> ValidationResult:
    """Write a registry file verbatim and validate the directory."""
    write_text_file(directory, text, filename)
    return validate_directory(directory)


def at(path: Path, needle: str, *, occurrence: int = 1, value: bool = False) -> tuple[int, int]:
    """(line, column), 1-based, of the `occurrence`-th `needle` in the file.

    With `value=True` the column is that of the value after `key: ` in the needle.
    """
    seen = 0
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        column = line.find(needle)
        if column != -1:
            seen += 1
            if seen == occurrence:
                if value:
                    column += needle.index(": ") + 2
                return number, column + 1
    raise AssertionError(f"{needle!r} not found in {path}")


def only(result: ValidationResult, code: str) -> Diagnostic:
    """The single diagnostic with `code`; fails listing all diagnostics otherwise."""
    found = [d for d in result.diagnostics if d.code == code]
    assert len(found) == 1, f"expected one {code!r}, got: {[(d.code, d.message) for d in result.diagnostics]}"
    return found[0]


def place(diagnostic: Diagnostic) -> tuple[int, int]:
    assert diagnostic.location is not None
    return diagnostic.location.line, diagnostic.location.column


def assert_valid(result: ValidationResult) -> None:
    assert result.ok, [f"{d.location}: {d.message}" for d in result.errors]
    assert result.spec is not None


def defaults_for_each_type() -> list[dict[str, Any]]:
    """One default per type, so that "no default" warnings stay out of the way."""
    return [embedding_model(default=True), generation_model(default=True), ner_model(default=True)]


def models_file(directory: Path) -> Path:
    return directory / "models.yaml"


# --------------------------------------------------------------------------- the happy path


def test_valid_registry_gives_a_spec_with_every_model_sorted_by_name(tmp_path: Path) -> None:
    models = defaults_for_each_type()
    result = check(tmp_path, *models)
    assert_valid(result)
    assert result.diagnostics == ()
    assert [m.name for m in result.spec.models] == sorted(m["name"] for m in models)
    assert [Path(f).name for f in result.files] == ["models.yaml"]
    first = result.spec.locations[models[0]["name"]]
    assert first.line == at(models_file(tmp_path), f"name: {models[0]['name']}")[0]


def test_spec_is_none_when_any_error(tmp_path: Path) -> None:
    result = check(tmp_path, *defaults_for_each_type(), generation_model(parameters={"temperature": 5}))
    assert not result.ok
    assert result.spec is None


def test_ner_model_without_parameters_takes_the_defaults(tmp_path: Path) -> None:
    model = ner_model(default=True, parameters=None)
    result = check(tmp_path, model)
    assert_valid(result)
    assert result.spec.models[0].parameters.max_tokens == 8192


# --------------------------------------------------------------------------- unknown keys


def test_typo_in_a_parameter_is_an_error_with_did_you_mean(tmp_path: Path) -> None:
    result = check(tmp_path, generation_model(parameters={"temprature": 0.5}))
    diagnostic = only(result, "unknown-key")
    assert diagnostic.message == "unknown key 'temprature' in parameters (did you mean 'temperature'?)"
    assert place(diagnostic) == at(models_file(tmp_path), "temprature:")
    assert not result.ok


def test_typo_in_a_model_key_suggests_the_right_one(tmp_path: Path) -> None:
    model = embedding_model()
    model["modle_id"] = model.pop("model_id")
    result = check(tmp_path, model)
    assert only(result, "unknown-key").message == "unknown key 'modle_id' (did you mean 'model_id'?)"
    assert place(only(result, "unknown-key")) == at(models_file(tmp_path), "modle_id:")
    assert only(result, "missing-key").message == "missing required key 'model_id'"


def test_unknown_key_without_a_close_match_lists_the_allowed_keys(tmp_path: Path) -> None:
    result = check(tmp_path, ner_model(parameters={"colour": "blue"}))
    assert only(result, "unknown-key").message == (
        "unknown key 'colour' in parameters (allowed here: max_tokens, batch_size)"
    )


def test_a_parameter_of_another_type_is_unknown(tmp_path: Path) -> None:
    result = check(tmp_path, generation_model(parameters={"dimensions": 768}))
    diagnostic = only(result, "unknown-key")
    assert diagnostic.message.startswith("unknown key 'dimensions' in parameters")
    assert place(diagnostic) == at(models_file(tmp_path), "dimensions:")


def test_unknown_top_level_key(tmp_path: Path) -> None:
    result = check_text(tmp_path, "version: 1\nmodel:\n  - name: x\nmodels: []\n")
    diagnostic = only(result, "unknown-key")
    assert diagnostic.message == "unknown top-level key 'model' (did you mean 'models'?); a file holds 'version' and 'models'"
    assert place(diagnostic) == (2, 1)


def test_null_top_level_key_is_shown_as_yaml_writes_it(tmp_path: Path) -> None:
    result = check_text(tmp_path, "version: 1\nmodels: []\n~: 3\n")
    assert only(result, "unknown-key").message.startswith("unknown top-level key null;")


# --------------------------------------------------------------------------- wrong types


def test_quoted_number_for_an_integer(tmp_path: Path) -> None:
    result = check_text(
        tmp_path,
        "version: 1\nmodels:\n  - name: e\n    type: embedding\n    provider: ollama\n    model_id: m\n"
        "    api_endpoint: http://x\n    default: true\n    parameters:\n      dimensions: '768'\n",
    )
    diagnostic = only(result, "wrong-type")
    assert diagnostic.message == (
        "parameters.dimensions: expected an integer, got the string '768'; write the number without quotes"
    )
    assert place(diagnostic) == (10, 19)


@pytest.mark.parametrize("written", ["yes", "no", "on", "off", "'true'", "Yes"])
def test_yes_style_booleans_are_refused_not_guessed(tmp_path: Path, written: str) -> None:
    # PyYAML (YAML 1.1) would read a plain `yes` as true; the editor's schema (YAML 1.2)
    # reads it as a string. validate sides with the editor and says so.
    path = write_text_file(
        tmp_path,
        "version: 1\nmodels:\n  - name: n\n    type: ner\n    provider: ollama\n    model_id: m\n"
        f"    api_endpoint: http://x\n    default: {written}\n",
    )
    result = validate_directory(tmp_path)
    diagnostic = only(result, "wrong-type")
    assert diagnostic.message == f"default: expected true or false, got the string {written.strip(chr(39))!r}; write true or false"
    assert place(diagnostic) == at(path, f"default: {written}", value=True)


@pytest.mark.parametrize("written", ["true", "false", "True", "FALSE"])
def test_true_and_false_are_booleans(tmp_path: Path, written: str) -> None:
    result = check_text(
        tmp_path,
        "version: 1\nmodels:\n  - name: n\n    type: ner\n    provider: ollama\n    model_id: m\n"
        f"    api_endpoint: http://x\n    default: true\n    active: {written}\n",
    )
    errors = [d.code for d in result.errors]
    assert "wrong-type" not in errors


def test_boolean_for_an_integer(tmp_path: Path) -> None:
    result = check(tmp_path, embedding_model(parameters={"dimensions": True}))
    assert only(result, "wrong-type").message == "parameters.dimensions: expected an integer, got a boolean (true)"


def test_word_for_a_number(tmp_path: Path) -> None:
    result = check(tmp_path, generation_model(parameters={"temperature": "warm"}))
    assert only(result, "wrong-type").message == "parameters.temperature: expected a number, got the string 'warm'"


def test_number_for_a_string_suggests_quotes(tmp_path: Path) -> None:
    result = check(tmp_path, ner_model(description=5))
    diagnostic = only(result, "wrong-type")
    assert diagnostic.message == "description: expected a string, got an integer (5); put the value in quotes"
    assert place(diagnostic) == at(models_file(tmp_path), "description: 5", value=True)


def test_list_for_parameters(tmp_path: Path) -> None:
    model = ner_model()
    model["parameters"] = [1, 2]
    result = check(tmp_path, model)
    assert only(result, "wrong-type").message == "parameters: expected a mapping, got a list"


def test_a_model_that_is_not_a_mapping(tmp_path: Path) -> None:
    result = check_text(tmp_path, "version: 1\nmodels:\n  - just-a-name\n")
    diagnostic = only(result, "wrong-type")
    assert diagnostic.message == "each entry under 'models' must be a mapping (name: ..., type: ..., ...), not a string"
    assert place(diagnostic) == (3, 5)


def test_unquoted_dates_and_exponents_read_as_yaml_1_2(tmp_path: Path) -> None:
    # `api_version: 2024-10-21` is a date in YAML 1.1; users (and the editor) mean the string.
    model = generation_model(
        provider="azure", default=True, api_endpoint="https://x.openai.azure.com", api_key="${env:AZURE_KEY}"
    )
    path = write_registry_file(tmp_path, [model, embedding_model(default=True)])
    path.write_text(path.read_text().replace("provider: azure\n", "provider: azure\n  api_version: 2024-10-21\n")
                    .replace("temperature: 0.7", "temperature: 7e-1"))
    result = validate_directory(tmp_path)
    assert_valid(result)
    azure = result.spec.by_name()[model["name"]]
    assert azure.api_version == "2024-10-21"
    assert azure.parameters.temperature == pytest.approx(0.7)


def test_unknown_type_suggests_the_closest(tmp_path: Path) -> None:
    result = check(tmp_path, ner_model(type="nerr"))
    diagnostic = only(result, "bad-value")
    assert diagnostic.message == "type 'nerr' is not one of embedding, generation, ner (did you mean 'ner'?)"
    assert place(diagnostic) == at(models_file(tmp_path), "type: nerr", value=True)


def test_missing_type(tmp_path: Path) -> None:
    result = check(tmp_path, ner_model(type=None))
    assert only(result, "missing-key").message == "missing key 'type' (one of embedding, generation, ner)"


def test_list_for_type(tmp_path: Path) -> None:
    result = check(tmp_path, ner_model(type=["ner"]))
    assert only(result, "wrong-type").message == "type: expected one of embedding, generation, ner, got a list"


def test_unknown_provider_suggests_the_closest(tmp_path: Path) -> None:
    result = check(tmp_path, ner_model(provider="olama"))
    diagnostic = only(result, "bad-value")
    assert diagnostic.message == (
        "provider: 'olama' is not one of ollama, openai, azure, gemini, anthropic, cohere (did you mean 'ollama'?)"
    )
    assert place(diagnostic) == at(models_file(tmp_path), "provider: olama", value=True)


def test_unknown_distance_metric(tmp_path: Path) -> None:
    result = check(tmp_path, embedding_model(parameters={"distance_metric": "cosinus"}))
    assert only(result, "bad-value").message == (
        "parameters.distance_metric: 'cosinus' is not one of cosine, dot_product, euclidean (did you mean 'cosine'?)"
    )


@pytest.mark.parametrize("name", ["Upper", "has space", "-leading-dash", "x" * 64, ""])
def test_invalid_model_name(tmp_path: Path, name: str) -> None:
    result = check(tmp_path, ner_model(name=name))
    diagnostic = only(result, "bad-name")
    assert diagnostic.message.startswith(f"name: {name!r} is not a valid model name: use lowercase letters")


@pytest.mark.parametrize("name", ["a", "x" * 63, "gpt-4o.mini_2"])
def test_valid_model_names(tmp_path: Path, name: str) -> None:
    assert_valid(check(tmp_path, ner_model(name=name, default=True)))


def test_empty_model_id(tmp_path: Path) -> None:
    result = check(tmp_path, ner_model(model_id=""))
    assert only(result, "bad-value").message == "model_id: must not be empty"


def test_endpoint_must_be_an_http_url(tmp_path: Path) -> None:
    result = check(tmp_path, ner_model(api_endpoint="ftp://host"))
    diagnostic = only(result, "bad-value")
    assert diagnostic.message == "api_endpoint must be an http:// or https:// URL"
    assert place(diagnostic) == at(models_file(tmp_path), "api_endpoint: ftp://host", value=True)


# --------------------------------------------------------------------------- ranges

RANGES = [
    # (factory, parameter, accepted values, rejected values, message)
    (embedding_model, "dimensions", [1, 65536], [0, -1, 65537], "must be a positive integer, at most 65536"),
    (embedding_model, "batch_size", [1, 2048], [0, 2049], "must be between 1 and 2048"),
    (ner_model, "batch_size", [1, 2048], [0, 2049], "must be between 1 and 2048"),
    (embedding_model, "max_tokens", [1, 2_147_483_647], [0, -5], "must be a positive integer"),
    (ner_model, "max_tokens", [1], [0], "must be a positive integer"),
    (generation_model, "temperature", [0.0, 0, 2.0, 2], [-0.1, 2.01, 3], "must be between 0.0 and 2.0"),
    (generation_model, "top_p", [0.0, 1.0, 1], [-0.01, 1.01], "must be between 0.0 and 1.0"),
    (generation_model, "context_window", [4096], [0, -1], "must be a positive integer"),
    (generation_model, "max_output_tokens", [1], [0], "must be a positive integer"),
    (generation_model, "top_k", [1, 40], [0, -3], "must be a positive integer"),
]


@pytest.mark.parametrize(
    ("factory", "parameter", "value", "message"),
    [(f, p, v, m) for f, p, _, rejected, m in RANGES for v in rejected],
)
def test_out_of_range_values_are_rejected_at_their_line(tmp_path: Path, factory: Any, parameter: str, value: Any, message: str) -> None:
    model = factory(parameters={parameter: value}, provider="ollama", api_key=None, api_endpoint="http://x")
    result = check(tmp_path, model)
    diagnostic = only(result, "out-of-range")
    assert diagnostic.message == f"parameters.{parameter}: {message} (got {value!r})"
    assert place(diagnostic) == at(models_file(tmp_path), f"{parameter}: {value}", value=True)


@pytest.mark.parametrize(
    ("factory", "parameter", "value"),
    [(f, p, v) for f, p, accepted, _, _ in RANGES for v in accepted],
)
def test_in_range_values_are_accepted(tmp_path: Path, factory: Any, parameter: str, value: Any) -> None:
    model = factory(parameters={parameter: value}, provider="ollama", api_key=None, api_endpoint="http://x", default=True)
    if parameter == "context_window":
        model["parameters"]["max_output_tokens"] = value
    assert_valid(check(tmp_path, model))


def test_integer_above_what_the_database_stores(tmp_path: Path) -> None:
    result = check(tmp_path, generation_model(parameters={"context_window": 2**31, "max_output_tokens": 1}))
    assert only(result, "out-of-range").message == (
        "parameters.context_window: must be at most 2147483647, the largest number the registry stores (got 2147483648)"
    )


def test_fraction_for_an_integer(tmp_path: Path) -> None:
    result = check(tmp_path, embedding_model(parameters={"dimensions": 768.5}))
    assert only(result, "wrong-type").message == "parameters.dimensions: expected an integer, got a number (768.5)"


def test_max_output_tokens_above_context_window_points_at_max_output_tokens(tmp_path: Path) -> None:
    result = check(tmp_path, generation_model(parameters={"context_window": 1000, "max_output_tokens": 1001}))
    diagnostic = only(result, "bad-value")
    assert diagnostic.message == "max_output_tokens (1001) must not exceed context_window (1000)"
    assert place(diagnostic) == at(models_file(tmp_path), "max_output_tokens: 1001", value=True)


def test_max_output_tokens_equal_to_context_window_is_fine(tmp_path: Path) -> None:
    model = generation_model(default=True, parameters={"context_window": 1000, "max_output_tokens": 1000})
    assert_valid(check(tmp_path, model))


def test_missing_required_parameter(tmp_path: Path) -> None:
    model = embedding_model()
    del model["parameters"]["dimensions"]
    result = check(tmp_path, model)
    diagnostic = only(result, "missing-key")
    assert diagnostic.message == "missing required key 'dimensions' in parameters"
    assert place(diagnostic) == at(models_file(tmp_path), "parameters:")


def test_missing_parameters_of_a_generation_model(tmp_path: Path) -> None:
    result = check(tmp_path, generation_model(parameters=None))
    assert only(result, "missing-key").message == "missing required key 'parameters'"


# --------------------------------------------------------------------------- provider matrix

REQUIRED_FIELDS: dict[str, dict[str, Any]] = {
    "ollama": {"api_key": None, "api_endpoint": "http://ollama:11434"},
    "openai": {"api_key": "${env:OPENAI_API_KEY}"},
    "azure": {"api_key": "${env:AZURE_KEY}", "api_endpoint": "https://x.openai.azure.com", "api_version": "2024-10-21"},
    "gemini": {"api_key": "${env:GEMINI_API_KEY}"},
    "anthropic": {"api_key": "${env:ANTHROPIC_API_KEY}"},
    "cohere": {"api_key": "${env:COHERE_API_KEY}"},
}
SERVES = {p: ["generation", "ner"] + ([] if p == "anthropic" else ["embedding"]) for p in REQUIRED_FIELDS}
FACTORIES = {"embedding": embedding_model, "generation": generation_model, "ner": ner_model}


def for_provider(provider: str, model_type: str, **overrides: Any) -> dict[str, Any]:
    """A valid model of `model_type` on `provider` (with what the matrix requires), then overrides."""
    fields: dict[str, Any] = {"provider": provider, "api_endpoint": None, "api_key": None, "default": True}
    fields.update(REQUIRED_FIELDS[provider])
    fields.update(overrides)
    return FACTORIES[model_type](**fields)


@pytest.mark.parametrize(("provider", "model_type"), [(p, t) for p, types in SERVES.items() for t in types])
def test_every_provider_and_type_the_matrix_allows_is_valid(tmp_path: Path, provider: str, model_type: str) -> None:
    assert_valid(check(tmp_path, for_provider(provider, model_type)))


def test_anthropic_embedding_is_rejected_at_the_provider_line(tmp_path: Path) -> None:
    result = check(tmp_path, for_provider("anthropic", "embedding"))
    diagnostic = only(result, "provider-type")
    assert diagnostic.message == "anthropic does not serve embedding models (anthropic offers generation and ner)"
    assert place(diagnostic) == at(models_file(tmp_path), "provider: anthropic", value=True)


@pytest.mark.parametrize("provider", ["openai", "azure", "gemini", "anthropic", "cohere"])
def test_missing_api_key_where_the_matrix_requires_one(tmp_path: Path, provider: str) -> None:
    model = for_provider(provider, "generation", api_key=None)
    result = check(tmp_path, model)
    diagnostic = only(result, "missing-api-key")
    assert diagnostic.message == (
        f"model {model['name']!r}: {provider} needs an api_key, e.g. 'api_key: ${{env:{provider.upper()}_API_KEY}}'"
    )
    assert place(diagnostic)[0] == at(models_file(tmp_path), f"name: {model['name']}")[0]


def test_ollama_takes_no_api_key(tmp_path: Path) -> None:
    result = check(tmp_path, for_provider("ollama", "embedding", api_key="${env:OLLAMA_KEY}"))
    diagnostic = only(result, "unexpected-api-key")
    assert diagnostic.message == "ollama takes no api_key; remove it"
    assert place(diagnostic) == at(models_file(tmp_path), "api_key:")


@pytest.mark.parametrize("provider", ["ollama", "azure"])
def test_missing_endpoint_where_the_matrix_requires_one(tmp_path: Path, provider: str) -> None:
    model = for_provider(provider, "generation", api_endpoint=None)
    result = check(tmp_path, model)
    diagnostic = only(result, "missing-endpoint")
    assert diagnostic.message.startswith(f"model {model['name']!r}: {provider} needs an api_endpoint, e.g. http")


@pytest.mark.parametrize("provider", ["openai", "gemini", "anthropic", "cohere"])
def test_endpoint_is_optional_for_hosted_providers(tmp_path: Path, provider: str) -> None:
    assert_valid(check(tmp_path, for_provider(provider, "generation", api_endpoint="https://proxy.internal/v1")))
    assert_valid(check(tmp_path / "without", for_provider(provider, "generation", api_endpoint=None)))


def test_azure_needs_an_api_version(tmp_path: Path) -> None:
    model = for_provider("azure", "generation", api_version=None)
    result = check(tmp_path, model)
    assert only(result, "missing-api-version").message == f"model {model['name']!r}: azure needs an api_version, e.g. '2024-10-21'"


def test_api_version_only_for_azure(tmp_path: Path) -> None:
    result = check(tmp_path, for_provider("openai", "generation", api_version="2024-10-21"))
    diagnostic = only(result, "unexpected-api-version")
    assert diagnostic.message == "api_version applies only to azure, not openai; remove it"
    assert place(diagnostic) == at(models_file(tmp_path), "api_version:")


# --------------------------------------------------------------------------- secrets


def test_plaintext_api_key_is_an_error_that_does_not_repeat_the_key(tmp_path: Path) -> None:
    result = check(tmp_path, generation_model(api_key=CANARY_KEY))
    diagnostic = only(result, "bad-secret")
    assert diagnostic.message.startswith("api_key holds a literal value; never commit a key.")
    assert place(diagnostic) == at(models_file(tmp_path), f"api_key: {CANARY_KEY}", value=True)
    assert all(CANARY_KEY not in d.message and CANARY_KEY[:12] not in d.message for d in result.diagnostics)


@pytest.mark.parametrize("literal", [12345, True, ["sk-a"]])
def test_non_string_api_key_is_also_a_literal(tmp_path: Path, literal: Any) -> None:
    result = check(tmp_path, generation_model(api_key=literal))
    assert only(result, "bad-secret").message.startswith("api_key holds a literal value")
    assert "12345" not in only(result, "bad-secret").message


@pytest.mark.parametrize(
    "reference", ["${env:}", "${env:1ABC}", "$OPENAI_API_KEY", "${OPENAI_API_KEY}", "${env:A-B}", "${env:KEY} ", "${file:/x}"]
)
def test_malformed_reference(tmp_path: Path, reference: str) -> None:
    result = check(tmp_path, generation_model(api_key=reference))
    diagnostic = only(result, "bad-secret")
    assert diagnostic.message == (
        "api_key: malformed reference; write it as ${env:NAME} with NAME made of letters, digits and '_'"
    )
    assert reference.strip() not in diagnostic.message


@pytest.mark.parametrize("reference", ["${env:OPENAI_API_KEY}", "${env:_K}", "${env:k2}"])
def test_well_formed_reference(tmp_path: Path, reference: str) -> None:
    result = check(tmp_path, generation_model(api_key=reference, default=True))
    assert_valid(result)
    assert result.spec.models[0].api_key == reference


# --------------------------------------------------------------------------- across files


def test_duplicate_name_across_files_names_both_places(tmp_path: Path) -> None:
    first = write_registry_file(tmp_path, [ner_model(name="shared", default=True)], "a.yaml")
    second = write_registry_file(tmp_path, [ner_model(name="shared")], "b.yaml")
    result = validate_directory(tmp_path)
    in_a, in_b = [d for d in result.diagnostics if d.code == "duplicate-name"]
    assert place(in_a) == at(first, "name: shared", value=True)
    assert place(in_b) == at(second, "name: shared", value=True)
    # Each message names the other place exactly where that place's own error stands.
    assert f"b.yaml:{place(in_b)[0]}:{place(in_b)[1]};" in in_a.message
    assert f"a.yaml:{place(in_a)[0]}:{place(in_a)[1]};" in in_b.message
    assert in_b.message.startswith("duplicate model name 'shared': also defined at ")


def test_duplicate_name_across_directories_is_an_error_at_both(tmp_path: Path) -> None:
    common = write_registry_file(tmp_path / "common", [ner_model(name="shared", default=True)])
    prod = write_registry_file(tmp_path / "prod", [ner_model(name="shared")])
    result = validate_directories([tmp_path / "common", tmp_path / "prod"])
    assert not result.ok and result.spec is None
    places = sorted((d.location.file, place(d)) for d in result.diagnostics if d.code == "duplicate-name" and d.location)
    assert places == [(str(common), at(common, "name: shared", value=True)), (str(prod), at(prod, "name: shared", value=True))]


def test_several_directories_make_one_registry(tmp_path: Path) -> None:
    write_registry_file(tmp_path / "common", [ner_model(name="shared", default=True)])
    write_registry_file(tmp_path / "prod", [ner_model(name="prod-only")])
    result = validate_directories([tmp_path / "common", tmp_path / "prod"])
    assert result.ok and result.spec is not None
    assert [m.name for m in result.spec.models] == ["prod-only", "shared"]
    assert len(result.files) == 2


def test_duplicate_name_is_reported_even_when_the_model_has_other_errors(tmp_path: Path) -> None:
    write_registry_file(tmp_path, [ner_model(name="shared", default=True)], "a.yaml")
    write_registry_file(tmp_path, [ner_model(name="shared", parameters={"batch_size": 0})], "b.yaml")
    codes = sorted(d.code for d in validate_directory(tmp_path).errors)
    assert codes == ["duplicate-name", "duplicate-name", "out-of-range"]


def test_duplicate_key_in_one_mapping(tmp_path: Path) -> None:
    path = write_text_file(
        tmp_path,
        "version: 1\nmodels:\n  - name: n\n    type: ner\n    provider: ollama\n    model_id: first\n"
        "    api_endpoint: http://x\n    model_id: second\n    default: true\n",
    )
    result = validate_directory(tmp_path)
    diagnostic = only(result, "duplicate-key")
    assert diagnostic.message == (
        "duplicate key 'model_id' in one mapping (first defined at line 6); YAML would silently keep only the last one"
    )
    assert place(diagnostic) == at(path, "model_id: second")
    assert not result.ok


def test_more_than_one_default_per_type(tmp_path: Path) -> None:
    first = write_registry_file(tmp_path, [embedding_model(name="emb-a", default=True)], "a.yaml")
    second = write_registry_file(tmp_path, [embedding_model(name="emb-b", default=True)], "b.yaml")
    result = validate_directory(tmp_path)
    diagnostic = only(result, "multiple-defaults")
    line, column = at(first, "default: true", value=True)
    assert diagnostic.message.startswith("more than one default embedding model: 'emb-b' and 'emb-a' (at ")
    assert diagnostic.message.endswith(f"a.yaml:{line}:{column}); keep 'default: true' on one")
    assert place(diagnostic) == at(second, "default: true", value=True)


def test_one_default_per_type_is_fine(tmp_path: Path) -> None:
    result = check(tmp_path, *defaults_for_each_type(), embedding_model(), generation_model(default=False))
    assert_valid(result)
    assert result.warnings == ()


def test_inactive_default(tmp_path: Path) -> None:
    model = ner_model(default=True, active=False)
    result = check(tmp_path, model)
    diagnostic = only(result, "inactive-default")
    assert diagnostic.message == (
        f"model {model['name']!r}: a default model must be active: set 'active: true' or remove 'default: true'"
    )
    assert place(diagnostic) == at(models_file(tmp_path), "default: true", value=True)


def test_inactive_model_that_is_not_default_is_fine(tmp_path: Path) -> None:
    assert_valid(check(tmp_path, *defaults_for_each_type(), ner_model(active=False)))


# --------------------------------------------------------------------------- renames


def test_rename_is_accepted_and_kept_in_the_spec(tmp_path: Path) -> None:
    result = check(tmp_path, ner_model(name="new-name", previous_names=["old-name", "older"], default=True))
    assert_valid(result)
    assert result.spec.models[0].previous_names == ("old-name", "older")


def test_name_that_is_also_in_another_models_previous_names(tmp_path: Path) -> None:
    result = check(tmp_path, ner_model(name="old", default=True), ner_model(name="new", previous_names=["old"]))
    diagnostic = only(result, "rename-conflict")
    assert diagnostic.message.startswith("'old' is in previous_names of 'new' but is also a model of its own (at ")
    assert diagnostic.message.endswith("); remove one of them")
    line, column = at(models_file(tmp_path), "- old")
    assert place(diagnostic) == (line, column + 2)  # the list item, after "- "


def test_same_previous_name_claimed_twice(tmp_path: Path) -> None:
    result = check(
        tmp_path,
        ner_model(name="a", previous_names=["gone"], default=True),
        ner_model(name="b", previous_names=["gone"]),
    )
    diagnostic = only(result, "rename-conflict")
    assert diagnostic.message.startswith("'gone' is in previous_names of both 'a' (at ")
    assert diagnostic.message.endswith(") and 'b'; a model can be renamed into only one")
    assert place(diagnostic)[0] == at(models_file(tmp_path), "- gone", occurrence=2)[0]


def test_own_name_in_previous_names(tmp_path: Path) -> None:
    result = check(tmp_path, ner_model(name="self", previous_names=["other", "self"], default=True))
    diagnostic = only(result, "bad-rename")
    assert diagnostic.message == "model 'self': lists its own name in previous_names; remove it"
    assert place(diagnostic)[0] == at(models_file(tmp_path), "- self")[0]


def test_invalid_previous_name(tmp_path: Path) -> None:
    result = check(tmp_path, ner_model(previous_names=["Old Name"]))
    assert only(result, "bad-name").message.startswith("previous_names[0]: 'Old Name' is not a valid model name")


# --------------------------------------------------------------------------- file shape


@pytest.mark.parametrize(
    ("text", "code", "message", "line"),
    [
        ("- a\n- b\n", "not-a-mapping", "expected a mapping with 'version: 1' and 'models:' at the top of the file, found a list", 1),
        ("just text\n", "not-a-mapping", "expected a mapping with 'version: 1' and 'models:' at the top of the file, found a string", 1),
        ("models: []\n", "missing-version", "missing 'version: 1' at the top of the file", 1),
        ("version: 2\nmodels: []\n", "bad-version", "unsupported version 2: this llm-registry reads 'version: 1'", 1),
        ("version: '1'\nmodels: []\n", "bad-version", "unsupported version '1': this llm-registry reads 'version: 1'", 1),
        ("version: true\nmodels: []\n", "bad-version", "unsupported version True: this llm-registry reads 'version: 1'", 1),
        ("# c\nversion: 1\n", "missing-models", "missing 'models:' (a list of model definitions)", 2),
        ("version: 1\nmodels:\n  name: x\n", "bad-models", "'models' must be a list of model definitions, not a mapping", 3),
    ],
)
def test_file_shape(tmp_path: Path, text: str, code: str, message: str, line: int) -> None:
    result = check_text(tmp_path, text)
    diagnostic = only(result, code)
    assert diagnostic.message == message
    assert place(diagnostic)[0] == line
    assert not result.ok


def test_empty_models_list_is_valid(tmp_path: Path) -> None:
    for text in ("version: 1\nmodels: []\n", "version: 1\nmodels:\n"):
        result = check_text(tmp_path, text)
        assert_valid(result)
        assert result.spec.models == ()


def test_syntax_error_reports_its_line(tmp_path: Path) -> None:
    result = check_text(tmp_path, "version: 1\nmodels:\n  - name: \"unclosed\n    type: ner\n")
    diagnostic = only(result, "yaml-syntax")
    assert diagnostic.message.startswith("YAML syntax error: ")
    assert "quoted scalar" in diagnostic.message
    assert place(diagnostic)[0] == 5


def test_bad_indentation_reports_its_line(tmp_path: Path) -> None:
    result = check_text(tmp_path, "version: 1\nmodels:\n  - name: a\n   type: ner\n")
    assert place(only(result, "yaml-syntax"))[0] == 4


# --------------------------------------------------------------------------- warnings


@pytest.mark.parametrize("provider", ["openai", "azure"])
def test_top_k_on_a_provider_without_it_warns_but_passes(tmp_path: Path, provider: str) -> None:
    result = check(tmp_path, *defaults_for_each_type(), for_provider(provider, "generation", default=False, parameters={"top_k": 40}))
    assert_valid(result)
    diagnostic = only(result, "ignored-top-k")
    assert diagnostic.severity == "warning"
    assert diagnostic.message == f"{provider} does not offer top_k; it will be stored but has no effect"
    assert place(diagnostic) == at(models_file(tmp_path), "top_k: 40", value=True)


@pytest.mark.parametrize("provider", ["ollama", "gemini", "anthropic", "cohere"])
def test_top_k_on_a_provider_with_it_is_silent(tmp_path: Path, provider: str) -> None:
    result = check(tmp_path, for_provider(provider, "generation", parameters={"top_k": 40}))
    assert_valid(result)
    assert result.diagnostics == ()


def test_type_with_active_models_but_no_default_warns_but_passes(tmp_path: Path) -> None:
    model = embedding_model()
    result = check(tmp_path, model, generation_model(default=True))
    assert_valid(result)
    diagnostic = only(result, "no-default")
    assert diagnostic.severity == "warning"
    assert diagnostic.message == "no default embedding model: set 'default: true' on one of the active embedding models"
    assert place(diagnostic)[0] == at(models_file(tmp_path), f"name: {model['name']}")[0]


def test_type_with_only_inactive_models_needs_no_default(tmp_path: Path) -> None:
    result = check(tmp_path, embedding_model(active=False))
    assert_valid(result)
    assert result.warnings == ()


# --------------------------------------------------------------------------- every error, not the first


def test_every_error_in_a_file_is_reported(tmp_path: Path) -> None:
    result = check(
        tmp_path,
        generation_model(name="one", parameters={"temprature": 1, "top_p": 2}),
        embedding_model(name="two", provider="anthropic", api_key="${env:K}", api_endpoint=None),
        ner_model(name="three", api_key=CANARY_KEY),
    )
    path = models_file(tmp_path)
    found = {(d.code, place(d)[0]) for d in result.errors}
    assert found == {
        ("unknown-key", at(path, "temprature")[0]),
        ("out-of-range", at(path, "top_p: 2")[0]),
        ("provider-type", at(path, "provider: anthropic")[0]),
        ("unexpected-api-key", at(path, f"api_key: {CANARY_KEY}")[0]),
        ("bad-secret", at(path, f"api_key: {CANARY_KEY}")[0]),
    }


def test_every_bad_file_is_reported(tmp_path: Path) -> None:
    write_text_file(tmp_path, "version: 1\nmodels: [\n", "a.yaml")
    write_registry_file(tmp_path, [ner_model(parameters={"batch_size": 0})], "b.yaml")
    write_registry_file(tmp_path, defaults_for_each_type(), "c.yaml")
    result = validate_directory(tmp_path)
    by_file = {(d.location.file.rsplit("/", 1)[-1], d.code) for d in result.errors if d.location}
    assert by_file == {("a.yaml", "yaml-syntax"), ("b.yaml", "out-of-range")}


def test_diagnostics_are_sorted_by_file_and_line(tmp_path: Path) -> None:
    write_registry_file(tmp_path, [ner_model(parameters={"batch_size": 0}), ner_model(model_id="")], "b.yaml")
    write_registry_file(tmp_path, [ner_model(provider="olama")], "a.yaml")
    result = validate_directory(tmp_path)
    keys = [(d.location.file, d.location.line) for d in result.diagnostics if d.location]
    assert keys == sorted(keys)
    assert keys[0][0].endswith("a.yaml")


def test_recursive_sorted_discovery(tmp_path: Path) -> None:
    write_registry_file(tmp_path / "z", [ner_model(default=True)], "m.yml")
    write_registry_file(tmp_path, [embedding_model(default=True)], "a.yaml")
    write_text_file(tmp_path, "not: [yaml", "notes.txt")
    write_text_file(tmp_path, "not: [yaml", ".hidden.yaml")
    result = validate_directory(tmp_path)
    assert_valid(result)
    assert [Path(f).name for f in result.files] == ["a.yaml", "m.yml"]


def test_a_single_file_can_be_validated(tmp_path: Path) -> None:
    path = write_registry_file(tmp_path, defaults_for_each_type())
    result = validate_directory(path)
    assert_valid(result)
    assert len(result.spec.models) == 3


def test_missing_directory(tmp_path: Path) -> None:
    result = validate_directory(tmp_path / "nope")
    diagnostic = only(result, "directory-missing")
    assert "nope does not exist" in diagnostic.message
    assert not result.ok


def test_directory_without_registry_files_warns(tmp_path: Path) -> None:
    result = validate_directory(tmp_path)
    assert result.ok
    assert only(result, "no-files").severity == "warning"


def test_null_says_not_set_for_parameters_the_table_may_leave_empty(tmp_path: Path) -> None:
    unset = {"max_tokens": None, "normalize": None, "distance_metric": None, "batch_size": None}
    result = check(
        tmp_path,
        embedding_model(name="e", parameters=unset),
        generation_model(name="g", parameters={"temperature": None, "top_p": None, "max_output_tokens": None}),
        ner_model(name="n", parameters={"max_tokens": None, "batch_size": None}),
    )
    assert result.ok, result.diagnostics
    embedding = result.spec.by_name()["e"]
    assert all(getattr(embedding.parameters, field) is None for field in unset)


@pytest.mark.parametrize(("factory", "field"), [(embedding_model, "dimensions"), (generation_model, "context_window")])
def test_null_is_refused_for_parameters_the_table_requires(tmp_path: Path, factory: Any, field: str) -> None:
    result = check(tmp_path, factory(name="m", parameters={field: None}))
    assert only(result, "wrong-type").message == f"parameters.{field}: expected an integer, got null"


def test_an_explicit_null_endpoint_is_the_same_as_none(tmp_path: Path) -> None:
    text = (
        "version: 1\nmodels:\n  - name: g\n    type: generation\n    provider: openai\n    model_id: gpt-4o-mini\n"
        "    api_key: ${env:OPENAI_API_KEY}\n    api_endpoint: null\n    default: true\n"
        "    parameters:\n      context_window: 128000\n"
    )
    result = check_text(tmp_path, text)
    assert_valid(result)
    assert result.spec is not None and result.spec.models[0].api_endpoint is None


def test_endpoint_and_version_may_be_env_references_kept_with_their_location(tmp_path: Path) -> None:
    azure = for_provider("azure", "generation", name="g", api_version="${env:AZURE_API_VERSION}")
    path = write_registry_file(tmp_path, [embedding_model(name="e", api_endpoint="${env:OLLAMA_URL}", default=True), azure])
    result = validate_directory(tmp_path)
    assert_valid(result)
    assert result.spec is not None
    endpoint, version = result.spec.references
    assert (endpoint.model, endpoint.field, endpoint.variable, endpoint.value) == ("e", "api_endpoint", "OLLAMA_URL", None)
    assert (version.model, version.field, version.variable, version.value) == ("g", "api_version", "AZURE_API_VERSION", None)
    assert endpoint.location is not None and version.location is not None
    assert (endpoint.location.line, endpoint.location.column) == at(path, "${env:OLLAMA_URL}")
    assert (version.location.line, version.location.column) == at(path, "${env:AZURE_API_VERSION}")


def test_a_malformed_version_reference_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = write_registry_file(tmp_path, [for_provider("azure", "generation", name="g", api_version="${env:AZURE-VERSION}")])
    diagnostic = only(validate_directory(tmp_path), "bad-value")
    assert diagnostic.message == "api_version: malformed reference; write it as ${env:NAME}"
    assert diagnostic.location is not None and diagnostic.location.line == at(path, "${env:AZURE-VERSION}")[0]


def test_a_malformed_endpoint_reference_is_an_error(tmp_path: Path) -> None:
    write_registry_file(tmp_path, [embedding_model(name="e", api_endpoint="${env:OLLAMA-URL}", default=True)])
    diagnostic = only(validate_directory(tmp_path), "bad-value")
    assert diagnostic.message == "api_endpoint: malformed reference; write it as ${env:NAME}"
