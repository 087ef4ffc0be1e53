"""One registry, two environments: several directories and `${env:NAME}` endpoints resolved at plan time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.cli.applyutil import APPLY_ENV, models_by_name
from tests.factories import embedding_model, generation_model, write_registry_file
from tests.fakes.provider import FakeProvider


def _layout(root: Path, fake: FakeProvider) -> Path:
    """registry.d/common (both environments) + registry.d/staging + registry.d/production."""
    fake.set_model("nomic-embed-text", dimensions=768)
    fake.set_model("gpt-4o-mini")
    fake.set_model("llama3")
    write_registry_file(
        root / "common",
        [
            embedding_model(name="embed", api_endpoint="${env:OLLAMA_URL}", default=True),
            generation_model(name="chat", provider="ollama", model_id="gpt-4o-mini", api_key=None,
                             api_endpoint="${env:OLLAMA_URL}", default=True),
        ],
    )
    write_registry_file(
        root / "staging",
        [generation_model(name="chat-experimental", provider="ollama", model_id="llama3", api_key=None,
                          api_endpoint="${env:OLLAMA_URL}")],
    )
    write_registry_file(root / "production", [], "models.yaml")
    return root


def _env(url: str) -> dict[str, str]:
    return {**APPLY_ENV, "OLLAMA_URL": url}


def test_staging_and_production_apply_to_their_own_databases_with_their_own_endpoints(
    run_cli: Any, tmp_path: Path, fake_provider: FakeProvider, database_url: str, second_database_url: str
) -> None:
    from reconciler import db

    root = _layout(tmp_path / "registry.d", fake_provider)
    # Two spellings of the fake's address: two different endpoints, both really served.
    staging_url = fake_provider.url
    production_url = fake_provider.url.replace("127.0.0.1", "localhost")
    assert staging_url != production_url
    staging = [str(root / "common"), str(root / "staging")]
    production = [str(root / "common"), str(root / "production")]

    planned = run_cli("plan", *staging, "--database-url", database_url, env=_env(staging_url))
    assert planned.exit_code == 0, planned.output
    assert "Plan: 3 to create, 0 to update, 0 to delete, 0 blocked." in planned.stdout
    assert f'embed api_endpoint = "{staging_url}" (${{env:OLLAMA_URL}})' in planned.stdout
    as_json = json.loads(run_cli("plan", *production, "--database-url", second_database_url,
                                 "--format", "json", env=_env(production_url)).stdout)
    assert {"model": "chat", "field": "api_endpoint", "variable": "OLLAMA_URL", "value": production_url} in as_json["resolved_references"]

    for directories, url, endpoint in ((staging, database_url, staging_url), (production, second_database_url, production_url)):
        applied = run_cli("apply", *directories, "--database-url", url, "--auto-approve", env=_env(endpoint))
        assert applied.exit_code == 0, applied.output

    engines = [db.create_engine(database_url), db.create_engine(second_database_url)]
    try:
        staging_rows, production_rows = (models_by_name(engine) for engine in engines)
    finally:
        for engine in engines:
            engine.dispose()
    assert sorted(staging_rows) == ["chat", "chat-experimental", "embed"]
    assert sorted(production_rows) == ["chat", "embed"]
    assert {row["api_endpoint"] for row in staging_rows.values()} == {staging_url}
    assert {row["api_endpoint"] for row in production_rows.values()} == {production_url}

    # Each environment is then up to date; the other's endpoint would be a change.
    again = run_cli("plan", *production, "--database-url", second_database_url, "--detailed-exitcode", env=_env(production_url))
    assert again.exit_code == 0, again.output
    crossed = run_cli("plan", *production, "--database-url", second_database_url, "--detailed-exitcode", env=_env(staging_url))
    assert crossed.exit_code == 2
    assert f'api_endpoint = "{production_url}" -> "{staging_url}"' in crossed.stdout


def test_an_unset_endpoint_variable_is_an_error_at_its_line_and_nothing_is_planned(
    run_cli: Any, tmp_path: Path, fake_provider: FakeProvider, database_url: str, engine: Any
) -> None:
    root = _layout(tmp_path / "registry.d", fake_provider)
    result = run_cli("apply", str(root / "common"), "--database-url", database_url, "--auto-approve", env=APPLY_ENV)
    assert result.exit_code == 1
    models_file = root / "common" / "models.yaml"
    lines = models_file.read_text().splitlines()
    embed_line = next(i for i, line in enumerate(lines, 1) if "${env:OLLAMA_URL}" in line)
    assert (
        f"{models_file}:{embed_line}:17: error: embed: api_endpoint is ${{env:OLLAMA_URL}}, which is not set "
        "(or empty) here; set OLLAMA_URL for this environment"
    ) in result.stderr
    assert models_by_name(engine) == {}


def test_an_endpoint_variable_that_is_not_a_url_is_an_error(run_cli: Any, tmp_path: Path, fake_provider: FakeProvider, database_url: str) -> None:
    root = _layout(tmp_path / "registry.d", fake_provider)
    result = run_cli("plan", str(root / "common"), "--database-url", database_url, env=_env("ollama.internal:11434"))
    assert result.exit_code == 1
    assert (
        "embed: api_endpoint: ${env:OLLAMA_URL} must hold an http:// or https:// URL "
        "(its value, 21 characters, is not one; it is not shown)"
    ) in result.stderr
    assert "ollama.internal" not in result.output  # a variable's value is never repeated
    assert "invalid registry: 2 errors" in result.stderr


def test_validate_accepts_references_without_the_variables(run_cli: Any, tmp_path: Path, fake_provider: FakeProvider) -> None:
    root = _layout(tmp_path / "registry.d", fake_provider)
    result = run_cli("validate", str(root / "common"), str(root / "staging"))
    assert result.exit_code == 0, result.output
    assert "valid, 3 models in 2 files" in result.stdout


def test_an_endpoint_variable_with_credentials_is_refused_without_showing_them(
    run_cli: Any, tmp_path: Path, fake_provider: FakeProvider, database_url: str
) -> None:
    root = _layout(tmp_path / "registry.d", fake_provider)
    for url in (f"http://admin:s3cretPW@{fake_provider.url[7:]}", f"{fake_provider.url}/?accessToken=s3cretPW"):
        result = run_cli("plan", str(root / "common"), "--database-url", database_url, env=_env(url))
        assert result.exit_code == 1
        assert "embed: ${env:OLLAMA_URL}: api_endpoint holds" in result.stderr  # the same check as in a file
        assert "s3cretPW" not in result.output
