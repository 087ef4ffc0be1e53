"""The schema guards its own invariants: every constraint shown refusing a bad row with plain SQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from reconciler import db
from reconciler.tables import VERSION_TABLE, metadata
from tests.dbutil import count_rows, insert_knowledge_base, insert_model

pytestmark = pytest.mark.db


def refused(connection: Connection, constraint: str | None = None, **columns: Any) -> str:
    """Insert a row with `columns` inside a savepoint; return the database's refusal."""
    with pytest.raises(DBAPIError) as caught:
        with connection.begin_nested():
            insert_model(connection, **columns)
    message = str(caught.value.orig)
    if constraint is not None:
        assert constraint in message, message
    return message


def test_a_valid_embedding_generation_and_ner_row_are_accepted(connection: Connection) -> None:
    insert_model(connection)
    insert_model(connection, type="generation")
    insert_model(connection, type="ner")
    assert count_rows(connection, "llm_models") == 3


@pytest.mark.parametrize(
    ("constraint", "columns"),
    [
        ("ck_llm_models_model_type", {"type": "rerank"}),
        ("ck_llm_models_provider", {"provider": "mistral"}),
        ("ck_llm_models_distance_metric", {"distance_metric": "manhattan"}),
        ("ck_llm_models_dimensions_range", {"dimensions": 0}),
        ("ck_llm_models_dimensions_range", {"dimensions": 65537}),
        ("ck_llm_models_max_tokens_positive", {"max_tokens": 0}),
        ("ck_llm_models_batch_size_range", {"batch_size": 0}),
        ("ck_llm_models_batch_size_range", {"batch_size": 2049}),
        ("ck_llm_models_name_length", {"name": ""}),
        ("ck_llm_models_model_id_length", {"model_id": ""}),
        ("ck_llm_models_embedding_has_dimensions", {"dimensions": None}),
        ("ck_llm_models_no_anthropic_embedding", {"provider": "anthropic"}),
        ("ck_llm_models_default_is_active", {"is_default": True, "is_active": False}),
        ("ck_llm_models_api_key_pair", {"api_key_fingerprint": "ab" * 32}),
        ("ck_llm_models_api_key_pair", {"ciphertext": b"\x01\x02"}),
    ],
)
def test_embedding_row_constraints(connection: Connection, constraint: str, columns: dict[str, Any]) -> None:
    refused(connection, constraint, **columns)


@pytest.mark.parametrize(
    ("constraint", "columns"),
    [
        ("ck_llm_models_context_window_positive", {"context_window": 0}),
        ("ck_llm_models_generation_has_context_window", {"context_window": None, "max_output_tokens": None}),
        ("ck_llm_models_max_output_tokens_positive", {"max_output_tokens": 0}),
        ("ck_llm_models_max_output_tokens_fits", {"context_window": 4096, "max_output_tokens": 4097}),
        ("ck_llm_models_temperature_range", {"temperature": -0.1}),
        ("ck_llm_models_temperature_range", {"temperature": 2.01}),
        ("ck_llm_models_temperature_range", {"temperature": float("nan")}),
        ("ck_llm_models_top_p_range", {"top_p": -0.01}),
        ("ck_llm_models_top_p_range", {"top_p": 1.5}),
        ("ck_llm_models_top_k_positive", {"top_k": 0}),
    ],
)
def test_generation_row_constraints(connection: Connection, constraint: str, columns: dict[str, Any]) -> None:
    refused(connection, constraint, type="generation", **columns)


def test_range_bounds_are_inclusive(connection: Connection) -> None:
    insert_model(connection, dimensions=1, batch_size=1)
    insert_model(connection, dimensions=65536, batch_size=2048)
    insert_model(connection, type="generation", temperature=0.0, top_p=0.0, context_window=10, max_output_tokens=10)
    insert_model(connection, type="generation", temperature=2.0, top_p=1.0)


def test_names_are_unique(connection: Connection) -> None:
    insert_model(connection, name="same")
    refused(connection, "uq_llm_models_name", name="same")


def test_one_default_per_type(connection: Connection) -> None:
    insert_model(connection, is_default=True)
    insert_model(connection, type="generation", is_default=True)  # another type: fine
    insert_model(connection, is_default=False)
    refused(connection, "uq_llm_models_one_default_per_type", is_default=True)


def test_a_second_writer_cannot_make_a_second_default(engine: Engine) -> None:
    with engine.begin() as first:
        insert_model(first, name="a", is_default=True)
        insert_model(first, name="b")
    with engine.connect() as second:
        with pytest.raises(IntegrityError, match="uq_llm_models_one_default_per_type"):
            second.execute(text("UPDATE llm_models SET is_default = true WHERE name = 'b'"))


def test_deactivating_a_default_is_refused(connection: Connection) -> None:
    insert_model(connection, name="d", is_default=True)
    with pytest.raises(IntegrityError, match="ck_llm_models_default_is_active"):
        connection.execute(text("UPDATE llm_models SET is_active = false WHERE name = 'd'"))


def test_id_and_timestamps_have_defaults_and_updated_at_moves(engine: Engine) -> None:
    with engine.begin() as connection:
        insert_model(connection, name="t")
    with engine.begin() as connection:
        before = connection.execute(text("SELECT id, created_at, updated_at FROM llm_models")).one()
    with engine.begin() as connection:
        connection.execute(text("UPDATE llm_models SET description = 'x'"))
    with engine.begin() as connection:
        after = connection.execute(text("SELECT id, created_at, updated_at FROM llm_models")).one()
    assert after.id == before.id and after.created_at == before.created_at
    assert after.updated_at > before.updated_at


def test_deleting_a_model_a_kb_uses_is_refused(connection: Connection) -> None:
    embedding = insert_model(connection)
    generation = insert_model(connection, type="generation")
    insert_knowledge_base(connection, "kb-e", embedding_model_id=embedding)
    insert_knowledge_base(connection, "kb-g", generation_model_id=generation)
    for model_id, fk in ((embedding, "fk_knowledge_bases_embedding_model_id"), (generation, "fk_knowledge_bases_generation_model_id")):
        with pytest.raises(IntegrityError, match=fk):
            with connection.begin_nested():
                connection.execute(text("DELETE FROM llm_models WHERE id = :id"), {"id": model_id})
    unused = insert_model(connection)
    connection.execute(text("DELETE FROM llm_models WHERE id = :id"), {"id": unused})


def test_a_kb_cannot_reference_a_missing_model(connection: Connection) -> None:
    with pytest.raises(IntegrityError, match="fk_knowledge_bases_embedding_model_id"):
        insert_knowledge_base(connection, "kb", embedding_model_id="00000000-0000-0000-0000-000000000000")


def _audit_row(connection: Connection, **columns: Any) -> None:
    row = {"run_id": "r1", "event_type": "MODEL_CREATED", "model_name": "m", "actor": "tester", **columns}
    connection.execute(
        text(
            "INSERT INTO registry_audit_events (run_id, event_type, model_name, actor, details) "
            "VALUES (:run_id, :event_type, :model_name, :actor, CAST(:details AS jsonb))"
        ),
        {"details": "{}", **row},
    )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE registry_audit_events SET actor = 'someone else'",
        "DELETE FROM registry_audit_events",
        "TRUNCATE registry_audit_events",
    ],
)
def test_the_audit_table_is_append_only(engine: Engine, statement: str) -> None:
    with engine.begin() as connection:
        _audit_row(connection)
    with engine.connect() as connection:
        with pytest.raises(DBAPIError, match="append-only"):
            connection.execute(text(statement))
    with engine.connect() as connection:
        assert count_rows(connection, "registry_audit_events") == 1
        assert connection.execute(text("SELECT actor FROM registry_audit_events")).scalar_one() == "tester"


def test_audit_event_type_and_details_are_checked(connection: Connection) -> None:
    with pytest.raises(IntegrityError, match="ck_registry_audit_events_event_type"):
        with connection.begin_nested():
            _audit_row(connection, event_type="MODEL_RENAMED")
    with pytest.raises(IntegrityError, match="ck_registry_audit_events_details_object"):
        with connection.begin_nested():
            _audit_row(connection, details="[1, 2]")
    _audit_row(connection, event_type="MODEL_DELETED", details='{"kbs": []}')


def test_audit_rows_outlive_their_model(connection: Connection) -> None:
    model_id = insert_model(connection)
    _audit_row(connection, model_name="gone")
    connection.execute(
        text(
            "INSERT INTO registry_audit_events (run_id, event_type, model_name, model_id, actor) "
            "VALUES ('r2', 'MODEL_DELETED', 'gone', :id, 'tester')"
        ),
        {"id": model_id},
    )
    connection.execute(text("DELETE FROM llm_models WHERE id = :id"), {"id": model_id})
    assert count_rows(connection, "registry_audit_events") == 2


def test_the_metadata_describes_the_migrated_schema(connection: Connection) -> None:
    """reconciler.tables and the migrations must not drift apart."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    differences = [
        difference
        for difference in compare_metadata(context, metadata)
        # the mark migration 0001 leaves on a knowledge_bases table it created itself
        if difference[0] != "remove_table_comment"
    ]
    assert differences == []


def test_upgrade_creates_everything_then_is_a_no_op(unmigrated_database_url: str) -> None:
    engine = db.create_engine(unmigrated_database_url)
    try:
        with engine.connect() as connection:
            assert db.current_revision(connection) is None
            first = db.upgrade(connection)
            assert (first.before, first.after, first.changed) == (None, db.head_revision(), True)
            second = db.upgrade(connection)
            assert (second.before, second.after, second.changed) == (db.head_revision(), db.head_revision(), False)
            db.require_schema_at_head(connection)
            tables = set(
                connection.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
                ).scalars()
            )
            assert {"llm_models", "knowledge_bases", "registry_audit_events", VERSION_TABLE} <= tables
            assert "alembic_version" not in tables  # leaves the KB application's Alembic alone
            assert connection.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'pgcrypto'")).scalar() == 1
    finally:
        engine.dispose()


def test_an_existing_knowledge_bases_table_is_kept(unmigrated_database_url: str) -> None:
    engine = db.create_engine(unmigrated_database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "CREATE TABLE knowledge_bases (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text NOT NULL,"
                    " embedding_model_id uuid, generation_model_id uuid, owner text NOT NULL DEFAULT 'kb-app')"
                )
            )
            connection.execute(text("INSERT INTO knowledge_bases (name) VALUES ('existing')"))
        with engine.connect() as connection:
            db.upgrade(connection)
            columns = set(
                connection.execute(
                    text("SELECT column_name FROM information_schema.columns WHERE table_name = 'knowledge_bases'")
                ).scalars()
            )
            assert "owner" in columns
            assert count_rows(connection, "knowledge_bases") == 1
            # and downgrade leaves the KB application's table in place
            from alembic import command

            connection.rollback()
            with connection.begin():
                command.downgrade(db.alembic_config(connection), "base")
            assert connection.execute(text("SELECT to_regclass('knowledge_bases') IS NOT NULL")).scalar()
            assert not connection.execute(text("SELECT to_regclass('llm_models') IS NOT NULL")).scalar()
    finally:
        engine.dispose()


def test_downgrade_then_upgrade_round_trips(unmigrated_database_url: str) -> None:
    from alembic import command

    engine = db.create_engine(unmigrated_database_url)
    try:
        with engine.connect() as connection:
            db.upgrade(connection)
            with connection.begin():
                command.downgrade(db.alembic_config(connection), "base")
            assert db.current_revision(connection) is None
            assert not connection.execute(text("SELECT to_regclass('knowledge_bases') IS NOT NULL")).scalar()
            assert db.upgrade(connection).after == db.head_revision()
    finally:
        engine.dispose()


def test_require_schema_at_head_names_db_upgrade(unmigrated_database_url: str, engine: Engine) -> None:
    from reconciler.errors import RegistryError

    raw = db.create_engine(unmigrated_database_url)
    try:
        with raw.connect() as connection:
            with pytest.raises(RegistryError, match="llm-registry db upgrade"):
                db.require_schema_at_head(connection)
    finally:
        raw.dispose()
    with engine.begin() as connection:
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '0000'"))
    with engine.connect() as connection:
        with pytest.raises(RegistryError, match=r"revision 0000.*llm-registry db upgrade"):
            db.require_schema_at_head(connection)


def test_the_schema_head_constant_is_alembics_head() -> None:
    """db.SCHEMA_HEAD spares every command an Alembic import; it must follow the migrations."""
    from reconciler import db

    assert db.SCHEMA_HEAD == db.head_revision()


def test_stored_revision_reads_the_version_table_without_failing_a_transaction(database_url: str, unmigrated_database_url: str) -> None:
    from reconciler import db

    for url, expected in ((database_url, db.SCHEMA_HEAD), (unmigrated_database_url, None)):
        engine = db.create_engine(url)
        try:
            with engine.connect() as connection, connection.begin():
                assert db.stored_revision(connection) == expected
                assert connection.exec_driver_sql("SELECT 1").scalar() == 1  # the transaction is still usable
        finally:
            engine.dispose()


def test_0002_renames_to_the_story_columns_keeping_rows_keys_and_kb_links(unmigrated_database_url: str) -> None:
    """A registry made by revision 0001 keeps every row, id, key and KB link under the story's names."""
    passphrase = "old-registry-passphrase"
    engine = db.create_engine(unmigrated_database_url)
    try:
        with engine.connect() as connection:
            db.upgrade(connection, "0001")
            with connection.begin():
                model_id = connection.execute(
                    text(
                        "INSERT INTO llm_models (name, type, provider, model_id, context_window, "
                        "api_key_encrypted, api_key_fingerprint, managed_by) VALUES ('gpt', 'generation', "
                        "'openai', 'gpt-4o-mini', 128000, pgp_sym_encrypt('sk-old-key', :p), 'fp', 'llm-registry') "
                        "RETURNING id"
                    ),
                    {"p": passphrase},
                ).scalar_one()
                connection.execute(
                    text("INSERT INTO knowledge_bases (name, generation_model_id) VALUES ('support-kb', :id)"),
                    {"id": model_id},
                )
            assert db.upgrade(connection).after == db.SCHEMA_HEAD
            row = connection.execute(
                text(
                    "SELECT m.id, m.model_type, m.api_key_fingerprint, pgp_sym_decrypt(m.api_key, :p) AS key, "
                    "m.applied_fingerprint, k.name AS kb FROM llm_models m "
                    "JOIN knowledge_bases k ON k.generation_model_id = m.id"
                ),
                {"p": passphrase},
            ).one()
            assert (row.id, row.model_type, row.api_key_fingerprint, row.key, row.applied_fingerprint, row.kb) == (
                model_id, "generation", "fp", "sk-old-key", None, "support-kb",
            )
            # the renamed CHECK still guards the renamed column
            assert "ck_llm_models_model_type" in refused(connection, type="rerank")
    finally:
        engine.dispose()


def test_the_passphrase_check_table_holds_one_row(connection: Connection) -> None:
    """Migration 0004: llm_registry_encryption, one row (id = 1) with a ciphertext."""
    connection.execute(text("INSERT INTO llm_registry_encryption (passphrase_check) VALUES ('\\x01')"))
    with pytest.raises(IntegrityError, match="pk_llm_registry_encryption"):
        with connection.begin_nested():
            connection.execute(text("INSERT INTO llm_registry_encryption (passphrase_check) VALUES ('\\x02')"))
    with pytest.raises(IntegrityError, match="ck_llm_registry_encryption_single_row"):
        with connection.begin_nested():
            connection.execute(text("INSERT INTO llm_registry_encryption (id, passphrase_check) VALUES (2, '\\x02')"))
    assert count_rows(connection, "llm_registry_encryption") == 1


def test_audit_events_take_the_time_they_are_written(connection: Connection) -> None:
    """clock_timestamp(), not the transaction's start: two inserts in one transaction differ."""
    insert = text(
        "INSERT INTO registry_audit_events (run_id, event_type, model_name, actor) "
        "VALUES ('r', 'ENCRYPTION_KEY_ROTATED', 'm', 'a') RETURNING occurred_at"
    )
    with connection.begin():
        first = connection.execute(insert).scalar_one()
        connection.execute(text("SELECT pg_sleep(0.01)"))
        second = connection.execute(insert).scalar_one()
    assert second > first
