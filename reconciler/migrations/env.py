"""Alembic environment: migrations run over a connection the caller opened.

`reconciler.db.alembic_config(connection)` puts the connection into
`config.attributes["connection"]`; there is no engine, URL or offline mode here,
so a migration always runs inside the caller's transaction and lock.
"""

from __future__ import annotations

from alembic import context

from reconciler.tables import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable by running alembic by hand
    raise RuntimeError(
        "reconciler migrations run through `llm-registry db upgrade` (reconciler.db.upgrade), "
        "which passes an open connection"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    # One transaction for the whole upgrade: all revisions apply, or none.
    transaction_per_migration=False,
)

with context.begin_transaction():
    context.run_migrations()
