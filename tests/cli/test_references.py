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
