"""The passphrase check: tells a wrong LLM_REGISTRY_ENCRYPTION_KEY from changed API keys.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

One row: an OpenPGP message of a fixed text under the registry's passphrase (see
`reconciler.secrets`). `plan` and `apply` refuse a passphrase that does not open it;
`rotate-encryption-key` replaces it in the transaction that re-encrypts every key.
Anyone holding a passphrase can test it in SQL:
`SELECT pgp_sym_decrypt(passphrase_check, :passphrase) FROM llm_registry_encryption`.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = [
    """
    CREATE TABLE llm_registry_encryption (
        id smallint NOT NULL DEFAULT 1,
        passphrase_check bytea NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        CONSTRAINT pk_llm_registry_encryption PRIMARY KEY (id),
        CONSTRAINT ck_llm_registry_encryption_single_row CHECK (id = 1)
    )
    """,
]

DOWNGRADE = ["DROP TABLE llm_registry_encryption"]


def upgrade() -> None:
    """Create the one-row table of the passphrase check."""
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    """Drop it (plan and apply then probe a stored key instead)."""
    for statement in DOWNGRADE:
        op.execute(statement)
