"""apply's set-based writes (reconciler/writes.py): constant statements, keys encrypted once, drift digests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from reconciler import pgp
from reconciler.apply import ApplyOptions, apply_registry
from reconciler.pipeline import load_registry
from reconciler.secrets import ENCRYPTION_KEY_ENV
from reconciler.state import applied_fingerprint, read_state
from tests.dbutil import TEST_PASSPHRASE
from tests.factories import CANARY_KEY, embedding_model, generation_model, write_registry_file

pytestmark = pytest.mark.db

OTHER_KEY = "sk-other-key-000000000000000000000000000"
ENV = {ENCRYPTION_KEY_ENV: TEST_PASSPHRASE, "OPENAI_API_KEY": CANARY_KEY, "COHERE_API_KEY": OTHER_KEY}


class CountingCursor(psycopg.Cursor):  # type: ignore[type-arg]
    """A driver cursor that records every statement and COPY sent through it."""

    statements: list[str] = []

    def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        CountingCursor.statements.append(str(query))
        return super().execute(query, *args, **kwargs)

    def executemany(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        CountingCursor.statements.append(str(query))
        return super().executemany(query, *args, **kwargs)

    def copy(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        CountingCursor.statements.append(str(statement))
        return super().copy(statement, *args, **kwargs)


def models(count: int, **changes: Any) -> list[dict[str, Any]]:
    """`count` generation models on two keys (OpenAI and Cohere), alternating."""
    result = []
    for index in range(count):
        openai = index % 2 == 0
        result.append(generation_model(
            name=f"m-{index:03d}", provider="openai" if openai else "cohere",
            api_key="${env:OPENAI_API_KEY}" if openai else "${env:COHERE_API_KEY}", **changes,
        ))
    return result


def apply(engine: Engine, directory: Path) -> tuple[Any, list[str]]:
    """apply_registry (no connection tests) on a connection that counts its statements."""
    registry, _ = load_registry(directory)
    CountingCursor.statements = []
    with engine.connect() as connection:
        connection.connection.driver_connection.cursor_factory = CountingCursor  # type: ignore[union-attr]
        options = ApplyOptions(actor="t", revision=None, skip_connection_tests=True, allow_delete_all=True)
        outcome = apply_registry(connection, registry, ENV, options)
        connection.connection.driver_connection.cursor_factory = psycopg.Cursor  # type: ignore[union-attr]
    return outcome, list(CountingCursor.statements)


def writes(statements: list[str]) -> list[str]:
    """The statements that change llm_models."""
    return [s for s in statements if s.lstrip().startswith(("INSERT INTO llm_models", "UPDATE llm_models", "DELETE FROM llm_models", "COPY llm_models"))]


@pytest.mark.parametrize("phase", ["create", "update", "delete"])
def test_the_number_of_statements_does_not_grow_with_the_models(engine: Engine, tmp_path: Path, phase: str) -> None:
    counts = []
    for size in (3, 30):
        directory = tmp_path / f"r{size}"
        write_registry_file(directory, models(size))
        if phase != "create":
            apply(engine, directory)
        if phase == "update":
            write_registry_file(directory, models(size, description="changed"))
        if phase == "delete":
            write_registry_file(directory, [embedding_model(name="keeper")])
        outcome, statements = apply(engine, directory)
        assert outcome.committed and outcome.plan.count(phase) == size
        counts.append((len(statements), len(writes(statements))))
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM llm_models"))
            connection.execute(text("DELETE FROM llm_registry_encryption"))
    assert counts[0] == counts[1]
    assert counts[0][1] == (2 if phase == "delete" else 1)  # one statement per kind (delete: + the keeper's COPY)


def test_each_distinct_key_is_encrypted_once_and_opens_in_sql(engine: Engine, tmp_path: Path) -> None:
    directory = tmp_path / "r"
    write_registry_file(directory, models(6))
    apply(engine, directory)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT name, api_key, pgp_sym_decrypt(api_key, :p) AS key FROM llm_models ORDER BY name"), {"p": TEST_PASSPHRASE}
        ).all()
    assert {row.key for row in rows[0::2]} == {CANARY_KEY} and {row.key for row in rows[1::2]} == {OTHER_KEY}
    assert len({bytes(row.api_key) for row in rows}) == 2
    assert pgp.decrypt(bytes(rows[0].api_key), TEST_PASSPHRASE) == CANARY_KEY


def test_every_written_row_carries_the_digest_of_what_was_written(engine: Engine, tmp_path: Path) -> None:
    directory = tmp_path / "r"
    write_registry_file(directory, models(4))
    apply(engine, directory)
    write_registry_file(directory, [*models(3, description="second"), embedding_model(name="new-one")])
    apply(engine, directory)
    with engine.connect() as connection:
        state = read_state(connection)
        stored = dict(connection.execute(text("SELECT name, applied_fingerprint FROM llm_models")).all())
    assert sorted(stored) == ["m-000", "m-001", "m-002", "new-one"]
    for model in state.models:
        assert stored[model.name] == applied_fingerprint(model.name, model.record), model.name


def test_a_key_change_alone_rewrites_key_and_digest(engine: Engine, tmp_path: Path) -> None:
    directory = tmp_path / "r"
    write_registry_file(directory, models(2))
    apply(engine, directory)
    with engine.connect() as connection:
        before = dict(connection.execute(text("SELECT name, api_key_fingerprint FROM llm_models")).all())
    registry, _ = load_registry(directory)
    with engine.connect() as connection:
        outcome = apply_registry(
            connection, registry, {**ENV, "OPENAI_API_KEY": "sk-rotated-111111111111111111111111"},
            ApplyOptions(actor="t", revision=None, skip_connection_tests=True),
        )
    assert [a.name for a in outcome.plan.actions] == ["m-000"]
    with engine.connect() as connection:
        state = read_state(connection)
        after = dict(connection.execute(text("SELECT name, api_key_fingerprint FROM llm_models")).all())
        stored = dict(connection.execute(text("SELECT name, applied_fingerprint FROM llm_models")).all())
        key = connection.execute(text("SELECT pgp_sym_decrypt(api_key, :p) FROM llm_models WHERE name = 'm-000'"), {"p": TEST_PASSPHRASE}).scalar_one()
    assert after["m-001"] == before["m-001"] and after["m-000"] != before["m-000"]
    assert key == "sk-rotated-111111111111111111111111"
    assert all(stored[m.name] == applied_fingerprint(m.name, m.record) for m in state.models)


def test_a_key_change_is_written_beside_updates_that_keep_their_key(engine: Engine, tmp_path: Path) -> None:
    directory = tmp_path / "r"
    write_registry_file(directory, models(2))
    apply(engine, directory)
    changed = models(2)
    changed[0]["description"] = "changed"  # 'm-000': another field; 'm-001': its (Cohere) key rotated
    write_registry_file(directory, changed)
    registry, _ = load_registry(directory)
    rotated = "sk-rotated-222222222222222222222222"
    with engine.connect() as connection:
        outcome = apply_registry(
            connection, registry, {**ENV, "COHERE_API_KEY": rotated}, ApplyOptions(actor="t", revision=None, skip_connection_tests=True)
        )
    assert [(a.name, a.changed_fields()) for a in outcome.plan.actions] == [("m-000", ("description",)), ("m-001", ("api_key",))]
    with engine.connect() as connection:
        keys = dict(connection.execute(text("SELECT name, pgp_sym_decrypt(api_key, :p) FROM llm_models"), {"p": TEST_PASSPHRASE}).all())
        state = read_state(connection)
    assert keys == {"m-000": CANARY_KEY, "m-001": rotated}
    assert [m.record["description"] for m in state.models if m.name == "m-000"] == ["changed"]
    # ... and its fingerprint with it: the next plan with the same keys has nothing to do.
    with engine.connect() as connection:
        again = apply_registry(
            connection, registry, {**ENV, "COHERE_API_KEY": rotated}, ApplyOptions(actor="t", revision=None, skip_connection_tests=True)
        )
    assert again.plan.actions == ()


def test_an_update_of_other_fields_leaves_the_stored_key_as_it_was(engine: Engine, tmp_path: Path) -> None:
    # The plan shows a description change only: the key's ciphertext is not rewritten either.
    directory = tmp_path / "r"
    write_registry_file(directory, models(2))
    apply(engine, directory)
    query = text("SELECT name, api_key, api_key_fingerprint FROM llm_models ORDER BY name")
    with engine.connect() as connection:
        before = [tuple(row) for row in connection.execute(query)]
    write_registry_file(directory, models(2, description="changed"))
    outcome, _ = apply(engine, directory)
    assert outcome.plan.count("update") == 2
    assert all(a.changed_fields() == ("description",) for a in outcome.plan.actions)
    with engine.connect() as connection:
        assert [tuple(row) for row in connection.execute(query)] == before


def test_a_default_moving_between_models_is_written_in_one_apply(engine: Engine, tmp_path: Path) -> None:
    directory = tmp_path / "r"
    write_registry_file(directory, [embedding_model(name="a", default=True), embedding_model(name="b")])
    apply(engine, directory)
    write_registry_file(directory, [embedding_model(name="a"), embedding_model(name="b", default=True)])
    outcome, statements = apply(engine, directory)
    assert outcome.committed
    # the old default cleared first, then one UPDATE for both: no row-by-row replay
    assert [s.split()[0] for s in writes(statements)] == ["UPDATE", "UPDATE"]
    with engine.connect() as connection:
        assert dict(connection.execute(text("SELECT name, is_default FROM llm_models")).all()) == {"a": False, "b": True}


def test_a_database_error_inside_the_set_based_writes_is_a_clean_error_and_nothing_is_written(engine: Engine, tmp_path: Path) -> None:
    from reconciler.errors import RegistryError

    directory = tmp_path / "r"
    write_registry_file(directory, models(2))
    with engine.begin() as connection:
        connection.execute(text(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by a trigger'; END $$"
        ))
        connection.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON llm_models FOR EACH ROW EXECUTE FUNCTION refuse()"))
    registry, _ = load_registry(directory)
    with engine.connect() as connection:
        with pytest.raises(RegistryError) as caught:
            apply_registry(connection, registry, ENV, ApplyOptions(actor="t", revision=None, skip_connection_tests=True))
    assert caught.value.message == (
        "database error during apply (refused by a trigger); the transaction was rolled back, nothing was written"
    )
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM llm_models")).scalar_one() == 0
        assert connection.execute(text("SELECT count(*) FROM registry_audit_events")).scalar_one() == 0
