"""`db upgrade` over the database the story's admin page left: adopt in place, or refuse with nothing changed."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any, Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from reconciler import db, legacy
from reconciler.errors import RegistryError
from reconciler.secrets import key_fingerprint
from reconciler.state import read_state
from tests.admin_page import (
    ADMIN_PAGE_KEYS,
    ADMIN_PAGE_PASSPHRASE,
    create_admin_page_schema,
    insert_admin_page_model,
    kb_application_view,
    populate_admin_page,
    story_rows,
)
from tests.dbutil import insert_model

pytestmark = pytest.mark.db

ENDPOINT = "http://127.0.0.1:11434"


@pytest.fixture
def admin_engine(unmigrated_database_url: str) -> Iterator[Engine]:
    """An engine on a database with nothing in it yet (the test builds the admin page's schema)."""
    engine = db.create_engine(unmigrated_database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def build(engine: Engine, *, enums: bool = False) -> dict[str, str]:
    with engine.begin() as connection:
        create_admin_page_schema(connection, enums=enums)
        return populate_admin_page(connection, ENDPOINT)


def upgrade(engine: Engine, passphrase: str | None = None) -> db.UpgradeResult:
    with engine.connect() as connection:
        return db.upgrade(connection, passphrase=passphrase)


@pytest.mark.parametrize("enums", [False, True], ids=["varchar-columns", "enum-columns"])
def test_upgrade_takes_the_table_over_keeping_every_row_id_key_and_kb_link(admin_engine: Engine, enums: bool) -> None:
    ids = build(admin_engine, enums=enums)
    with admin_engine.begin() as connection:
        # a view of the KB application over columns the takeover renames back and forth but does not convert
        connection.execute(text("CREATE VIEW model_keys AS SELECT id, api_key, dimensions FROM llm_models"))
    with admin_engine.connect() as connection:
        rows_before, kbs_before = story_rows(connection), kb_application_view(connection)
        keys_before = connection.execute(text("SELECT * FROM model_keys ORDER BY id")).all()

    result = upgrade(admin_engine)

    assert (result.before, result.after, result.adopted) == (None, db.head_revision(), 5)
    assert result.fingerprints_pending == ("claude-sonnet", "gpt-4o-mini", "openai-small")
    with admin_engine.connect() as connection:
        assert story_rows(connection) == rows_before
        assert kb_application_view(connection) == kbs_before
        assert {row["name"]: str(row["id"]) for row in story_rows(connection)} == ids
        assert connection.execute(text("SELECT * FROM model_keys ORDER BY id")).all() == keys_before
        managed = connection.execute(text("SELECT DISTINCT managed_by FROM llm_models")).scalars().all()
        assert managed == [None]  # unmanaged until a registry declares them
        db.require_schema_at_head(connection)


def test_the_adopted_table_enforces_the_registry_rules_and_takes_registry_rows(admin_engine: Engine) -> None:
    build(admin_engine, enums=True)
    upgrade(admin_engine)
    with admin_engine.connect() as connection:
        # the admin page's id had no server default, nor is_active/is_default: ours now do
        insert_model(connection, name="new-embedding", is_default=False)
        for columns, constraint in (
            ({"is_default": True}, "uq_llm_models_one_default_per_type"),  # nomic-embed is the default
            ({"provider": "anthropic"}, "ck_llm_models_no_anthropic_embedding"),
            # (the admin page's own unique index on name answers first)
            ({"name": "nomic-embed"}, "duplicate key value violates unique constraint"),
            ({"dimensions": 0}, "ck_llm_models_dimensions_range"),
        ):
            with pytest.raises(IntegrityError, match=constraint), connection.begin_nested():
                insert_model(connection, **columns)
        constraint_names = set(
            connection.execute(
                text("SELECT conname FROM pg_constraint WHERE conrelid = 'llm_models'::regclass")
            ).scalars()
        )
        assert {"pk_llm_models", "uq_llm_models_name"} <= constraint_names


def _difference_table(difference: Any) -> str:
    """The table an Alembic compare_metadata difference is about."""
    if isinstance(difference, list):  # column modifications come as a list of tuples
        return str(difference[0][2])
    kind, subject = difference[0], difference[1]
    if kind in ("remove_column", "add_column"):
        return str(difference[2])
    return str(getattr(subject, "table", subject).name)


def _difference_label(difference: Any) -> tuple[str, str]:
    if isinstance(difference, list):
        return (difference[0][0], f"{difference[0][2]}.{difference[0][3]}")
    kind, subject = difference[0], difference[1]
    return (kind, str(difference[3].name if kind in ("remove_column", "add_column") else getattr(subject, "name", None)))


def test_the_adopted_llm_models_is_the_registry_schema_plus_the_admin_pages_own_indexes(admin_engine: Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from reconciler.tables import VERSION_TABLE, metadata

    build(admin_engine, enums=True)
    upgrade(admin_engine)
    with admin_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        differences = compare_metadata(context, metadata)
    by_table: dict[str, set[tuple[str, str]]] = {}
    for difference in differences:
        by_table.setdefault(_difference_table(difference), set()).add(_difference_label(difference))
    assert by_table.pop("llm_models") == {
        ("remove_index", "ix_llm_models_model_type"),
        ("remove_index", "ix_llm_models_name"),
        ("remove_table_comment", "llm_models"),  # the adoption mark
    }
    # knowledge_bases is the KB application's, left exactly as it made it
    assert set(by_table) == {"knowledge_bases"}
    assert ("remove_column", "description") in by_table["knowledge_bases"]


BAD_ROWS: list[tuple[dict[str, Any], str]] = [
    ({"name": "second-default", "is_default": True}, '"nomic-embed", "second-default": 2 default embedding models: at most one default per type'),
    ({"name": "sleepy", "is_active": False, "is_default": True, "model_type": "ner"}, '"sleepy": a default model must be active (is_active = false, is_default = true)'),
    ({"name": "claude-embed", "provider": "anthropic"}, '"claude-embed": anthropic serves no embedding models (model_type = "embedding", provider = "anthropic")'),
    ({"name": "huge", "dimensions": 70000}, '"huge": dimensions must be between 1 and 65536 (dimensions = 70000)'),
    ({"name": "no-dims", "dimensions": None}, '"no-dims": an embedding model needs dimensions (model_type = "embedding", dimensions = NULL)'),
    ({"name": "hot", "model_type": "generation", "context_window": 100, "temperature": 2.5}, '"hot": temperature must be between 0.0 and 2.0 (temperature = 2.5)'),
    ({"name": "rerank", "model_type": "rerank"}, '"rerank": model_type must be embedding, generation or ner (model_type = "rerank")'),
]


def dump(url: str) -> str:
    """pg_dump of the whole database (schema and data): what "nothing changed" is compared on."""
    pg_dump = shutil.which("pg_dump") or str(db.find_postgres_bindir() / "pg_dump")
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    args = [pg_dump, "--no-owner", "--dbname", parsed.set(drivername="postgresql").render_as_string(hide_password=False)]
    output = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120).stdout
    # pg_dump 15.14+ brackets the dump with a random \restrict key: not part of the database
    return "\n".join(line for line in output.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))


def test_rows_that_break_the_rules_are_listed_by_name_and_nothing_changes(admin_engine: Engine, unmigrated_database_url: str) -> None:
    build(admin_engine)
    with admin_engine.begin() as connection:
        base = {"model_type": "embedding", "provider": "ollama", "model_id": "m", "api_endpoint": ENDPOINT, "dimensions": 8}
        for columns, _expected in BAD_ROWS:
            insert_admin_page_model(connection, **{**base, **columns})
        # a name that is data: escaped in the message, not interpreted by the terminal
        insert_admin_page_model(connection, **{**base, "name": "evil\x1b[31m", "batch_size": 0})
    before = dump(unmigrated_database_url)

    with pytest.raises(legacy.StoryTableRefused) as refused:
        upgrade(admin_engine, passphrase=ADMIN_PAGE_PASSPHRASE)

    message = refused.value.message
    for _columns, expected in BAD_ROWS:
        assert expected in message, message
    assert '"evil\\u001b[31m": batch_size must be between 1 and 2048 (batch_size = 0)' in message
    assert "\x1b" not in message
    assert "nothing was changed" in message and "llm-registry db upgrade" in message
    assert dump(unmigrated_database_url) == before
    with admin_engine.connect() as connection:
        assert db.stored_revision(connection) is None


def test_a_column_that_cannot_be_converted_is_named_and_nothing_changes(admin_engine: Engine, unmigrated_database_url: str) -> None:
    build(admin_engine)
    with admin_engine.begin() as connection:
        connection.execute(text("ALTER TABLE llm_models ALTER COLUMN dimensions TYPE text"))
        connection.execute(text("ALTER TABLE llm_models ADD COLUMN owner_id uuid NOT NULL DEFAULT gen_random_uuid()"))
        connection.execute(text("ALTER TABLE llm_models ALTER COLUMN owner_id DROP DEFAULT"))
        connection.execute(text("CREATE VIEW kb_models AS SELECT name, model_type, provider, api_key FROM llm_models"))
    before = dump(unmigrated_database_url)
    with pytest.raises(legacy.StoryTableRefused) as refused:
        upgrade(admin_engine)
    assert "column dimensions is text, which llm-registry cannot convert to INTEGER in place" in refused.value.message
    assert "column owner_id (uuid) is NOT NULL without a default" in refused.value.message
    assert 'view "kb_models" reads model_type, name, provider, which the takeover converts' in refused.value.message
    assert dump(unmigrated_database_url) == before


def test_fingerprints_are_filled_on_the_first_run_with_the_passphrase(admin_engine: Engine) -> None:
    build(admin_engine)
    assert upgrade(admin_engine).fingerprints_pending == ("claude-sonnet", "gpt-4o-mini", "openai-small")
    with admin_engine.connect() as connection:
        stamps = dict(connection.execute(text("SELECT name, updated_at FROM llm_models")).all())
        kbs_before = kb_application_view(connection)

    again = upgrade(admin_engine, passphrase=ADMIN_PAGE_PASSPHRASE)

    assert not again.changed
    assert again.fingerprints_filled == ("claude-sonnet", "gpt-4o-mini", "openai-small")
    assert again.fingerprints_pending == ()
    with admin_engine.connect() as connection:
        state = read_state(connection).by_name()
        for name, key in ADMIN_PAGE_KEYS.items():
            assert state[name].record["api_key"] == key_fingerprint(key, ADMIN_PAGE_PASSPHRASE)
        assert state["nomic-embed"].record["api_key"] is None
        # bookkeeping, not a change of the model: updated_at stays, and the trigger is back on
        assert dict(connection.execute(text("SELECT name, updated_at FROM llm_models")).all()) == stamps
        assert kb_application_view(connection) == kbs_before
        connection.execute(text("UPDATE llm_models SET is_active = is_active WHERE name = 'gliner'"))
        moved = connection.execute(text("SELECT updated_at FROM llm_models WHERE name = 'gliner'")).scalar_one()
        assert moved > stamps["gliner"]
    assert upgrade(admin_engine, passphrase=ADMIN_PAGE_PASSPHRASE).fingerprints_filled == ()


def test_a_wrong_passphrase_is_an_error_naming_the_models_and_nothing_changes(admin_engine: Engine, unmigrated_database_url: str) -> None:
    build(admin_engine)
    before = dump(unmigrated_database_url)
    with pytest.raises(RegistryError) as wrong:
        upgrade(admin_engine, passphrase="not-the-admin-page-passphrase")
    assert "claude-sonnet" in wrong.value.message and "gpt-4o-mini" in wrong.value.message
    assert "not-the-admin-page-passphrase" not in wrong.value.message
    assert all(key not in wrong.value.message for key in ADMIN_PAGE_KEYS.values())
    assert dump(unmigrated_database_url) == before


def test_a_database_made_by_llm_registry_is_not_taken_for_the_admin_pages(database_url: str) -> None:
    engine = db.create_engine(database_url)
    try:
        with engine.connect() as connection:
            assert db.upgrade(connection).adopted is None
    finally:
        engine.dispose()


def test_an_adopted_table_is_never_dropped_by_a_downgrade(admin_engine: Engine) -> None:
    from alembic import command

    build(admin_engine)
    upgrade(admin_engine, passphrase=ADMIN_PAGE_PASSPHRASE)
    with admin_engine.connect() as connection:
        with pytest.raises(RuntimeError, match="adopted"), connection.begin():
            command.downgrade(db.alembic_config(connection), "base")
        assert connection.execute(text("SELECT count(*) FROM llm_models")).scalar_one() == 5


def test_keys_without_fingerprint_need_the_head_schema_only(connection: Connection) -> None:
    insert_model(connection, name="a", api_key="sk-x")
    assert legacy.keys_without_fingerprint(connection) == ()


def test_0003_lets_an_unmanaged_key_wait_for_its_fingerprint_on_databases_made_before(admin_engine: Engine) -> None:
    from alembic import command

    with admin_engine.connect() as connection:
        with connection.begin():
            command.upgrade(db.alembic_config(connection), "0002")
            # what migration 0001 wrote before it knew the admin page's keys
            connection.execute(text(
                "ALTER TABLE llm_models DROP CONSTRAINT ck_llm_models_api_key_pair, ADD CONSTRAINT "
                "ck_llm_models_api_key_pair CHECK ((api_key IS NULL) = (api_key_fingerprint IS NULL))"
            ))  # fmt: skip
        db.upgrade(connection)
        insert_model(connection, name="waiting", managed_by=None, ciphertext=b"\x01")
        with pytest.raises(IntegrityError, match="ck_llm_models_api_key_pair"), connection.begin_nested():
            insert_model(connection, name="managed", ciphertext=b"\x01")


def test_real_numeric_and_bigint_columns_are_converted_keeping_their_values(admin_engine: Engine) -> None:
    build(admin_engine)
    with admin_engine.begin() as connection:
        connection.execute(text(
            "ALTER TABLE llm_models ALTER COLUMN temperature TYPE real, ALTER COLUMN top_p TYPE numeric(3, 2), "
            "ALTER COLUMN dimensions TYPE bigint, ALTER COLUMN max_tokens TYPE smallint"
        ))  # fmt: skip
    upgrade(admin_engine)
    with admin_engine.connect() as connection:
        row = connection.execute(
            text("SELECT temperature, top_p, pg_typeof(temperature)::text, pg_typeof(dimensions)::text FROM llm_models WHERE name = 'gpt-4o-mini'")
        ).one()
        # real 0.7 is 0.699999988 as a double; through its text form it stays 0.7
        assert tuple(row) == (0.7, 1.0, "double precision", "integer")
        assert connection.execute(text("SELECT dimensions, max_tokens FROM llm_models WHERE name = 'openai-small'")).one() == (1536, 8191)


def test_a_bigint_value_that_does_not_fit_an_integer_is_refused(admin_engine: Engine) -> None:
    build(admin_engine)
    with admin_engine.begin() as connection:
        connection.execute(text("ALTER TABLE llm_models ALTER COLUMN max_tokens TYPE bigint"))
        connection.execute(text("UPDATE llm_models SET max_tokens = 3000000000 WHERE name = 'gliner'"))
    with pytest.raises(legacy.StoryTableRefused) as refused:
        upgrade(admin_engine)
    assert '"gliner": max_tokens = 3000000000 does not fit an integer' in refused.value.message
