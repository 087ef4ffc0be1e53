"""No key and no passphrase reaches PostgreSQL's statement log (issue 9, item 3).

A throwaway cluster of its own (the embedded-default mechanism) with
`log_statement = 'all'`, logging every statement with its parameters to a file this
test reads. apply, plan, `test --from-db` and rotate-encryption-key run against it;
afterwards the canary key, a second key, both passphrases and their hex and base64
forms appear nowhere in the log, while `pgp_sym_decrypt(api_key, passphrase)` in SQL
still returns the keys (the KB application's read).
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import text

from reconciler.secrets import ENCRYPTION_KEY_ENV
from tests.cli.applyutil import write_story_registry
from tests.conftest import THROWAWAY_SETTINGS
from tests.dbutil import TEST_PASSPHRASE, insert_model
from tests.factories import CANARY_KEY

pytestmark = pytest.mark.db

HAND_KEY = "sk-handmade-canary-7d1e0f2a9b8c4d3e6f5a"
NEW_PASSPHRASE = "rotated-passphrase-5b4c3d2e1f"
SECRETS = (CANARY_KEY, HAND_KEY, TEST_PASSPHRASE, NEW_PASSPHRASE)


@pytest.fixture(scope="module")
def logged_cluster() -> Iterator[Any]:
    """A cluster logging every statement (with parameters) to `cluster.log_file`."""
    from reconciler.db import EmbeddedCluster

    home = tempfile.mkdtemp(prefix="llmreg-log-")
    os.chmod(home, 0o755)
    settings = {**THROWAWAY_SETTINGS, "log_statement": "all", "log_min_error_statement": "error"}
    cluster = EmbeddedCluster(Path(home), server_settings=settings)
    try:
        cluster.ensure_running()
        yield cluster
    finally:
        cluster.stop()
        if not cluster.socket_dir.is_relative_to(Path(home)):
            shutil.rmtree(cluster.socket_dir, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


def forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [secret, raw.hex(), base64.b64encode(raw).decode(), base64.b64encode(raw).decode().rstrip("=")]


def test_apply_plan_test_and_rotation_send_no_secret_to_the_server(run_cli: Any, logged_cluster: Any, tmp_path: Path, fake_provider: Any) -> None:
    from reconciler import db

    engine = db.create_engine(logged_cluster.url("postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP DATABASE IF EXISTS secrets_log WITH (FORCE)"))
        connection.execute(text("CREATE DATABASE secrets_log"))
    engine.dispose()
    url = logged_cluster.url("secrets_log")
    assert run_cli("db", "upgrade", "--database-url", url).exit_code == 0
    engine = db.create_engine(url)
    try:
        with engine.begin() as connection:  # a row the story's admin page made (key encrypted here, not in SQL)
            insert_model(
                connection, name="hand-made", type="generation", provider="openai", model_id="gpt-4o",
                api_endpoint=f"{fake_provider.url}/v1", managed_by=None, api_key=HAND_KEY,
            )
        log_start = logged_cluster.log_file.stat().st_size

        directory = write_story_registry(tmp_path / "registry.d", fake_provider)
        env = {ENCRYPTION_KEY_ENV: TEST_PASSPHRASE, "OPENAI_API_KEY": CANARY_KEY, "NO_COLOR": "1"}
        applied = run_cli("apply", str(directory), "--database-url", url, "--auto-approve", env=env)
        assert applied.exit_code == 0, applied.output
        assert run_cli("plan", str(directory), "--database-url", url, env=env).exit_code == 0
        fake_provider.set_model("gpt-4o", api_key=HAND_KEY)
        tested = run_cli("test", "--from-db", "--database-url", url, env=env)
        assert "gpt-4o-mini" in tested.stdout and "hand-made" in tested.stdout, tested.output
        rotated = run_cli("rotate-encryption-key", "--database-url", url, env={**env, "LLM_REGISTRY_NEW_ENCRYPTION_KEY": NEW_PASSPHRASE})
        assert rotated.exit_code == 0, rotated.output
        new_env = {**env, ENCRYPTION_KEY_ENV: NEW_PASSPHRASE}
        assert run_cli("apply", str(directory), "--database-url", url, "--auto-approve", env=new_env).exit_code == 0
        log_end = logged_cluster.log_file.stat().st_size

        # the KB application's read, after all of it (it sends the passphrase: outside the scanned part)
        with engine.connect() as connection:
            keys = dict(connection.execute(
                text("SELECT name, pgp_sym_decrypt(api_key, :p) FROM llm_models WHERE api_key IS NOT NULL"), {"p": NEW_PASSPHRASE}
            ).all())
        assert keys == {"gpt-4o-mini": CANARY_KEY, "hand-made": HAND_KEY}
    finally:
        engine.dispose()

    with logged_cluster.log_file.open("rb") as handle:
        handle.seek(log_start)
        log = handle.read(log_end - log_start).decode("utf-8", "replace")
    # The log really holds every statement of the runs, parameters included ...
    assert "COPY llm_models" in log and "UPDATE llm_models AS m SET api_key" in log
    assert "DETAIL:  parameters:" in log
    # ... and not one secret, in any of these forms.
    for secret in SECRETS:
        for form in forms(secret):
            assert form not in log, f"a secret reached the server log ({len(form)} characters)"
