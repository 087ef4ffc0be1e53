"""`llm-registry test` as a user runs it, against the fake provider over real HTTP."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.factories import CANARY_KEY, embedding_model, generation_model, ner_model, write_registry_file
from tests.fakes.provider import FakeProvider

REPO = Path(__file__).resolve().parents[2]


def write_registry(tmp_path: Path, fake: FakeProvider, *extra: dict[str, Any]) -> Path:
    """A registry of three models on the fake provider (ollama embedding, openai generation, anthropic NER)."""
    fake.set_model("nomic-embed-text", dimensions=768)
    fake.set_model("gpt-4o-mini", api_key=CANARY_KEY)
    fake.set_model("claude-3-haiku", api_key=CANARY_KEY)
    directory = tmp_path / "registry.d"
    write_registry_file(
        directory,
        [
            embedding_model(name="nomic", api_endpoint=fake.url, parameters={"dimensions": 768}),
            generation_model(name="gpt", api_endpoint=f"{fake.url}/v1", api_key="${env:OPENAI_API_KEY}"),
            ner_model(name="claude-ner", provider="anthropic", model_id="claude-3-haiku", api_endpoint=fake.url,
                      api_key="${env:ANTHROPIC_API_KEY}"),
            *extra,
        ],
    )
    return directory


KEYS = {"OPENAI_API_KEY": CANARY_KEY, "ANTHROPIC_API_KEY": CANARY_KEY}


def test_all_ok_prints_a_table_and_exits_0(run_cli, fake_provider: FakeProvider, tmp_path: Path) -> None:
    directory = write_registry(tmp_path, fake_provider)
    result = run_cli("test", str(directory), env=KEYS)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "PROVIDER", "TYPE", "STATUS", "LATENCY", "MESSAGE"]
    rows = {line.split()[0]: line.split() for line in lines[1:4]}
    assert rows["nomic"][1:4] == ["ollama", "embedding", "ok"]
    assert rows["gpt"][1:4] == ["openai", "generation", "ok"]
    assert rows["claude-ner"][1:4] == ["anthropic", "ner", "ok"]
    assert "768-dimension vector" in result.stdout
    assert result.stdout.rstrip().endswith("3 passed, 0 failed")
    assert fake_provider.request_count() == 3
    assert CANARY_KEY not in result.output


def test_a_failure_exits_1_and_says_what_to_fix(run_cli, fake_provider: FakeProvider, tmp_path: Path) -> None:
    directory = write_registry(tmp_path, fake_provider)
    fake_provider.set_model("nomic-embed-text", dimensions=1024)
    result = run_cli("test", str(directory), env={**KEYS, "OPENAI_API_KEY": "sk-wrong-" + CANARY_KEY})
    assert result.exit_code == 1
    assert "dimension_mismatch" in result.stdout
    assert "vector has 1024 dimensions, registry declares 768" in result.stdout
    assert "authentication failed (HTTP 401): check the key in OPENAI_API_KEY" in result.stdout
    assert "1 passed, 2 failed" in result.stdout
    assert CANARY_KEY not in result.output


def test_names_select_models_and_unknown_names_are_listed(run_cli, fake_provider: FakeProvider, tmp_path: Path) -> None:
    directory = write_registry(tmp_path, fake_provider)
    result = run_cli("test", str(directory), "--model", "nomic", env=KEYS)
    assert result.exit_code == 0, result.output
    assert "nomic" in result.stdout and "gpt" not in result.stdout
    assert fake_provider.request_count() == 1

    result = run_cli("test", str(directory), "--model", "nomic", "--model", "nope", "--model", "gtp", env=KEYS)
    assert result.exit_code == 1
    assert "unknown models: nope, gtp; known: claude-ner, gpt, nomic" in result.stderr
    assert fake_provider.request_count() == 1, "nothing is tested when a name is wrong"


def test_unset_key_variable_fails_without_a_request(run_cli, fake_provider: FakeProvider, tmp_path: Path) -> None:
    directory = write_registry(tmp_path, fake_provider)
    env = {"ANTHROPIC_API_KEY": CANARY_KEY}
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("OPENAI_API_KEY", raising=False)
        result = run_cli("test", str(directory), "--model", "gpt", env=env)
    assert result.exit_code == 1
    assert "no API key: environment variable OPENAI_API_KEY is not set" in result.stdout
    assert fake_provider.request_count() == 0


def test_json_format(run_cli, fake_provider: FakeProvider, tmp_path: Path) -> None:
    directory = write_registry(tmp_path, fake_provider)
    fake_provider.set_model("gpt-4o-mini", status=429, api_key=CANARY_KEY)
    result = run_cli("test", str(directory), "--format", "json", env=KEYS)
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["passed"] == 2 and payload["failed"] == 1
    by_name = {item["name"]: item for item in payload["results"]}
    assert by_name["gpt"]["status"] == "rate_limited" and by_name["gpt"]["ok"] is False
    assert by_name["nomic"] == {
        "name": "nomic", "provider": "ollama", "type": "embedding", "model_id": "nomic-embed-text",
        "status": "ok", "ok": True, "latency_ms": by_name["nomic"]["latency_ms"], "message": "768-dimension vector",
    }
    assert isinstance(by_name["nomic"]["latency_ms"], int)


def test_inactive_models_are_skipped_unless_named(run_cli, fake_provider: FakeProvider, tmp_path: Path) -> None:
    fake_provider.set_model("llama3")
    retired = generation_model(name="retired", provider="ollama", model_id="llama3", api_key=None,
                               api_endpoint=fake_provider.url, active=False)
    directory = write_registry(tmp_path, fake_provider, retired)
    result = run_cli("test", str(directory), env=KEYS)
    assert result.exit_code == 0, result.output
    assert "skipped 1 inactive model (retired)" in result.stderr
    assert fake_provider.request_count("llama3") == 0
    result = run_cli("test", str(directory), "--model", "retired", env=KEYS)
    assert result.exit_code == 0 and fake_provider.request_count("llama3") == 1


def test_invalid_registry_is_refused_before_any_test(run_cli, fake_provider: FakeProvider, tmp_path: Path) -> None:
    directory = tmp_path / "registry.d"
    write_registry_file(directory, [embedding_model(name="bad", api_endpoint=fake_provider.url, parameters={"dimensions": -1})])
    result = run_cli("test", str(directory))
    assert result.exit_code == 1
    assert "invalid registry" in result.stderr
    assert fake_provider.request_count() == 0


def test_timeout_and_concurrency_options(run_cli, fake_provider: FakeProvider, tmp_path: Path) -> None:
    directory = write_registry(tmp_path, fake_provider)
    fake_provider.set_model("nomic-embed-text", hang=True)
    result = run_cli("test", str(directory), "--timeout", "0.5", "--concurrency", "1", "--model", "nomic", env=KEYS)
    assert result.exit_code == 1
    assert "no answer within 0.5 s from" in result.stdout
    assert fake_provider.request_count("nomic-embed-text") == 1
    assert run_cli("test", str(directory), "--concurrency", "0").exit_code == 1
    assert run_cli("test", str(directory), "--timeout", "0").exit_code == 1


def test_progress_lines_without_a_terminal_and_none_when_quiet(run_cli, fake_provider: FakeProvider, tmp_path: Path) -> None:
    directory = write_registry(tmp_path, fake_provider)
    result = run_cli("test", str(directory), env=KEYS)
    lines = [line for line in result.stderr.splitlines() if ": warning: " not in line]  # "no default" warnings
    # A line at once (before LiteLLM loads), then one per finished test; no terminal codes.
    assert lines[0] == "Testing 3 models (8 at a time, timeout 30 s): loading provider clients..."
    assert sorted(line.split("] ")[1].split(":")[0] for line in lines[1:]) == ["claude-ner", "gpt", "nomic"]
    assert lines[-1].startswith("[3/3] ") and "\r" not in result.output
    quiet = run_cli("test", str(directory), "--quiet", env=KEYS)
    assert quiet.exit_code == 0 and "3 passed, 0 failed" in quiet.stdout
    assert [line for line in quiet.stderr.splitlines() if ": warning: " not in line] == []


def test_a_model_name_where_a_directory_goes_says_the_directory_is_missing(run_cli, tmp_path: Path) -> None:
    result = run_cli("test", str(tmp_path / "nomic"))
    assert result.exit_code == 1
    assert f"registry directory {tmp_path / 'nomic'} does not exist" in result.stderr


def test_progress_on_a_terminal(fake_provider: FakeProvider, tmp_path: Path) -> None:
    directory = write_registry(tmp_path, fake_provider)
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "test", str(directory)],
            stdout=subprocess.PIPE, stderr=slave, cwd=REPO, env={**os.environ, **KEYS},
        )
        os.close(slave)
        seen = b""
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        stdout, _ = process.communicate(timeout=60)
    finally:
        os.close(master)
    text = seen.decode()
    assert process.returncode == 0, text
    assert "Testing 3 models (8 at a time, timeout 30 s): loading provider clients..." in text
    assert "[3/3]" in text
    assert "3 passed, 0 failed" in stdout.decode()
    assert CANARY_KEY not in text + stdout.decode()


def test_help_lists_the_options(run_cli) -> None:
    result = run_cli("test", "--help")
    assert result.exit_code == 0
    for option in ("--model", "--concurrency", "--timeout", "--format"):
        assert option in result.stdout


# --- --from-db: the models stored in the database, keys decrypted, audited ----------------


def _stored_models(connection: Any, fake: FakeProvider) -> dict[str, str]:
    """Three rows on the fake provider: an Ollama embedding, an OpenAI generation with the canary key, an inactive one."""
    from tests.dbutil import insert_model

    fake.set_model("stored-embed", dimensions=384)
    fake.set_model("stored-gpt", api_key=CANARY_KEY)
    fake.set_model("stored-old")
    ids = {
        "emb": insert_model(connection, name="emb", model_id="stored-embed", api_endpoint=fake.url, dimensions=384),
        "gpt": insert_model(connection, name="gpt", type="generation", provider="openai", model_id="stored-gpt",
                            api_endpoint=f"{fake.url}/v1", api_key=CANARY_KEY),
        "old": insert_model(connection, name="old", type="generation", model_id="stored-old",
                            api_endpoint=fake.url, is_active=False),
    }
    connection.commit()
    return ids


def _db_env() -> dict[str, str]:
    from tests.dbutil import TEST_PASSPHRASE

    return {"LLM_REGISTRY_ENCRYPTION_KEY": TEST_PASSPHRASE}


@pytest.mark.db
def test_from_db_tests_stored_models_with_decrypted_keys_and_audits(
    run_cli, fake_provider: FakeProvider, database_url: str, connection: Any
) -> None:
    from reconciler.audit import read_audit_events

    ids = _stored_models(connection, fake_provider)
    result = run_cli("test", "--from-db", "--database-url", database_url, "--environment", "production", env=_db_env())
    assert result.exit_code == 0, result.output
    assert "384-dimension vector" in result.stdout and "2 passed, 0 failed" in result.stdout
    assert "skipped 1 inactive model (old)" in result.stderr
    [gpt_request] = fake_provider.requests("stored-gpt")
    assert gpt_request.presented_key() == CANARY_KEY, "the stored key was decrypted and sent"

    events = read_audit_events(connection)
    assert [(e.event_type, e.model_name, e.model_id) for e in events] == [
        ("MODEL_CONNECTION_TESTED", "emb", ids["emb"]),
        ("MODEL_CONNECTION_TESTED", "gpt", ids["gpt"]),
    ]
    assert events[0].details["outcome"] == "success" and events[0].details["status"] == "ok"
    assert isinstance(events[0].details["latency_ms"], int)
    assert len({e.run_id for e in events}) == 1
    assert {e.environment for e in events} == {"production"}  # recorded as apply records it
    assert CANARY_KEY not in result.output


@pytest.mark.db
def test_from_db_failure_is_audited_without_the_key(
    run_cli, fake_provider: FakeProvider, database_url: str, connection: Any
) -> None:
    from sqlalchemy import text

    from reconciler.audit import read_audit_events

    _stored_models(connection, fake_provider)
    fake_provider.set_model("stored-gpt", api_key="a-different-key")  # the stored (canary) key is now wrong
    result = run_cli("test", "--from-db", "--database-url", database_url, "--model", "gpt", "--model", "old", "--format", "json", env=_db_env())
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    statuses = {item["name"]: item["status"] for item in payload["results"]}
    assert statuses == {"gpt": "authentication_error", "old": "ok"}
    gpt = next(item for item in payload["results"] if item["name"] == "gpt")
    assert gpt["message"].startswith("authentication failed (HTTP 401): check the API key stored in the registry")
    events = read_audit_events(connection, model="gpt")
    assert events[-1].details["outcome"] == "failure"
    assert events[-1].details["status"] == "authentication_error"
    dump = connection.execute(text("SELECT details::text FROM registry_audit_events")).scalars().all()
    assert dump and all(CANARY_KEY not in row for row in dump)
    assert CANARY_KEY not in result.output


@pytest.mark.db
def test_from_db_needs_the_passphrase_for_stored_keys(
    run_cli, fake_provider: FakeProvider, database_url: str, connection: Any
) -> None:
    from reconciler.audit import read_audit_events

    _stored_models(connection, fake_provider)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("LLM_REGISTRY_ENCRYPTION_KEY", raising=False)
        result = run_cli("test", "--from-db", "--database-url", database_url)
        assert result.exit_code == 1
        assert "LLM_REGISTRY_ENCRYPTION_KEY is not set" in result.stderr
        assert fake_provider.request_count() == 0 and read_audit_events(connection) == []
        # A model without a key needs no passphrase.
        result = run_cli("test", "--from-db", "--database-url", database_url, "--model", "emb")
        assert result.exit_code == 0, result.output


@pytest.mark.db
def test_from_db_unknown_name(run_cli, fake_provider: FakeProvider, database_url: str, connection: Any) -> None:
    _stored_models(connection, fake_provider)
    result = run_cli("test", "--from-db", "--database-url", database_url, "--model", "nope", env=_db_env())
    assert result.exit_code == 1
    assert "unknown model in the database: nope; known: emb, gpt, old" in result.stderr
    result = run_cli("test", "--from-db", "--database-url", database_url, "--model", "nope", "--model", "gtp", env=_db_env())
    assert "unknown models in the database: nope, gtp; known: emb, gpt, old" in result.stderr


def test_database_url_without_from_db_is_refused(run_cli, tmp_path: Path) -> None:
    result = run_cli("test", str(tmp_path), "--database-url", "postgresql://nowhere/db")
    assert result.exit_code == 1
    assert "--database-url needs --from-db" in result.stderr


@pytest.mark.db
def test_from_db_reports_an_undecryptable_row_as_its_failure_and_tests_the_others(
    run_cli, fake_provider: FakeProvider, database_url: str, connection: Any
) -> None:
    from reconciler.audit import read_audit_events
    from tests.dbutil import insert_model

    _stored_models(connection, fake_provider)
    insert_model(connection, name="foreign", type="generation", provider="openai", model_id="stored-foreign",
                 api_endpoint=f"{fake_provider.url}/v1", api_key=CANARY_KEY, passphrase="another-passphrase")
    connection.commit()
    result = run_cli("test", "--from-db", "--database-url", database_url, "--format", "json", env=_db_env())
    assert result.exit_code == 1, result.output
    results = {item["name"]: item for item in json.loads(result.stdout)["results"]}
    assert {name: item["status"] for name, item in results.items()} == {
        "emb": "ok", "gpt": "ok", "foreign": "key_undecryptable",  # the passphrase, not the provider's refusal
    }
    assert results["foreign"]["message"].startswith(
        "cannot decrypt the stored API key of foreign: LLM_REGISTRY_ENCRYPTION_KEY is not the passphrase they were stored with"
    )
    assert fake_provider.request_count("stored-foreign") == 0 and fake_provider.request_count("stored-gpt") == 1
    events = {e.model_name: e.details for e in read_audit_events(connection)}
    assert (events["foreign"]["outcome"], events["foreign"]["status"]) == ("failure", "key_undecryptable")
    assert events["gpt"]["outcome"] == "success"
    assert CANARY_KEY not in result.output


@pytest.fixture
def read_only_url(database_url: str, engine: Any) -> Any:
    """The test database as a role that may read the registry but write nothing (dropped afterwards)."""
    import uuid

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    role = f"llmreg_ro_{uuid.uuid4().hex[:12]}"
    with engine.begin() as connection:
        database = connection.execute(text("SELECT current_database()")).scalar_one()
        connection.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        connection.execute(text(f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"'))
        connection.execute(text(f'GRANT USAGE ON SCHEMA public TO "{role}"'))
        connection.execute(text(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"'))
    try:
        yield make_url(database_url).set(username=role).render_as_string(hide_password=False)
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP OWNED BY "{role}"'))
            connection.execute(text(f'DROP ROLE "{role}"'))


@pytest.mark.db
def test_from_db_works_for_a_read_only_role(
    run_cli, fake_provider: FakeProvider, database_url: str, connection: Any, read_only_url: str
) -> None:
    from reconciler.audit import read_audit_events

    _stored_models(connection, fake_provider)
    result = run_cli("test", "--from-db", "--database-url", read_only_url, env=_db_env())
    assert result.exit_code == 0, result.output  # the tests passed: that decides the exit code
    assert "2 passed, 0 failed" in result.stdout
    assert "warning: could not record the results in the audit trail (permission denied for table registry_audit_events)" in result.stderr
    assert "internal error" not in result.output
    assert read_audit_events(connection) == []
    fake_provider.set_model("stored-gpt", status=500)
    assert run_cli("test", "--from-db", "--database-url", read_only_url, env=_db_env()).exit_code == 1


@pytest.mark.db
def test_from_db_never_shows_a_credential_in_a_stored_endpoint(
    run_cli, closed_port_url: str, database_url: str, connection: Any
) -> None:
    # A row made by hand (the admin page's era) may carry a token in its endpoint's query,
    # which validate refuses in git: LiteLLM is given, and the message names, the base URL
    # only (providers.translate_endpoint keeps scheme, host and path).
    from sqlalchemy import text

    from tests.dbutil import insert_model

    insert_model(connection, name="leaky", type="generation", provider="openai", model_id="gpt-4o-mini",
                 api_endpoint=f"{closed_port_url}/v1?api_key={CANARY_KEY}&region=eu", api_key="sk-stored-key-0123")
    connection.commit()
    result = run_cli("test", "--from-db", "--database-url", database_url, "--format", "json", env=_db_env())
    assert result.exit_code == 1
    [item] = json.loads(result.stdout)["results"]
    assert item["status"] == "connection_error"
    assert item["message"] == (
        f"cannot connect to {closed_port_url}/v1: check api_endpoint and that the service is running"
    )
    dump = connection.execute(text("SELECT details::text FROM registry_audit_events")).scalars().all()
    assert len(dump) == 1 and all(CANARY_KEY not in row for row in dump)
    assert CANARY_KEY not in result.output


def test_from_db_tests_a_hand_made_key_that_has_no_fingerprint_yet(
    run_cli, fake_provider: FakeProvider, database_url: str, connection: Any
) -> None:
    """A row from the admin page, taken over without the passphrase: a key, no fingerprint."""
    from reconciler import pgp
    from tests.dbutil import TEST_PASSPHRASE, insert_model

    fake_provider.set_model("stored-legacy", api_key=CANARY_KEY)
    insert_model(connection, name="legacy", type="generation", provider="openai", model_id="stored-legacy",
                 api_endpoint=f"{fake_provider.url}/v1", managed_by=None,
                 ciphertext=pgp.encrypt(CANARY_KEY, TEST_PASSPHRASE))  # fmt: skip
    connection.commit()
    result = run_cli("test", "--from-db", "--database-url", database_url, "--format", "json", env=_db_env())
    assert result.exit_code == 0, result.output
    [tested] = json.loads(result.stdout)["results"]
    assert (tested["name"], tested["status"]) == ("legacy", "ok")  # not "no API key"
    assert fake_provider.request_count("stored-legacy") == 1 and CANARY_KEY not in result.output
