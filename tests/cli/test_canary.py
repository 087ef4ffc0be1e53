"""The canary: one run of every command that touches a key, then a search for that key —
raw and in every form a provider echoes it — in stdout/stderr, the plan file, every
table (pg_dump) and, where this test can read it, the PostgreSQL server log.

Real PostgreSQL, real HTTP (the fake provider on loopback), real LiteLLM. The fake
refuses the canary and echoes it back in each of `ECHO_FORMS`, as providers do.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests.cli.applyutil import APPLY_ENV
from tests.cli.conftest import logged_url
from tests.factories import generation_model, write_registry_file
from tests.fakes.provider import ECHO_FORMS, FakeProvider, echoed

pytestmark = pytest.mark.db

# A canary of this run only: the server log is shared with other runs that use the
# factories' canary, and a find must be ours.
CANARY = f"sk-canary-{uuid.uuid4().hex}{uuid.uuid4().hex[:8]}"


def canary_forms() -> dict[str, str]:
    """Every text that would betray the canary: each echo form, and the passphrase."""
    forms = {form: echoed(CANARY, form) for form in ECHO_FORMS}
    forms["passphrase"] = APPLY_ENV["LLM_REGISTRY_ENCRYPTION_KEY"]
    return forms


def leaks(text: str) -> list[str]:
    """The names of the forms of the canary found in `text`."""
    return sorted(name for name, form in canary_forms().items() if form in text)


def _registry(directory: Path, fake: FakeProvider) -> Path:
    """One model per echo form, each refused by the fake with the canary echoed in that form."""
    models = []
    for form in sorted(ECHO_FORMS):
        model_id = f"echo-{form}"
        fake.set_model(model_id, status=401, api_key="not-the-canary", echo=form)
        models.append(generation_model(name=model_id, model_id=model_id, api_endpoint=f"{fake.url}/v1", default=form == "raw"))
    write_registry_file(directory, models)
    return directory


def _pg_dump(database_url: str) -> str:
    url = make_url(database_url)
    binary = shutil.which("pg_dump") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"))), None)
    if binary is None:
        pytest.skip("pg_dump is not installed")
    completed = subprocess.run(
        [binary, "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres", url.database or ""],
        capture_output=True, text=True, check=True, timeout=120, env={**os.environ, "PGPASSWORD": url.password or ""},
    )
    return completed.stdout


def test_the_canary_appears_nowhere(run_cli: Any, fake_provider: FakeProvider, database_url: str, tmp_path: Path, server_log: Any) -> None:
    directory = _registry(tmp_path / "registry.d", fake_provider)
    env = {**APPLY_ENV, "OPENAI_API_KEY": CANARY}
    url = logged_url(database_url)
    planfile = tmp_path / "registry.plan"
    outputs: list[tuple[str, str]] = []

    def run(*args: str) -> Any:
        result = run_cli(*args, env=env)
        outputs.append((" ".join(args[:2]), result.output))
        return result

    assert run("validate", str(directory)).exit_code == 0
    for output_format in ("text", "json", "markdown", "github"):
        run("plan", str(directory), "--database-url", url, "--format", output_format)
    assert run("plan", str(directory), "--database-url", url, "--out", str(planfile)).exit_code == 0
    # Every test fails with the canary echoed: the apply aborts and records the attempts.
    failed = run("apply", str(planfile), "--database-url", url)
    assert failed.exit_code == 1 and "connection tests failed" in failed.output
    for output_format in ("table", "json"):
        assert run("test", str(directory), "--format", output_format).exit_code == 1
    # Now the keys work: apply stores them (encrypted), test --from-db decrypts and sends them.
    for form in ECHO_FORMS:
        fake_provider.set_model(f"echo-{form}", api_key=CANARY, echo=form)
    applied = run("apply", str(directory), "--database-url", url, "--auto-approve")
    assert applied.exit_code == 0, applied.output
    for form in ECHO_FORMS:
        fake_provider.set_model(f"echo-{form}", status=401, api_key="rotated-away", echo=form)
    assert run("test", "--from-db", "--database-url", url).exit_code == 1
    for args in (("list",), ("audit",), ("audit", "--format", "json")):
        run(*args, "--database-url", url)

    assert any("***" in output for _, output in outputs), "the echoes were scrubbed, not absent"
    found = {command: leaks(output) for command, output in outputs if leaks(output)}
    assert found == {}, f"the canary leaked into the output of: {found}"
    assert leaks(planfile.read_text()) == []
    dump = _pg_dump(database_url)
    assert "Incorrect API key provided: ***" in dump  # the audit table holds the scrubbed attempts
    assert leaks(dump) == [], "the canary is in a table"
    if server_log is None:
        pytest.skip("no readable PostgreSQL server log here: checked output, plan file and tables only")
    logged = server_log()
    assert "registry_audit_events" in logged, "log_statement=all was in effect"
    assert leaks(logged) == [], "the canary or the passphrase is in the server log"
