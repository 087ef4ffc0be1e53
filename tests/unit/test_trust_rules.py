"""What a registry file may point at (references.py through validate): refused variables,
the admin's allow-list, endpoints with credentials, and values that make Python raise."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.diagnostics import format_text
from reconciler.references import endpoint_credentials_problem, parse_allow_list, redact_endpoint, refused_variable
from reconciler.validate import validate_directory
from tests.factories import embedding_model, generation_model, write_registry_file, write_text_file
from tests.unit.test_validate import at, only, place


@pytest.mark.parametrize(
    "name",
    [
        "LLM_REGISTRY_ENCRYPTION_KEY", "LLM_REGISTRY_DATABASE_URL", "GITHUB_TOKEN", "github_token",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "ACTIONS_RUNTIME_TOKEN", "RUNNER_TEMP", "CI_JOB_TOKEN",
        "DATABASE_URL", "APP_DATABASE_URL", "REPLICA_DB_URL", "SENTRY_DSN", "PGPASSWORD", "PGSERVICEFILE",
        "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS", "AZURE_CLIENT_SECRET",
        "ARM_CLIENT_SECRET",
        # more CI systems, vaults, registries and passwords
        "GH_TOKEN", "SYSTEM_ACCESSTOKEN", "BUILDKITE_AGENT_ACCESS_TOKEN", "CIRCLE_TOKEN", "VAULT_TOKEN",
        "GOOGLE_CREDENTIALS", "NPM_TOKEN", "TWINE_PASSWORD", "DOCKER_PASSWORD", "POSTGRES_PASSWORD", "DB_PASSWORD",
        "MY_DATABASE_URI", "SSH_PRIVATE_KEY", "GPG_PRIVATE_KEY",
    ],
)
def test_refused_variables_are_refused_at_the_reference(tmp_path: Path, name: str) -> None:
    path = write_registry_file(tmp_path, [generation_model(name="g", api_key=f"${{env:{name}}}")])
    diagnostic = only(validate_directory(tmp_path, key_variables=()), "refused-variable")
    assert place(diagnostic) == at(path, "api_key: ", value=True)
    assert f"${{env:{name}}} may not be referenced by a registry" in diagnostic.message


@pytest.mark.parametrize(
    ("field", "name"),
    [("api_version", "OPENAI_API_KEY"), ("api_version", "LLM_KEY_GPT_4O"), ("api_endpoint", "GATEWAY_TOKEN"),
     ("api_endpoint", "GATEWAY_SECRET"), ("api_version", "my_secret"), ("api_endpoint", "OPENAIKEY"),
     ("api_endpoint", "GATEWAY_PAT"), ("api_version", "X_AUTH")],
)
def test_a_credential_named_variable_is_refused_where_the_value_is_printed(tmp_path: Path, field: str, name: str) -> None:
    # api_endpoint and api_version are resolved at plan time and shown in plans and PR comments.
    model = generation_model(name="g", provider="azure", model_id="gpt-4o", api_key="${env:AZURE_OPENAI_API_KEY}",
                             api_endpoint="https://res.openai.azure.com", api_version="2024-02-01", default=True)
    path = write_registry_file(tmp_path, [{**model, field: f"${{env:{name}}}"}])
    diagnostic = only(validate_directory(tmp_path, key_variables=()), "refused-variable")
    assert place(diagnostic) == at(path, f"{field}: ", value=True)
    assert diagnostic.message.startswith(
        f"{field}: ${{env:{name}}} may not be referenced by a registry: its name says it holds a credential, "
        f"and {field} is printed in plans and stored in clear. Reference a variable that holds only the "
    )


@pytest.mark.parametrize("name", ["AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_VERSION", "OLLAMA_URL", "OPENAI_BASE_URL", "COMPAT_PATH_URL", "AUTHOR_URL"])
def test_endpoint_and_version_variables_stay_allowed(name: str) -> None:
    assert refused_variable(name, field="api_endpoint") is None and refused_variable(name, field="api_version") is None


@pytest.mark.parametrize("name", ["OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_API_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY", "COHERE_KEY"])
def test_provider_keys_stay_allowed(tmp_path: Path, name: str) -> None:
    write_registry_file(tmp_path, [generation_model(name="g", api_key=f"${{env:{name}}}", default=True)])
    result = validate_directory(tmp_path, key_variables=())
    assert result.ok, [d.message for d in result.errors]


def test_allow_list_restricts_further_and_never_reopens_refused_names(tmp_path: Path) -> None:
    write_registry_file(
        tmp_path,
        [
            generation_model(name="a", api_key="${env:OPENAI_API_KEY}", default=True),
            generation_model(name="b", api_key="${env:SOMETHING_ELSE}"),
            generation_model(name="c", api_key="${env:GITHUB_TOKEN}"),
        ],
    )
    result = validate_directory(tmp_path, key_variables=parse_allow_list("OPENAI_*, AZURE_*,GITHUB_*"))
    messages = sorted(d.message for d in result.errors)
    assert len(messages) == 2
    assert messages[1] == (
        "api_key: ${env:SOMETHING_ELSE} may not be referenced by a registry: not in LLM_REGISTRY_KEY_VARIABLES "
        "(OPENAI_*, AZURE_*, GITHUB_*). Reference a variable whose name matches one of LLM_REGISTRY_KEY_VARIABLES's patterns"
    )  # no example name: one could be outside the list as well
    assert "GITHUB_TOKEN" in messages[0] and "GitHub Actions" in messages[0]
    assert messages[0].endswith("Reference a variable that holds only this model's key (e.g. OPENAI_API_KEY)")


def test_allow_list_is_read_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_registry_file(tmp_path, [generation_model(name="a", api_key="${env:MY_KEY}", default=True)])
    monkeypatch.setenv("LLM_REGISTRY_KEY_VARIABLES", "OPENAI_*")
    assert only(validate_directory(tmp_path), "refused-variable").message.startswith("api_key: ${env:MY_KEY}")
    monkeypatch.setenv("LLM_REGISTRY_KEY_VARIABLES", "MY_*")
    assert validate_directory(tmp_path).ok


def test_pure_rules() -> None:
    assert refused_variable("OPENAI_API_KEY") is None
    assert refused_variable("OPENAI_API_KEY", ("AZURE_*",)) is not None
    assert parse_allow_list(None) == () and parse_allow_list(" A_*  B_*,C ") == ("A_*", "B_*", "C")
    assert endpoint_credentials_problem("https://api.example.com/v1") is None
    assert endpoint_credentials_problem("https://api.example.com/v1?api-version=2024") is None
    for harmless in ("https://gw.example/v1?tenant=a&format=json", "https://gw.example/?author=me", "https://gw.example/#section-2"):
        assert endpoint_credentials_problem(harmless) is None, harmless
    assert redact_endpoint(f"https://h.example/?a=1;accessToken={SECRET}#id_token={SECRET}") == "https://h.example/?a=1;accessToken=***#id_token=***"
    assert redact_endpoint(f"https://u:{SECRET}@h.example/v1?tenant=a&flag#top") == "https://***@h.example/v1?tenant=a&flag#top"


SECRET = "hunter2-do-not-echo"


@pytest.mark.parametrize(
    "endpoint",
    [f"http://user:{SECRET}@ollama.internal:11434", f"https://{SECRET}@h.example", f"https://h.example/v1?key={SECRET}",
     f"https://h.example/v1?x=1&access_token={SECRET}",
     # spellings a `[-_]word` rule let through: camelCase, `;` as separator, brackets, the fragment, an encoded NUL
     f"https://h.example/?accessToken={SECRET}", f"https://h.example/?apiToken={SECRET}", f"https://h.example/?clientSecret={SECRET}",
     f"https://h.example/?a=1;api_key={SECRET}", f"https://h.example/?token[]={SECRET}", f"https://h.example/#access_token={SECRET}",
     f"https://h.example/?api_key%00={SECRET}", f"https://h.example/?X-Api-Key={SECRET}", f"https://blob.example/c?sv=1&sig={SECRET}",
     f"https://h.example/?pwd={SECRET}", f"https://h.example/?credential={SECRET}", f"https://h.example/?session={SECRET}",
     f"https://h.example/?sessionid={SECRET}"],
)
def test_endpoint_with_credentials_is_refused_without_repeating_them(tmp_path: Path, endpoint: str) -> None:
    path = write_registry_file(tmp_path, [embedding_model(name="e", api_endpoint=endpoint, default=True)])
    result = validate_directory(tmp_path)
    diagnostic = only(result, "endpoint-credentials")
    assert place(diagnostic) == at(path, "api_endpoint: ", value=True)
    assert SECRET not in format_text(diagnostic)
    assert all(SECRET not in d.message for d in result.diagnostics)
    assert result.spec is None


def _model_text(dimensions: str) -> str:
    return (
        "version: 1\nmodels:\n  - name: e\n    type: embedding\n    provider: ollama\n    model_id: x\n"
        f"    api_endpoint: http://h:1\n    default: true\n    parameters:\n      dimensions: {dimensions}\n"
    )


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("9" * 5000, "number-too-large"),  # past Python's int-str digit limit (ValueError)
        ("0x" + "f" * 5000, "number-too-large"),  # hex is not bound by the limit, but printing it is
        ("-" + "9" * 4400, "number-too-large"),
        ("!!int abc", "bad-scalar"),
        ('!!timestamp "2024-13-45"', "bad-scalar"),
        ('!!float "x"', "bad-scalar"),
        ('!!int "12abc"', "bad-scalar"),
    ],
)
def test_values_that_make_python_raise_are_errors_at_their_place(tmp_path: Path, value: str, code: str) -> None:
    path = write_text_file(tmp_path, _model_text(value))
    diagnostic = only(validate_directory(tmp_path), code)
    assert place(diagnostic) == at(path, "dimensions: ", value=True)
    assert len(diagnostic.message) < 200
