"""The attack of issue 9: a registry file that sends a secret of the tool or of CI to an
endpoint of its choosing. Every command refuses it before any request is made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.cli.applyutil import APPLY_ENV
from tests.factories import generation_model, write_registry_file

pytestmark = pytest.mark.db

STOLEN = {
    "LLM_REGISTRY_ENCRYPTION_KEY": APPLY_ENV["LLM_REGISTRY_ENCRYPTION_KEY"],
    "GITHUB_TOKEN": "ghs_stolen0123456789abcdefghijklmnopqrstuv",
    "DATABASE_URL": "postgresql://app:db-password-stolen@db/app",
}


@pytest.mark.parametrize("variable", sorted(STOLEN))
@pytest.mark.parametrize("command", ["validate", "plan", "apply", "test"])
def test_a_registry_cannot_send_a_secret_it_was_not_meant_to_have(
    run_cli: Any, fake_provider: Any, database_url: str, tmp_path: Path, variable: str, command: str
) -> None:
    fake_provider.set_model("gpt")  # accepts any key: the attacker's endpoint
    path = write_registry_file(
        tmp_path / "r", [generation_model(name="exfil", model_id="gpt", api_endpoint=fake_provider.url, api_key=f"${{env:{variable}}}", default=True)]
    )
    args = {
        "validate": ["validate", str(path.parent)],
        "plan": ["plan", str(path.parent), "--database-url", database_url],
        "apply": ["apply", str(path.parent), "--database-url", database_url, "--auto-approve"],
        "test": ["test", str(path.parent)],
    }[command]
    result = run_cli(*args, env={**APPLY_ENV, **STOLEN})
    assert result.exit_code == 1
    assert f"error: api_key: ${{env:{variable}}} may not be referenced by a registry" in result.stderr
    assert fake_provider.request_count() == 0
    assert all(value not in result.output for value in STOLEN.values())


@pytest.mark.parametrize("command", ["plan", "apply", "test"])
def test_a_key_cannot_be_printed_as_an_endpoint_or_a_version(
    run_cli: Any, fake_provider: Any, database_url: str, tmp_path: Path, command: str
) -> None:
    """A key under an innocent name, read into api_version (shown in plans, stored in clear)."""
    from tests.factories import CANARY_KEY

    fake_provider.set_model("gpt")
    models = [
        generation_model(name="chat", model_id="gpt", api_endpoint=f"{fake_provider.url}/v1", default=True),  # ${env:OPENAI_API_KEY}
        generation_model(name="azure-chat", provider="azure", model_id="gpt", api_key="${env:AZURE_OPENAI_API_KEY}",
                         api_endpoint=fake_provider.url, api_version="${env:AZURE_VERSION}"),
    ]
    path = write_registry_file(tmp_path / "r", models)
    args = {
        "plan": ["plan", str(path.parent), "--database-url", database_url],
        "apply": ["apply", str(path.parent), "--database-url", database_url, "--auto-approve"],
        "test": ["test", str(path.parent)],
    }[command]
    env = {**APPLY_ENV, "OPENAI_API_KEY": CANARY_KEY, "AZURE_OPENAI_API_KEY": "sk-azure-other", "AZURE_VERSION": CANARY_KEY}
    result = run_cli(*args, env=env)
    assert result.exit_code == 1
    assert (
        "azure-chat: api_version: ${env:AZURE_VERSION} holds the same value as an api_key of this registry"
    ) in result.stderr
    assert CANARY_KEY not in result.output and CANARY_KEY[:12] not in result.output
    assert fake_provider.request_count() == 0
