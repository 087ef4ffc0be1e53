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

UPGRADE = [
    # pgp_sym_encrypt / pgp_sym_decrypt; gen_random_uuid is core from PostgreSQL 13.
    # pgcrypto is a trusted extension, so a database owner may create it.
    "CREATE EXTENSION IF NOT EXISTS pgcrypto",
    """
    CREATE TABLE llm_models (
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        name text NOT NULL,
        type text NOT NULL,
        provider text NOT NULL,
        model_id text NOT NULL,
        api_endpoint text,
        api_version text,
        description text NOT NULL DEFAULT '',
        dimensions integer,
        max_tokens integer,
        normalize boolean,
        distance_metric text,
        batch_size integer,
        context_window integer,
        max_output_tokens integer,
        temperature double precision,
        top_p double precision,
        top_k integer,
        api_key_encrypted bytea,
        api_key_fingerprint text,
        is_active boolean NOT NULL DEFAULT true,
        is_default boolean NOT NULL DEFAULT false,
        managed_by text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_llm_models PRIMARY KEY (id),
        CONSTRAINT uq_llm_models_name UNIQUE (name),
        CONSTRAINT ck_llm_models_name_length CHECK (char_length(name) BETWEEN 1 AND 255),
        CONSTRAINT ck_llm_models_model_id_length CHECK (char_length(model_id) BETWEEN 1 AND 255),
        CONSTRAINT ck_llm_models_type CHECK (type IN ('embedding', 'generation', 'ner')),
        CONSTRAINT ck_llm_models_provider
            CHECK (provider IN ('ollama', 'openai', 'azure', 'gemini', 'anthropic', 'cohere')),
        CONSTRAINT ck_llm_models_distance_metric
            CHECK (distance_metric IS NULL OR distance_metric IN ('cosine', 'dot_product', 'euclidean')),
        CONSTRAINT ck_llm_models_dimensions_range CHECK (dimensions IS NULL OR dimensions BETWEEN 1 AND 65536),
        CONSTRAINT ck_llm_models_max_tokens_positive CHECK (max_tokens IS NULL OR max_tokens > 0),
        CONSTRAINT ck_llm_models_batch_size_range CHECK (batch_size IS NULL OR batch_size BETWEEN 1 AND 2048),
        CONSTRAINT ck_llm_models_context_window_positive CHECK (context_window IS NULL OR context_window > 0),
        CONSTRAINT ck_llm_models_max_output_tokens_positive
            CHECK (max_output_tokens IS NULL OR max_output_tokens > 0),
        CONSTRAINT ck_llm_models_max_output_tokens_fits
            CHECK (max_output_tokens IS NULL OR context_window IS NULL OR max_output_tokens <= context_window),
        -- NaN compares greater than every number in PostgreSQL, so these refuse 'NaN' too.
        CONSTRAINT ck_llm_models_temperature_range
            CHECK (temperature IS NULL OR (temperature >= 0 AND temperature <= 2)),
        CONSTRAINT ck_llm_models_top_p_range CHECK (top_p IS NULL OR (top_p >= 0 AND top_p <= 1)),
        CONSTRAINT ck_llm_models_top_k_positive CHECK (top_k IS NULL OR top_k > 0),
        CONSTRAINT ck_llm_models_embedding_has_dimensions CHECK (type <> 'embedding' OR dimensions IS NOT NULL),
        CONSTRAINT ck_llm_models_generation_has_context_window
            CHECK (type <> 'generation' OR context_window IS NOT NULL),
        CONSTRAINT ck_llm_models_no_anthropic_embedding CHECK (NOT (provider = 'anthropic' AND type = 'embedding')),
        CONSTRAINT ck_llm_models_default_is_active CHECK (NOT is_default OR is_active),
        CONSTRAINT ck_llm_models_api_key_pair
            CHECK ((api_key_encrypted IS NULL) = (api_key_fingerprint IS NULL))
    )
    """,
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


def upgrade() -> None:
    """Create the registry schema."""
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    """Drop the registry schema (a KB table that was there before stays)."""
    for statement in DOWNGRADE:
        op.execute(statement)
