"""Initial schema: llm_models, knowledge_bases (if missing), registry_audit_events.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Written as plain SQL, not generated from `reconciler.tables`: a migration is history
and must not change when the metadata does. tests/integration/test_schema.py checks
that the metadata still describes what the migrations build.
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Marks a knowledge_bases table this migration created, so that downgrade drops only
# that one and never the KB application's own table.
KB_TABLE_MARK = "created by llm-registry migration 0001"

# Marks an llm_models table this migration adopted (one the story's admin page made):
# downgrade refuses to drop it, since its rows were never ours to remove.
ADOPTED_TABLE_MARK = "adopted by llm-registry migration 0001"

# pgp_sym_encrypt / pgp_sym_decrypt; gen_random_uuid is core from PostgreSQL 13.
# pgcrypto is a trusted extension, so a database owner may create it.
EXTENSION = "CREATE EXTENSION IF NOT EXISTS pgcrypto"

# The columns of llm_models at this revision: (name, type, NOT NULL, default).
COLUMNS: list[tuple[str, str, bool, str | None]] = [
    ("id", "uuid", True, "gen_random_uuid()"),
    ("name", "text", True, None),
    ("type", "text", True, None),
    ("provider", "text", True, None),
    ("model_id", "text", True, None),
    ("api_endpoint", "text", False, None),
    ("api_version", "text", False, None),
    ("description", "text", True, "''"),
    ("dimensions", "integer", False, None),
    ("max_tokens", "integer", False, None),
    ("normalize", "boolean", False, None),
    ("distance_metric", "text", False, None),
    ("batch_size", "integer", False, None),
    ("context_window", "integer", False, None),
    ("max_output_tokens", "integer", False, None),
    ("temperature", "double precision", False, None),
    ("top_p", "double precision", False, None),
    ("top_k", "integer", False, None),
    ("api_key_encrypted", "bytea", False, None),
    ("api_key_fingerprint", "text", False, None),
    ("is_active", "boolean", True, "true"),
    ("is_default", "boolean", True, "false"),
    ("managed_by", "text", False, None),
    ("created_at", "timestamptz", True, "now()"),
    ("updated_at", "timestamptz", True, "now()"),
]

# CHECK constraints of llm_models: (name, condition).
CHECKS: list[tuple[str, str]] = [
    ("ck_llm_models_name_length", "char_length(name) BETWEEN 1 AND 255"),
    ("ck_llm_models_model_id_length", "char_length(model_id) BETWEEN 1 AND 255"),
    ("ck_llm_models_type", "type IN ('embedding', 'generation', 'ner')"),
    ("ck_llm_models_provider", "provider IN ('ollama', 'openai', 'azure', 'gemini', 'anthropic', 'cohere')"),
    ("ck_llm_models_distance_metric", "distance_metric IS NULL OR distance_metric IN ('cosine', 'dot_product', 'euclidean')"),
    ("ck_llm_models_dimensions_range", "dimensions IS NULL OR dimensions BETWEEN 1 AND 65536"),
    ("ck_llm_models_max_tokens_positive", "max_tokens IS NULL OR max_tokens > 0"),
    ("ck_llm_models_batch_size_range", "batch_size IS NULL OR batch_size BETWEEN 1 AND 2048"),
    ("ck_llm_models_context_window_positive", "context_window IS NULL OR context_window > 0"),
    ("ck_llm_models_max_output_tokens_positive", "max_output_tokens IS NULL OR max_output_tokens > 0"),
    (
        "ck_llm_models_max_output_tokens_fits",
        "max_output_tokens IS NULL OR context_window IS NULL OR max_output_tokens <= context_window",
    ),
    # NaN compares greater than every number in PostgreSQL, so these refuse 'NaN' too.
    ("ck_llm_models_temperature_range", "temperature IS NULL OR (temperature >= 0 AND temperature <= 2)"),
    ("ck_llm_models_top_p_range", "top_p IS NULL OR (top_p >= 0 AND top_p <= 1)"),
    ("ck_llm_models_top_k_positive", "top_k IS NULL OR top_k > 0"),
    ("ck_llm_models_embedding_has_dimensions", "type <> 'embedding' OR dimensions IS NOT NULL"),
    ("ck_llm_models_generation_has_context_window", "type <> 'generation' OR context_window IS NOT NULL"),
    ("ck_llm_models_no_anthropic_embedding", "NOT (provider = 'anthropic' AND type = 'embedding')"),
    ("ck_llm_models_default_is_active", "NOT is_default OR is_active"),
    # Ciphertext and fingerprint go together, except on a row llm-registry does not
    # manage yet whose key an earlier application stored: its fingerprint is filled in
    # by the first `db upgrade` that has the passphrase.
    (
        "ck_llm_models_api_key_pair",
        "(api_key_encrypted IS NULL) = (api_key_fingerprint IS NULL)"
        " OR (managed_by IS NULL AND api_key_fingerprint IS NULL)",
    ),
]


def _column_sql(name: str, sql_type: str, not_null: bool, default: str | None) -> str:
    return f"{name} {sql_type}" + (" NOT NULL" if not_null else "") + (f" DEFAULT {default}" if default else "")


CREATE_LLM_MODELS = (
    "CREATE TABLE llm_models (\n    "
    + ",\n    ".join(_column_sql(*column) for column in COLUMNS)
    + ",\n    CONSTRAINT pk_llm_models PRIMARY KEY (id),\n    CONSTRAINT uq_llm_models_name UNIQUE (name)\n)"
)

UPGRADE = [
    # one statement, so that an adopted table's rows are checked in one pass
    "ALTER TABLE llm_models "
    + ", ".join(f"ADD CONSTRAINT {name} CHECK ({condition})" for name, condition in CHECKS),
    # A partial unique index cannot be DEFERRABLE: writers clear the old default first.
    "CREATE UNIQUE INDEX uq_llm_models_one_default_per_type ON llm_models (type) WHERE is_default",
    """
    CREATE FUNCTION llm_models_touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        NEW.updated_at := now();
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE TRIGGER llm_models_touch_updated_at
        BEFORE UPDATE ON llm_models
        FOR EACH ROW EXECUTE FUNCTION llm_models_touch_updated_at()
    """,
    # The KB application owns this table in a real deployment: create it only where it
    # does not exist, and mark it (table comment) so that downgrade knows it is ours.
    f"""
    DO $$
    BEGIN
        IF to_regclass('knowledge_bases') IS NULL THEN
            CREATE TABLE knowledge_bases (
                id uuid NOT NULL DEFAULT gen_random_uuid(),
                name text NOT NULL,
                embedding_model_id uuid,
                generation_model_id uuid,
                CONSTRAINT pk_knowledge_bases PRIMARY KEY (id),
                CONSTRAINT fk_knowledge_bases_embedding_model_id FOREIGN KEY (embedding_model_id)
                    REFERENCES llm_models (id) ON DELETE RESTRICT,
                CONSTRAINT fk_knowledge_bases_generation_model_id FOREIGN KEY (generation_model_id)
                    REFERENCES llm_models (id) ON DELETE RESTRICT
            );
            -- RESTRICT checks on delete look rows up by these columns.
            CREATE INDEX ix_knowledge_bases_embedding_model_id ON knowledge_bases (embedding_model_id);
            CREATE INDEX ix_knowledge_bases_generation_model_id ON knowledge_bases (generation_model_id);
            COMMENT ON TABLE knowledge_bases IS '{KB_TABLE_MARK}';
        END IF;
    END
    $$
    """,
    """
    CREATE TABLE registry_audit_events (
        id bigserial NOT NULL,
        occurred_at timestamptz NOT NULL DEFAULT now(),
        run_id text NOT NULL,
        event_type text NOT NULL,
        model_name text NOT NULL,
        model_id uuid,
        actor text NOT NULL,
        source_revision text,
        details jsonb NOT NULL DEFAULT '{}'::jsonb,
        CONSTRAINT pk_registry_audit_events PRIMARY KEY (id),
        CONSTRAINT ck_registry_audit_events_event_type CHECK (
            event_type IN ('MODEL_CREATED', 'MODEL_UPDATED', 'MODEL_DELETED', 'MODEL_CONNECTION_TESTED')
        ),
        CONSTRAINT ck_registry_audit_events_details_object CHECK (jsonb_typeof(details) = 'object')
    )
    """,
    "CREATE INDEX ix_registry_audit_events_model_name ON registry_audit_events (model_name, id)",
    "CREATE INDEX ix_registry_audit_events_run_id ON registry_audit_events (run_id)",
    "CREATE INDEX ix_registry_audit_events_occurred_at ON registry_audit_events (occurred_at)",
    """
    CREATE FUNCTION registry_audit_events_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'registry_audit_events is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'audit records are never changed or removed';
    END
    $$
    """,
    """
    CREATE TRIGGER registry_audit_events_append_only
        BEFORE UPDATE OR DELETE ON registry_audit_events
        FOR EACH ROW EXECUTE FUNCTION registry_audit_events_refuse_change()
    """,
    # TRUNCATE bypasses row triggers; a statement trigger catches it.
    """
    CREATE TRIGGER registry_audit_events_no_truncate
        BEFORE TRUNCATE ON registry_audit_events
        FOR EACH STATEMENT EXECUTE FUNCTION registry_audit_events_refuse_change()
    """,
]

DOWNGRADE = [
    "DROP TABLE registry_audit_events",
    "DROP FUNCTION registry_audit_events_refuse_change()",
    f"""
    DO $$
    BEGIN
        IF obj_description(to_regclass('knowledge_bases'), 'pg_class') = '{KB_TABLE_MARK}' THEN
            DROP TABLE knowledge_bases;
        END IF;
    END
    $$
    """,
    "DROP TABLE llm_models",
    "DROP FUNCTION llm_models_touch_updated_at()",
    # pgcrypto stays: other code in the database may use it.
]


# The story's admin page named two columns differently; this revision's layout uses
# these names (and 0002 gives the story's back).
_STORY_NAMES = {"model_type": "type", "api_key": "api_key_encrypted"}


def _adopt_story_table() -> None:
    """Bring an llm_models table the story's admin page made to this revision's layout, in place.

    Every row, id and KB link stays. `reconciler.legacy.check_story_table` has
    verified beforehand (and refused with the offending rows listed) everything that
    could make this fail: the columns' kinds, NULLs, and the rows against each rule
    added below. Text-like columns (varchar, enum) become text, integers integer,
    real and numeric double precision (through their text form, so 0.7 stays 0.7);
    timestamp columns keep their type. The admin page's own constraints, indexes
    and enum types stay, except a constraint of the same name as one of ours.
    """
    from sqlalchemy import text

    bind = op.get_bind()
    existing = dict(
        bind.execute(
            text(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = 'llm_models'"
            )
        ).all()
    )
    for story, ours in _STORY_NAMES.items():
        if story in existing and ours not in existing:
            op.execute(f"ALTER TABLE llm_models RENAME COLUMN {story} TO {ours}")
            existing[ours] = existing.pop(story)
    alterations = []
    for name, sql_type, not_null, default in COLUMNS:
        current = existing.get(name)
        if current is None:
            alterations.append(f"ADD COLUMN {_column_sql(name, sql_type, not_null, default)}")
            continue
        if sql_type in ("text", "integer") and current != sql_type:
            alterations.append(f"ALTER COLUMN {name} TYPE {sql_type} USING {name}::{sql_type}")
        elif sql_type == "double precision" and current != sql_type:
            alterations.append(f"ALTER COLUMN {name} TYPE {sql_type} USING {name}::text::double precision")
        if default is not None:
            alterations.append(f"ALTER COLUMN {name} SET DEFAULT {default}")
        if not_null:
            alterations.append(f"ALTER COLUMN {name} SET NOT NULL")
    for name, _condition in CHECKS:
        alterations.append(f"DROP CONSTRAINT IF EXISTS {name}")
    op.execute("ALTER TABLE llm_models " + ", ".join(alterations))

    # Our constraint names, so that errors read the same on every registry.
    primary_key = bind.execute(
        text("SELECT conname FROM pg_constraint WHERE conrelid = 'llm_models'::regclass AND contype = 'p'")
    ).scalar_one()
    if primary_key != "pk_llm_models":
        op.execute(f'ALTER TABLE llm_models RENAME CONSTRAINT "{primary_key}" TO pk_llm_models')
    unique_name = bind.execute(
        text(
            "SELECT c.conname FROM pg_constraint c JOIN pg_attribute a "
            "ON a.attrelid = c.conrelid AND a.attname = 'name' "
            "WHERE c.conrelid = 'llm_models'::regclass AND c.contype = 'u' AND c.conkey = ARRAY[a.attnum]"
        )
    ).scalar()
    if unique_name is None:
        # (a unique *index* on name, as SQLAlchemy's unique=True, index=True makes, stays beside it)
        op.execute("ALTER TABLE llm_models ADD CONSTRAINT uq_llm_models_name UNIQUE (name)")
    elif unique_name != "uq_llm_models_name":
        op.execute(f'ALTER TABLE llm_models RENAME CONSTRAINT "{unique_name}" TO uq_llm_models_name')
    op.execute(f"COMMENT ON TABLE llm_models IS '{ADOPTED_TABLE_MARK}'")


def upgrade() -> None:
    """Create the registry schema, or adopt the llm_models table of the story's admin page."""
    from sqlalchemy import text

    op.execute(EXTENSION)
    if op.get_bind().execute(text("SELECT to_regclass('llm_models')")).scalar() is None:
        op.execute(CREATE_LLM_MODELS)
    else:
        _adopt_story_table()
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    """Drop the registry schema (a KB table that was there before stays).

    An adopted llm_models table is not dropped: downgrading it is refused.
    """
    from sqlalchemy import text

    mark = op.get_bind().execute(text("SELECT obj_description(to_regclass('llm_models'), 'pg_class')")).scalar()
    if mark == ADOPTED_TABLE_MARK:
        raise RuntimeError(
            "llm_models was adopted from the admin page that created it: downgrading below 0001 "
            "would drop its rows, which were never llm-registry's to remove"
        )
    for statement in DOWNGRADE:
        op.execute(statement)
