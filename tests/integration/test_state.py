"""read_state: the whole registry in a constant number of queries, as plain data."""

from __future__ import annotations

import tempfile

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from reconciler import MANAGED_BY
from reconciler.spec import RECORD_FIELDS
from reconciler.state import RegistryState, read_state, state_fingerprint
from tests import factories
from tests.dbutil import TEST_PASSPHRASE, insert_knowledge_base, insert_model, insert_stored_model
from reconciler.secrets import key_fingerprint

pytestmark = pytest.mark.db


def test_an_empty_registry(connection: Connection) -> None:
    assert read_state(connection) == RegistryState()


def test_rows_become_stored_models_with_every_record_field(connection: Connection) -> None:
    embedding_id = insert_model(connection, name="emb", description="vectors")
    generation_id = insert_model(
        connection,
        name="gen",
        type="generation",
        provider="openai",
        api_endpoint=None,
        api_key=factories.CANARY_KEY,
        temperature=1,
        top_p=0.5,
        top_k=40,
        managed_by=None,
    )
    state = read_state(connection)
    by_name = state.by_name()
    assert list(by_name) == ["emb", "gen"]
    emb, gen = by_name["emb"], by_name["gen"]
    assert (emb.id, emb.managed_by, emb.managed) == (embedding_id, MANAGED_BY, True)
    assert (gen.id, gen.managed_by, gen.managed) == (generation_id, None, False)
    for model in (emb, gen):
        assert set(model.record) == set(RECORD_FIELDS)
        assert isinstance(model.id, str)
    assert emb.record["api_key"] is None
    assert emb.record["dimensions"] == 768 and emb.record["description"] == "vectors"
    assert emb.record["context_window"] is None and emb.record["temperature"] is None
    # the fingerprint, never the key
    assert gen.record["api_key"] == key_fingerprint(factories.CANARY_KEY, TEST_PASSPHRASE)
    assert factories.CANARY_KEY not in repr(state)
    assert type(gen.record["temperature"]) is float and gen.record["temperature"] == 1.0
    assert type(gen.record["top_p"]) is float
    assert gen.record["dimensions"] is None


def test_a_factory_stored_model_round_trips(connection: Connection) -> None:
    """What tests build with factories.stored_model is exactly what read_state returns."""
    models = [
        factories.stored_model("a"),
        factories.stored_model("b", managed_by=None, is_default=True),
        factories.stored_model(
            "c",
            type="generation",
            provider="openai",
            api_endpoint=None,
            api_key="f" * 64,
            dimensions=None,
            max_tokens=None,
            normalize=None,
            distance_metric=None,
            batch_size=None,
            context_window=128000,
            max_output_tokens=4096,
            temperature=0.7,
            top_p=1.0,
        ),
    ]
    for model in models:
        insert_stored_model(connection, model)
    kb = factories.knowledge_base("kb", embedding=models[0], generation=models[2])
    connection.execute(
        text("INSERT INTO knowledge_bases (id, name, embedding_model_id, generation_model_id) VALUES (:id, :n, :e, :g)"),
        {"id": kb.id, "n": kb.name, "e": kb.embedding_model_id, "g": kb.generation_model_id},
    )
    state = read_state(connection)
    assert state == RegistryState(models=tuple(models), knowledge_bases=(kb,))
    assert state_fingerprint(state) == state_fingerprint(RegistryState(models=tuple(models), knowledge_bases=(kb,)))


def test_kb_references_by_model(connection: Connection) -> None:
    used = insert_model(connection, name="used")
    generation = insert_model(connection, name="gen", type="generation")
    insert_model(connection, name="unused")
    insert_knowledge_base(connection, "kb-b", embedding_model_id=used, generation_model_id=generation)
    insert_knowledge_base(connection, "kb-a", embedding_model_id=used)
    insert_knowledge_base(connection, "kb-none")
    state = read_state(connection)
    assert [kb.name for kb in state.knowledge_bases] == ["kb-a", "kb-b", "kb-none"]
    assert state.kbs_using(used) == ("kb-a", "kb-b")
    assert state.kbs_using(generation) == ("kb-b",)
    assert state.kbs_using(state.by_name()["unused"].id) == ()
    assert state.knowledge_bases[2].embedding_model_id is None


def _statements_sent(connection: Connection) -> list[str]:
    """What read_state sends the server, from libpq's protocol trace (SQLAlchemy's and psycopg's own cursors alike)."""
    from psycopg import pq

    driver = connection.connection.driver_connection
    with tempfile.TemporaryFile("w+") as trace:
        driver.pgconn.trace(trace.fileno())
        driver.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            read_state(connection)
        finally:
            driver.pgconn.untrace()
        trace.seek(0)
        # Frontend messages carrying a statement: simple queries and prepared ones.
        return [line.split("\t", 3)[3] for line in trace.read().splitlines() if line.split("\t")[:3:2] in (["F", "Query"], ["F", "Parse"])]


@pytest.mark.parametrize("size", [1, 60])
def test_a_constant_number_of_queries(engine: Engine, size: int) -> None:
    with engine.begin() as connection:
        for index in range(size):
            model_id = insert_model(connection, name=f"m{index:03d}")
            insert_knowledge_base(connection, f"kb{index:03d}", embedding_model_id=model_id)
    with engine.connect() as connection:
        statements = _statements_sent(connection)
        assert len(read_state(connection).models) == size
    # models (declared, fetched in batches of thousands, closed), KBs, the passphrase
    # probe, the time of the last apply: the same statements for one row as for sixty.
    selects = [s for s in statements if "SELECT" in s]
    assert len(selects) == 4, statements
    assert sum("FETCH" in s for s in statements) == 2, statements  # one batch, then the empty one that ends it


def test_the_fingerprint_moves_with_the_rows(connection: Connection) -> None:
    insert_model(connection, name="x")
    before = state_fingerprint(read_state(connection))
    assert state_fingerprint(read_state(connection)) == before
    connection.execute(text("UPDATE llm_models SET batch_size = 64"))
    assert state_fingerprint(read_state(connection)) != before


def test_drift_inputs_are_read(connection: Connection) -> None:
    from reconciler.audit import AuditEvent, write_audit_events
    from reconciler.state import applied_fingerprint

    assert read_state(connection).last_applied_at is None  # never applied
    model_id = insert_model(connection, name="x")
    write_audit_events(connection, [AuditEvent("MODEL_CREATED", "x", model_id, {})], run_id="r", actor="a", source_revision=None)
    state = read_state(connection)
    (row,) = state.models
    connection.execute(text("UPDATE llm_models SET applied_fingerprint = :fp"), {"fp": applied_fingerprint(row.name, row.record)})
    (row,) = read_state(connection).models
    assert row.applied_fingerprint == applied_fingerprint(row.name, row.record) and row.created_at is not None
    assert state.last_applied_at is not None and state.last_applied_at >= row.created_at


def test_a_snapshot_reads_the_same_state_in_one_read_only_repeatable_read_transaction(engine: Engine, database_url: str) -> None:
    import psycopg

    from reconciler import db

    with engine.begin() as connection:
        used = insert_model(connection, name="used")
        insert_model(connection, name="spare", managed_by=None)
        insert_knowledge_base(connection, "kb", embedding_model_id=used)
    with engine.connect() as connection:
        through_sqlalchemy = read_state(connection)
    with db.snapshot(database_url) as snapshot:
        assert read_state(snapshot) == through_sqlalchemy and len(through_sqlalchemy.models) == 2
        assert snapshot.execute("SHOW transaction_isolation").fetchone() == ("repeatable read",)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            snapshot.execute("DELETE FROM llm_models")
    assert snapshot.closed
    with engine.connect() as connection:
        assert len(read_state(connection).models) == 2


def test_a_snapshot_needs_the_schema_at_head(unmigrated_database_url: str) -> None:
    from reconciler import db
    from reconciler.errors import RegistryError

    with pytest.raises(RegistryError, match="no llm-registry schema yet: run `llm-registry db upgrade` first"):
        with db.snapshot(unmigrated_database_url):
            pass
