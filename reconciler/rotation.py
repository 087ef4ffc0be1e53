"""Rotate the passphrase of the at-rest encryption: every stored key, one locked transaction.

`rotate_encryption_key`, inside one transaction that commits only at the very end:

1. take the apply lock (no apply runs meanwhile) and lock `llm_models` against writes
   (SHARE ROW EXCLUSIVE: readers such as the KB application go on, writers such as
   the story's admin page wait), so no row can be added under the old passphrase
   while the others move to the new one;
2. refuse an old passphrase that does not open the passphrase check (or a stored key);
3. decrypt every stored key, managed or made by hand, in this process; if any does
   not open, name them all and change nothing;
4. encrypt each distinct key once under the new passphrase, recompute its keyed
   fingerprint, and `applied_fingerprint` where it was current (a row that had
   drifted keeps reading as drifted); one UPDATE for all rows;
5. replace the passphrase check, write one ENCRYPTION_KEY_ROTATED audit event per
   model (never a value), commit (or roll back for a dry run).

Any failure rolls everything back: a registry is under the old passphrase or the new
one, never half of each. Neither passphrase nor any key is sent to PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler.audit import AuditEvent, write_audit_events
from reconciler.errors import RegistryError
from reconciler.schema_names import ENCRYPTION_KEY_ROTATED
from reconciler.secrets import (
    ENCRYPTION_KEY_ENV,
    read_passphrase_probe,
    store_passphrase_check,
    stored_keys,
    undecryptable_message,
    verify_passphrase,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from reconciler.apply import ApplyOptions, Hooks

NEW_ENCRYPTION_KEY_ENV = "LLM_REGISTRY_NEW_ENCRYPTION_KEY"


@dataclass(frozen=True)
class RotationOutcome:
    """What a rotation did (or, for a dry run, would have done)."""

    models: tuple[str, ...]
    hand_made: tuple[str, ...]
    events: tuple[AuditEvent, ...]
    committed: bool


def rotate_encryption_key(
    connection: "Connection", old: str, new: str, options: "ApplyOptions", hooks: "Hooks | None" = None
) -> RotationOutcome:
    """Re-encrypt every stored key from passphrase `old` to `new` (see the module docstring).

    `connection` must not be in a transaction yet. `options` gives the run id, actor,
    lock timeout and dry run. Raises RegistryError (nothing changed) on a wrong old
    passphrase, an undecryptable key, an unchanged passphrase or a lock timeout.
    """
    from sqlalchemy import text

    from reconciler import pgp
    from reconciler.apply import Hooks, acquire_lock
    from reconciler.db import driver_cursor, require_schema_at_head
    from reconciler.state import applied_fingerprint, read_state

    if not old or not new:
        raise RegistryError("both the current and the new passphrase are needed")
    if old == new:
        raise RegistryError(f"the new passphrase is the current one ({ENCRYPTION_KEY_ENV}); nothing to rotate")
    transaction = connection.begin()
    try:
        require_schema_at_head(connection)
        acquire_lock(connection, options, hooks or Hooks())
        connection.execute(text(f"SET LOCAL lock_timeout = '{int(options.lock_timeout * 1000)}ms'"))
        connection.execute(text("LOCK TABLE llm_models IN SHARE ROW EXCLUSIVE MODE"))
        verify_passphrase(read_passphrase_probe(connection), old)

        state = read_state(connection)
        rows = connection.execute(
            text("SELECT id, api_key, applied_fingerprint FROM llm_models WHERE api_key IS NOT NULL")
        ).all()
        by_id = {model.id: model for model in state.models}
        keys: dict[str, str] = {}
        failing: list[str] = []
        for row_id, ciphertext, _applied in rows:
            model = by_id[str(row_id)]
            try:
                keys[model.name] = pgp.decrypt(bytes(ciphertext), old)
            except pgp.PgpError:
                failing.append(model.name)
        if failing:
            raise RegistryError(
                undecryptable_message(sorted(failing)) + ". Rotation needs every stored key to open with the current "
                "passphrase; nothing was changed"
            )

        stored = stored_keys(keys, new)
        ids, ciphertexts, fingerprints, applied = [], [], [], []
        events = []
        hand_made = []
        for row_id, _ciphertext, old_applied in sorted(rows, key=lambda r: by_id[str(r[0])].name):
            model = by_id[str(row_id)]
            new_key = stored[model.name]
            record = dict(model.record) | {"api_key": new_key.fingerprint}
            current = old_applied is not None and old_applied == applied_fingerprint(model.name, model.record)
            ids.append(model.id)
            ciphertexts.append(new_key.ciphertext)
            fingerprints.append(new_key.fingerprint)
            applied.append(applied_fingerprint(model.name, record) if current else old_applied)
            if not model.managed:
                hand_made.append(model.name)
            details: dict[str, Any] = {"api_key": "unchanged", "re_encrypted": True, "managed": model.managed}
            events.append(AuditEvent(ENCRYPTION_KEY_ROTATED, model.name, model.id, details))
        if ids:
            with driver_cursor(connection) as cursor:
                cursor.execute(
                    "UPDATE llm_models AS m SET api_key = s.api_key, api_key_fingerprint = s.fp, "
                    "applied_fingerprint = s.applied "
                    "FROM unnest(%s::uuid[], %s::bytea[], %s::text[], %s::text[]) AS s(id, api_key, fp, applied) "
                    "WHERE m.id = s.id",
                    (ids, ciphertexts, fingerprints, applied),
                )
        store_passphrase_check(connection, new)
        write_audit_events(connection, events, run_id=options.run_id, actor=options.actor, source_revision=options.revision)
        if options.dry_run:
            transaction.rollback()
        else:
            transaction.commit()
        return RotationOutcome(tuple(model for model in sorted(keys)), tuple(hand_made), tuple(events), not options.dry_run)
    except BaseException as error:
        from sqlalchemy.exc import DBAPIError

        try:
            if transaction.is_active:
                transaction.rollback()
        except DBAPIError:
            pass  # the connection is gone: the server has rolled back already
        if isinstance(error, DBAPIError):
            original = getattr(error, "orig", None) or error
            first_line = (str(original).strip().splitlines() or [type(original).__name__])[0]
            from reconciler.db import INSUFFICIENT_PRIVILEGE, ROLES_HINT, sqlstate

            hint = f"; {ROLES_HINT}" if sqlstate(error) == INSUFFICIENT_PRIVILEGE else ""
            raise RegistryError(
                f"database error during the rotation ({first_line}); the transaction was rolled back, nothing was changed{hint}"
            ) from None
        raise
