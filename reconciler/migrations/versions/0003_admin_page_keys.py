"""A key stored without fingerprint is allowed on a row llm-registry does not manage.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

The story's admin page stored API keys (`pgp_sym_encrypt`) and no fingerprint.
`db upgrade` takes such a table over (migration 0001) and fills the fingerprints in
once it has the passphrase, which may be a later run: until then those rows, all
unmanaged, hold a key without fingerprint. Migration 0001 now writes the constraint
this way; this revision brings databases made by earlier versions of 0001 to it. A
row llm-registry manages still has both or neither.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STRICT = "(api_key IS NULL) = (api_key_fingerprint IS NULL)"
RELAXED = STRICT + " OR (managed_by IS NULL AND api_key_fingerprint IS NULL)"


def _replace(condition: str) -> None:
    op.execute(
        "ALTER TABLE llm_models DROP CONSTRAINT ck_llm_models_api_key_pair, "
        f"ADD CONSTRAINT ck_llm_models_api_key_pair CHECK ({condition})"
    )


def upgrade() -> None:
    """Allow an unmanaged row's key to wait for its fingerprint."""
    _replace(RELAXED)


def downgrade() -> None:
    """Both or neither again (fails, changing nothing, while a key waits for its fingerprint)."""
    _replace(STRICT)
