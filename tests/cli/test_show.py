"""`llm-registry show NAME`: one model, its KBs, its last connection test, its recent events. Never a key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reconciler.audit import AuditEvent, write_audit_events
from reconciler.secrets import key_fingerprint
from tests.cli.conftest import RunCli
from tests.dbutil import TEST_PASSPHRASE, insert_knowledge_base, insert_model
from tests.factories import CANARY_KEY

pytestmark = pytest.mark.db


@pytest.fixture
def model_id(engine: Any) -> str:
    """A hand-made openai generation model with a key and a NULL temperature, two KBs, three events."""
    with engine.begin() as connection:
        row = insert_model(
            connection, name="gpt-4o-mini", type="generation", provider="openai", model_id="gpt-4o-mini",
            api_endpoint=None, api_key=CANARY_KEY, temperature=None, managed_by=None,
            description="Answers\x1b[2J for legal",
        )  # fmt: skip
        insert_knowledge_base(connection, "kb-b", generation_model_id=row)
        insert_knowledge_base(connection, "kb-a", generation_model_id=row)
        write_audit_events(
            connection,
            [
                AuditEvent("MODEL_CONNECTION_TESTED", "gpt-4o-mini", row, {"outcome": "failure", "status": "timeout_error", "latency_ms": 30001, "message": "no answer"}),
                AuditEvent("MODEL_UPDATED", "gpt-4o-mini", row, {"changes": {"top_p": {"before": 1.0, "after": 0.9}}}),
                AuditEvent("MODEL_CONNECTION_TESTED", "gpt-4o-mini", row, {"outcome": "success", "status": "ok", "latency_ms": 12, "message": "completion returned"}),
            ],
            run_id="run-1", actor="alice", source_revision="abc123",
        )  # fmt: skip
    return row


def test_json(run_cli: RunCli, database_url: str, model_id: str) -> None:
    result = run_cli("show", "gpt-4o-mini", "--database-url", database_url, "--format", "json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    model = shown["model"]
    assert (model["id"], model["knowledge_bases"], model["managed"]) == (model_id, ["kb-a", "kb-b"], False)
    assert model["parameters"]["temperature"] is None and model["api_key_set"] is True
    assert shown["last_connection_test"]["details"]["status"] == "ok"
    assert [event["event_type"] for event in shown["events"]] == ["MODEL_CONNECTION_TESTED", "MODEL_UPDATED", "MODEL_CONNECTION_TESTED"]
    limited = json.loads(run_cli("show", "gpt-4o-mini", "--database-url", database_url, "--format", "json", "--events", "1").stdout)
    assert [event["details"].get("status") for event in limited["events"]] == ["ok"]


def test_text(run_cli: RunCli, database_url: str, model_id: str) -> None:
    result = run_cli("show", "gpt-4o-mini", "--database-url", database_url)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "gpt-4o-mini (generation, openai)"
    # Values in one column, past the longest label (max_output_tokens, a generation parameter).
    assert "  api_key            set (export names its variable LLM_KEY_GPT_4O_MINI)" in lines
    assert "  description        Answers\\x1b[2J for legal" in lines  # escaped, never sent to the terminal
    assert "  temperature        (not set)" in lines
    assert "  max_output_tokens  1024" in lines
    assert lines[lines.index("Knowledge bases (2)") + 1 : lines.index("Knowledge bases (2)") + 3] == ["  kb-a", "  kb-b"]
    test_line = lines[lines.index("Last connection test") + 1]
    assert test_line.endswith("  ok, 12 ms: completion returned")
    assert any("MODEL_UPDATED  by alice  run run-1  changed: top_p" in line for line in lines)
    for secret in (CANARY_KEY, key_fingerprint(CANARY_KEY, TEST_PASSPHRASE)):
        assert secret not in result.output


def test_an_unknown_name_is_an_error(run_cli: RunCli, database_url: str) -> None:
    result = run_cli("show", "nope", "--database-url", database_url)
    assert (result.exit_code, result.stderr) == (1, "error: no model named 'nope' in the registry (see `llm-registry list`)\n")
