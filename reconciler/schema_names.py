"""Names in the database schema (tables, columns, audit event types) that code needs without loading SQLAlchemy.

`tables.py` defines the tables (and imports these names from here); the commands that
only read (`plan`, through `db.snapshot`) query them as plain SQL and must not import
SQLAlchemy to learn a table or column name.
"""

from __future__ import annotations

# Alembic's bookkeeping table. Not the default `alembic_version`: the registry usually
# shares its database with the KB application, which may run Alembic of its own.
VERSION_TABLE = "llm_registry_schema_version"

# Record fields (spec.RECORD_FIELDS, named as in the YAML) stored under another column
# name: the story's `model_type`. (`api_key` is special: the column holds the
# ciphertext, while a state record's "api_key" is the keyed fingerprint beside it.)
_COLUMN_OF_FIELD = {"type": "model_type"}


# The event types of registry_audit_events (its CHECK constraint admits exactly these).
MODEL_CREATED = "MODEL_CREATED"
MODEL_UPDATED = "MODEL_UPDATED"
MODEL_DELETED = "MODEL_DELETED"
MODEL_CONNECTION_TESTED = "MODEL_CONNECTION_TESTED"
ENCRYPTION_KEY_ROTATED = "ENCRYPTION_KEY_ROTATED"
AUDIT_EVENT_TYPES: tuple[str, ...] = (
    MODEL_CREATED,
    MODEL_UPDATED,
    MODEL_DELETED,
    MODEL_CONNECTION_TESTED,
    ENCRYPTION_KEY_ROTATED,
)


def column_name(field: str) -> str:
    """The llm_models column that stores a record field (`type` -> `model_type`, else the same)."""
    return _COLUMN_OF_FIELD.get(field, field)
