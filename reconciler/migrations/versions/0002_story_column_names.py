"""The story's column names for llm_models, drift fingerprints, environments in the audit trail.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

`llm_models` is read by the knowledge-base application, which was written against the
story's schema: `model_type` (not `type`) and `api_key` holding the `pgp_sym_encrypt`
ciphertext (not `api_key_encrypted`). Renaming in place keeps every row, id, key and
KB link; CHECK constraints and indexes follow the renamed columns by themselves.

Also added here, so that the features built on them share one migration:
- `llm_models.applied_fingerprint`: what apply last wrote to the row (drift detection;
  NULL where unknown, e.g. rows written before this revision or by hand);
- `registry_audit_events.environment`: the `--environment` a run was for;
- the `ENCRYPTION_KEY_ROTATED` event type;
- audit times from `clock_timestamp()`, the moment of the insert, not the start of a
  transaction that may have waited for the registry lock;
- an index on `registry_audit_events (model_id, id)`, to follow a model through renames.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

EVENT_TYPES_0001 = "'MODEL_CREATED', 'MODEL_UPDATED', 'MODEL_DELETED', 'MODEL_CONNECTION_TESTED'"
EVENT_TYPES_0002 = EVENT_TYPES_0001 + ", 'ENCRYPTION_KEY_ROTATED'"

UPGRADE = [
    "ALTER TABLE llm_models RENAME COLUMN type TO model_type",
    "ALTER TABLE llm_models RENAME CONSTRAINT ck_llm_models_type TO ck_llm_models_model_type",
    "ALTER TABLE llm_models RENAME COLUMN api_key_encrypted TO api_key",
    "ALTER TABLE llm_models ADD COLUMN applied_fingerprint text",
    "ALTER TABLE registry_audit_events ADD COLUMN environment text",
    "ALTER TABLE registry_audit_events ALTER COLUMN occurred_at SET DEFAULT clock_timestamp()",
    "ALTER TABLE registry_audit_events DROP CONSTRAINT ck_registry_audit_events_event_type",
    f"""
    ALTER TABLE registry_audit_events ADD CONSTRAINT ck_registry_audit_events_event_type
        CHECK (event_type IN ({EVENT_TYPES_0002}))
    """,
    "CREATE INDEX ix_registry_audit_events_model_id ON registry_audit_events (model_id, id)",
]

DOWNGRADE = [
    "DROP INDEX ix_registry_audit_events_model_id",
    "ALTER TABLE registry_audit_events DROP CONSTRAINT ck_registry_audit_events_event_type",
    # Fails (and changes nothing) while rotation events exist: audit records are never removed.
    f"""
    ALTER TABLE registry_audit_events ADD CONSTRAINT ck_registry_audit_events_event_type
        CHECK (event_type IN ({EVENT_TYPES_0001}))
    """,
    "ALTER TABLE registry_audit_events ALTER COLUMN occurred_at SET DEFAULT now()",
    "ALTER TABLE registry_audit_events DROP COLUMN environment",
    "ALTER TABLE llm_models DROP COLUMN applied_fingerprint",
    "ALTER TABLE llm_models RENAME COLUMN api_key TO api_key_encrypted",
    "ALTER TABLE llm_models RENAME CONSTRAINT ck_llm_models_model_type TO ck_llm_models_type",
    "ALTER TABLE llm_models RENAME COLUMN model_type TO type",
]


def upgrade() -> None:
    """Rename llm_models' columns to the story's names; add drift and environment columns."""
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    """Back to revision 0001's names (refused while ENCRYPTION_KEY_ROTATED events exist)."""
    for statement in DOWNGRADE:
        op.execute(statement)
