"""Alembic migrations of the registry schema, shipped inside the package.

Run them with `llm-registry db upgrade` (see `reconciler.db.upgrade`); no alembic.ini
is needed: the configuration is built in code and the script location is the
package resource `reconciler:migrations`.
"""
