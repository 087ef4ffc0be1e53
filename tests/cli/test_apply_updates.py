"""Every field a definition determines (spec.RECORD_FIELDS) can be updated by apply.

For each field: the plan names the change `before -> after`, apply writes it to the
row (same id), the audit event lists it with its before and after, and an active
model is connection-tested before the write. A field dropped from the diff, the
write or the audit fails exactly its own case here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
from sqlalchemy import text

from reconciler import db
from reconciler.spec import RECORD_FIELDS, yaml_field_name
from reconciler.state import read_state
from tests.cli.applyutil import APPLY_ENV, audit_events
from tests.dbutil import TEST_PASSPHRASE
from tests.factories import CANARY_KEY, embedding_model, generation_model, ner_model, write_registry_file
from tests.fakes.provider import FakeProvider

OTHER_KEY = "sk-other-canary-9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d"
ENV = {**APPLY_ENV, "OTHER_API_KEY": OTHER_KEY}


@dataclass(frozen=True)
class Case:
    """One field's update: the model before and after, and what plan/row/audit must show."""

    field: str
    before: Callable[[FakeProvider], dict[str, Any]]
    after: Callable[[FakeProvider], dict[str, Any]]
    shown: str  # the plan line's `before -> after`, as rendered
    audited: Any  # details.changes[yaml name]
    stored: Any = None  # the record value after (None: `audited["after"]`)
    tested_model_id: str | None = None  # the model_id the connection test must hit (None: no test)
    env: dict[str, str] = field(default_factory=dict)


def _gen(fake: FakeProvider, **overrides: Any) -> dict[str, Any]:
    parameters = {"top_k": 40, **overrides.pop("parameters", {})}
    return generation_model(**{"name": "subject", "api_endpoint": fake.url, **overrides, "parameters": parameters})


def _ollama_gen(fake: FakeProvider, **overrides: Any) -> dict[str, Any]:
    return _gen(fake, provider="ollama", api_key=None, **overrides)


def _emb(fake: FakeProvider, **parameters: Any) -> dict[str, Any]:
    return embedding_model(name="subject", api_endpoint=fake.url, parameters=parameters)


def _azure(fake: FakeProvider, version: str) -> dict[str, Any]:
    return generation_model(name="subject", provider="azure", model_id="gpt-4o-deploy", api_endpoint=fake.url, api_version=version)


def _localhost(fake: FakeProvider) -> str:
    return fake.url.replace("127.0.0.1", "localhost")


CASES = [
    Case("type", lambda f: ner_model(name="subject", api_endpoint=f.url, model_id="tagger"),
         lambda f: _ollama_gen(f, model_id="tagger"), '"ner" -> "generation"',
         {"before": "ner", "after": "generation"}, tested_model_id="tagger"),
    Case("provider", lambda f: _gen(f), lambda f: _gen(f, provider="anthropic"),
         '"openai" -> "anthropic"', {"before": "openai", "after": "anthropic"}, tested_model_id="gpt-4o-mini"),
    Case("model_id", lambda f: _gen(f), lambda f: _gen(f, model_id="gpt-4o"), '"gpt-4o-mini" -> "gpt-4o"',
         {"before": "gpt-4o-mini", "after": "gpt-4o"}, tested_model_id="gpt-4o"),
    Case("api_endpoint", lambda f: _gen(f), lambda f: _gen(f, api_endpoint=_localhost(f)), "",
         None, tested_model_id="gpt-4o-mini"),
    Case("api_version", lambda f: _azure(f, "2024-02-01"), lambda f: _azure(f, "2024-10-21"),
         '"2024-02-01" -> "2024-10-21"', {"before": "2024-02-01", "after": "2024-10-21"}, tested_model_id="gpt-4o-deploy"),
    Case("api_key", lambda f: _gen(f), lambda f: _gen(f, api_key="${env:OTHER_API_KEY}"),
         "(set) -> ${env:OTHER_API_KEY} (changed)",
         "changed", tested_model_id="gpt-4o-mini"),
    Case("is_active", lambda f: _gen(f), lambda f: _gen(f, active=False), "true -> false",
         {"before": True, "after": False}),
    Case("is_default", lambda f: _gen(f), lambda f: _gen(f, default=True), "false -> true",
         {"before": False, "after": True}, tested_model_id="gpt-4o-mini"),
    Case("description", lambda f: _gen(f, description="old"), lambda f: _gen(f, description="new <b>"),
         '"old" -> "new <b>"', {"before": "old", "after": "new <b>"}, tested_model_id="gpt-4o-mini"),
    Case("dimensions", lambda f: _emb(f, dimensions=768), lambda f: _emb(f, dimensions=1024), "768 -> 1024",
         {"before": 768, "after": 1024}, tested_model_id="nomic-embed-text"),
    Case("max_tokens", lambda f: _emb(f, max_tokens=8192), lambda f: _emb(f, max_tokens=4096), "8192 -> 4096",
         {"before": 8192, "after": 4096}, tested_model_id="nomic-embed-text"),
    Case("normalize", lambda f: _emb(f, normalize=True), lambda f: _emb(f, normalize=False), "true -> false",
         {"before": True, "after": False}, tested_model_id="nomic-embed-text"),
    Case("distance_metric", lambda f: _emb(f), lambda f: _emb(f, distance_metric="dot_product"),
         '"cosine" -> "dot_product"', {"before": "cosine", "after": "dot_product"}, tested_model_id="nomic-embed-text"),
    Case("batch_size", lambda f: _emb(f, batch_size=32), lambda f: _emb(f, batch_size=64), "32 -> 64",
         {"before": 32, "after": 64}, tested_model_id="nomic-embed-text"),
    Case("context_window", lambda f: _gen(f), lambda f: _gen(f, parameters={"context_window": 64000}),
         "128000 -> 64000", {"before": 128000, "after": 64000}, tested_model_id="gpt-4o-mini"),
    Case("max_output_tokens", lambda f: _gen(f), lambda f: _gen(f, parameters={"max_output_tokens": 2048}),
         "4096 -> 2048", {"before": 4096, "after": 2048}, tested_model_id="gpt-4o-mini"),
    Case("temperature", lambda f: _gen(f), lambda f: _gen(f, parameters={"temperature": 0.2}), "0.7 -> 0.2",
         {"before": 0.7, "after": 0.2}, tested_model_id="gpt-4o-mini"),
    Case("top_p", lambda f: _gen(f), lambda f: _gen(f, parameters={"top_p": 0.9}), "1.0 -> 0.9",
         {"before": 1.0, "after": 0.9}, tested_model_id="gpt-4o-mini"),
    Case("top_k", lambda f: _ollama_gen(f), lambda f: _ollama_gen(f, parameters={"top_k": 20}), "40 -> 20",
         {"before": 40, "after": 20}, tested_model_id="gpt-4o-mini"),
]


def test_every_record_field_has_an_update_case() -> None:
    assert sorted(case.field for case in CASES) == sorted(RECORD_FIELDS)


def _serve_everything(fake: FakeProvider) -> None:
    for model_id in ("gpt-4o-mini", "gpt-4o", "gpt-4o-deploy", "tagger"):
        fake.set_model(model_id)
    fake.set_model("nomic-embed-text", dimensions=768)


def _record(url: str) -> tuple[str, dict[str, Any]]:
    engine = db.create_engine(url)
    try:
        with engine.connect() as connection:
            (row,) = [m for m in read_state(connection).models if m.name == "subject"]
            return row.id, dict(row.record)
    finally:
        engine.dispose()


def _apply(run_cli: Any, directory: Path, url: str) -> Any:
    return run_cli("apply", str(directory), "--database-url", url, "--auto-approve", "--actor", "alice", "--revision", "r1", env=ENV)


@pytest.mark.parametrize("case", CASES, ids=[case.field for case in CASES])
def test_an_update_of_each_field_is_planned_written_audited_and_tested(
    case: Case, run_cli: Any, tmp_path: Path, database_url: str, engine: Any, fake_provider: FakeProvider
) -> None:
    _serve_everything(fake_provider)
    directory = tmp_path / "registry.d"
    write_registry_file(directory, [case.before(fake_provider)])
    created = _apply(run_cli, directory, database_url)
    assert created.exit_code == 0, created.output
    row_id, before = _record(database_url)

    after_model = case.after(fake_provider)
    if case.field == "dimensions":
        fake_provider.set_model("nomic-embed-text", dimensions=1024)
    write_registry_file(directory, [after_model])
    fake_provider.reset()
    _serve_everything(fake_provider)
    if case.field == "dimensions":
        fake_provider.set_model("nomic-embed-text", dimensions=1024)
    result = _apply(run_cli, directory, database_url)
    assert result.exit_code == 0, result.output
    yaml_name = yaml_field_name(case.field)

    # plan: the field, before -> after
    expected_before = before[case.field]
    if case.field == "api_endpoint":
        shown = f'"{fake_provider.url}" -> "{_localhost(fake_provider)}"'
        audited: Any = {"before": fake_provider.url, "after": _localhost(fake_provider)}
    else:
        shown, audited = case.shown, case.audited
    assert re.search(rf"~ {re.escape(yaml_name)} *= {re.escape(shown)}$", result.stdout, re.MULTILINE), result.stdout
    assert "Apply complete: 0 created, 1 updated, 0 deleted." in result.stdout

    # write: the same row now holds the new value
    row_id_after, after = _record(database_url)
    assert row_id_after == row_id
    if case.field == "api_key":
        assert after["api_key"] is not None and after["api_key"] != before["api_key"]
    else:
        assert before[case.field] == expected_before == (audited["before"])
        assert after[case.field] == audited["after"]

    # audit: the event names the field with before and after
    updated = [e for e in audit_events(engine) if e["event_type"] == "MODEL_UPDATED"]
    assert len(updated) == 1 and updated[0]["model_name"] == "subject" and str(updated[0]["model_id"]) == row_id
    assert updated[0]["details"]["changes"][yaml_name] == audited

    # connection test: run for an active model before the write, skipped for an inactive one
    if case.tested_model_id is None:
        assert fake_provider.request_count() == 0
        assert updated[0]["details"]["connection_test"] is None
    else:
        assert fake_provider.request_count(case.tested_model_id) == 1
        assert updated[0]["details"]["connection_test"] == "ok"
    assert CANARY_KEY not in result.output and OTHER_KEY not in result.output


def _decrypted_key(engine: Any) -> str:
    from reconciler.tables import llm_models

    column = llm_models.c.api_key.name if "api_key" in llm_models.c else llm_models.c.api_key_encrypted.name
    with engine.connect() as connection:
        return str(
            connection.execute(
                text(f"SELECT pgp_sym_decrypt({column}, :p) FROM llm_models WHERE name = 'subject'"), {"p": TEST_PASSPHRASE}
            ).scalar_one()
        )


def test_a_rotated_key_behind_the_same_reference_is_written_on_update(
    run_cli: Any, tmp_path: Path, database_url: str, engine: Any, fake_provider: FakeProvider
) -> None:
    _serve_everything(fake_provider)
    directory = tmp_path / "registry.d"
    write_registry_file(directory, [_gen(fake_provider)])
    assert _apply(run_cli, directory, database_url).exit_code == 0
    assert _decrypted_key(engine) == CANARY_KEY
    rotated = {**ENV, "OPENAI_API_KEY": OTHER_KEY}
    fake_provider.reset()
    fake_provider.set_model("gpt-4o-mini", api_key=OTHER_KEY)  # the new key must be the one tested
    result = run_cli("apply", str(directory), "--database-url", database_url, "--auto-approve", env=rotated)
    assert result.exit_code == 0, result.output
    assert re.search(r"~ api_key *= \(set\) -> \$\{env:OPENAI_API_KEY\} \(changed\)$", result.stdout, re.MULTILINE), result.stdout
    assert _decrypted_key(engine) == OTHER_KEY
    assert fake_provider.request_count("gpt-4o-mini") == 1
    updated = [e for e in audit_events(engine) if e["event_type"] == "MODEL_UPDATED"]
    assert [e["details"]["changes"] for e in updated] == [{"api_key": "changed"}]
    assert OTHER_KEY not in result.output and CANARY_KEY not in result.output
    again = run_cli("plan", str(directory), "--database-url", database_url, "--detailed-exitcode", env=rotated)
    assert again.exit_code == 0, again.output
