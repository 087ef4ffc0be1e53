"""API keys: references in git, pgcrypto-compatible ciphertext at rest, a keyed fingerprint beside it.

The scheme (docs/database.md has the full story):

* In git a key is a reference, `${env:NAME}`, resolved from the environment at apply
  time by `resolve_reference`.
* At rest, `llm_models.api_key` holds an OpenPGP message that
  `pgp_sym_decrypt(api_key, passphrase)` opens (what `pgp_sym_encrypt(key, passphrase,
  'cipher-algo=aes256, compress-algo=0')` would write). The passphrase comes from
  `LLM_REGISTRY_ENCRYPTION_KEY`. The message is made and read *in this process*
  (`reconciler.pgp`): neither a key nor the passphrase is ever sent to PostgreSQL, in
  statement text or as a parameter, so a server logging every statement
  (`log_statement = 'all'`, pgaudit) logs nothing secret. Compression is off:
  compressing before encrypting leaks information through length.
* Beside it, `llm_models.api_key_fingerprint` holds
  `HMAC-SHA256(K_fp, key)` in hex, where `K_fp = HMAC-SHA256(passphrase,
  "llm-registry/api-key-fingerprint/v1")`. The plan compares fingerprints, in Python,
  to tell "key changed" without decrypting anything. Deriving `K_fp` instead of using
  the passphrase itself keeps the two uses of the passphrase apart (domain
  separation): the fingerprint reveals nothing that could help against the
  ciphertext, and without the passphrase a fingerprint cannot be used to test guesses
  of a key.
* A wrong passphrase would make every fingerprint differ, i.e. every key look
  changed. So the registry keeps a *passphrase check*: `llm_registry_encryption.
  passphrase_check`, an OpenPGP message of `PASSPHRASE_CHECK_TEXT` under the
  passphrase (as costly to attack as any stored key, and readable by
  `pgp_sym_decrypt` too). `read_passphrase_probe` reads it (or, before one exists,
  one stored key's ciphertext) and `verify_passphrase` refuses a passphrase that does
  not open it, naming the variable.

Nothing here puts a key, or the passphrase, into an exception, a repr or a log line.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from reconciler.errors import RegistryError
from reconciler.spec import env_reference_name

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

ENCRYPTION_KEY_ENV = "LLM_REGISTRY_ENCRYPTION_KEY"

# The plaintext of the passphrase check (see the module docstring): not secret.
PASSPHRASE_CHECK_TEXT = "llm-registry passphrase check v1"

_FINGERPRINT_CONTEXT = b"llm-registry/api-key-fingerprint/v1"


def resolve_reference(reference: str, environ: Mapping[str, str]) -> str | None:
    """The key a `${env:NAME}` reference points to, or None when NAME is unset or empty.

    A malformed reference is a RegistryError (`validate` reports it first, with its
    location); the message does not repeat the value, in case a key was pasted there.
    """
    name = env_reference_name(reference)
    if name is None:
        raise RegistryError("malformed API key reference: expected ${env:NAME}")
    value = environ.get(name)
    # An empty variable is as good as unset: an empty key can only fail.
    return value or None


def encryption_passphrase(environ: Mapping[str, str]) -> str:
    """The passphrase of the at-rest encryption, from `LLM_REGISTRY_ENCRYPTION_KEY`.

    Call it only when a key must actually be stored, fingerprinted or read: a registry
    of Ollama models, which have no keys, never needs it.
    """
    passphrase = environ.get(ENCRYPTION_KEY_ENV, "")
    if not passphrase:
        raise RegistryError(
            f"{ENCRYPTION_KEY_ENV} is not set: it is the passphrase that encrypts API keys in the "
            "registry, needed to store or read a key (use the same value for every run)"
        )
    return passphrase


@functools.lru_cache(maxsize=4)  # one derivation per passphrase, not one per model
def _fingerprint_key(passphrase: str) -> bytes:
    return hmac.new(passphrase.encode("utf-8"), _FINGERPRINT_CONTEXT, hashlib.sha256).digest()


def key_fingerprint(api_key: str, passphrase: str) -> str:
    """The keyed fingerprint of an API key: HMAC-SHA256 under a key derived from the passphrase, hex.

    Equal keys give equal fingerprints under the same passphrase; without the passphrase
    a fingerprint says nothing about the key.
    """
    return hmac.new(_fingerprint_key(passphrase), api_key.encode("utf-8"), hashlib.sha256).hexdigest()


def encrypt_api_key(api_key: str, passphrase: str) -> bytes:
    """The stored form of a key: an OpenPGP message `pgp_sym_decrypt(message, passphrase)` opens.

    Made here, not by PostgreSQL, so that neither value is ever sent to the server.
    """
    from reconciler import pgp

    return pgp.encrypt(api_key, passphrase)


def api_key_columns(api_key: str | None, passphrase: str | None) -> dict[str, Any]:
    """The values of (api_key, api_key_fingerprint) for a key, or both None for no key.

    For `insert(llm_models).values(..., **api_key_columns(key, passphrase))` and updates;
    the ciphertext is bytes made in this process (`encrypt_api_key`).
    """
    if api_key is None:
        return {"api_key": None, "api_key_fingerprint": None}
    if not passphrase:
        raise RegistryError(f"{ENCRYPTION_KEY_ENV} is needed to store an API key")
    return {"api_key": encrypt_api_key(api_key, passphrase), "api_key_fingerprint": key_fingerprint(api_key, passphrase)}


@dataclass(frozen=True)
class StoredKey:
    """What the table holds for one key: ciphertext and keyed fingerprint."""

    ciphertext: bytes
    fingerprint: str

    def __repr__(self) -> str:  # the fingerprint is not secret, but nothing here needs showing
        return "StoredKey(<redacted>)"


def stored_keys(keys: Mapping[str, str], passphrase: str | None) -> dict[str, StoredKey]:
    """{model name: StoredKey} for {model name: key}, encrypting each distinct key once.

    Models that share a key share its ciphertext (the fingerprints already show that
    they share it): one encryption per key, not per model, whatever the registry's size.
    """
    if not keys:
        return {}
    if not passphrase:
        raise RegistryError(f"{ENCRYPTION_KEY_ENV} is needed to store an API key")
    by_key: dict[str, StoredKey] = {}
    result: dict[str, StoredKey] = {}
    for name, key in keys.items():
        stored = by_key.get(key)
        if stored is None:
            stored = by_key[key] = StoredKey(encrypt_api_key(key, passphrase), key_fingerprint(key, passphrase))
        result[name] = stored
    return result


def store_api_key(connection: "Connection", model_id: str, api_key: str | None, passphrase: str | None) -> None:
    """Set (or, with None, clear) the stored key of one model, ciphertext and fingerprint together."""
    from sqlalchemy import update

    from reconciler.tables import llm_models

    connection.execute(
        update(llm_models).where(llm_models.c.id == model_id).values(**api_key_columns(api_key, passphrase))
    )


class _Keys(dict):  # type: ignore[type-arg]
    """A dict of decrypted keys whose repr does not show them (in case it is ever logged)."""

    def __repr__(self) -> str:
        return f"<{len(self)} decrypted API key(s), redacted>"

    __str__ = __repr__


@dataclass(frozen=True)
class DecryptedKeys:
    """`keys` {model id: key} (repr redacted) and the names of the models whose key does not open."""

    keys: Mapping[str, str] = field(default_factory=dict)
    undecryptable: tuple[str, ...] = ()


def read_api_keys(connection: "Connection", model_ids: Iterable[str], passphrase: str) -> DecryptedKeys:
    """Read and decrypt, in this process, the stored keys of the given models (one query).

    Models without a key are absent from `keys`; those whose ciphertext does not open
    under `passphrase` (or is damaged) are listed by name in `undecryptable`, sorted.
    The passphrase is never sent to the database.
    """
    from sqlalchemy import bindparam, func, select
    from sqlalchemy.dialects.postgresql import ARRAY, UUID

    from reconciler import pgp
    from reconciler.tables import llm_models

    ids = sorted(set(model_ids))
    keys = _Keys()
    failing: list[str] = []
    if not ids:
        return DecryptedKeys(keys)
    rows = connection.execute(
        select(llm_models.c.id, llm_models.c.name, llm_models.c.api_key)
        .where(llm_models.c.id == func.any(bindparam("ids", ids, type_=ARRAY(UUID(as_uuid=False)))))
        .where(llm_models.c.api_key.is_not(None))
        .order_by(llm_models.c.name)
    ).all()
    for model_id, name, ciphertext in rows:
        try:
            keys[str(model_id)] = pgp.decrypt(bytes(ciphertext), passphrase)
        except pgp.PgpError:
            failing.append(name)
    return DecryptedKeys(keys, tuple(failing))


def undecryptable_message(names: Iterable[str]) -> str:
    """The one wording of "these stored keys do not open" (no key, no passphrase in it)."""
    listed = ", ".join(names)
    return (
        f"cannot decrypt the stored API key of {listed or 'a model'}: {ENCRYPTION_KEY_ENV} is not the "
        "passphrase they were stored with, or the data is damaged"
    )


def decrypt_api_keys(connection: "Connection", model_ids: Iterable[str], passphrase: str) -> dict[str, str]:
    """Decrypt the stored keys of the given models: {model id: key}; models without a key are absent.

    One query for all of them, decryption in this process. A wrong passphrase (or
    damaged ciphertext) is a RegistryError naming the models whose key cannot be
    decrypted, never the key, the passphrase or a trace. The result's repr is
    redacted; do not print its values.
    """
    result = read_api_keys(connection, model_ids, passphrase)
    if result.undecryptable:
        raise RegistryError(undecryptable_message(result.undecryptable))
    return result.keys  # type: ignore[return-value]  # a _Keys dict, repr redacted


# ----------------------------------------------------------------------------- the passphrase check


@dataclass(frozen=True)
class PassphraseProbe:
    """A ciphertext that the registry's passphrase must open: the check, or one stored key.

    `model` is None for the passphrase check, else the name of the model whose key is
    the probe (a registry that has stored keys but no check yet).
    """

    ciphertext: bytes
    model: str | None = None

    def __repr__(self) -> str:
        return f"PassphraseProbe(model={self.model!r})"


def read_passphrase_probe(connection: "Connection") -> PassphraseProbe | None:
    """The passphrase check, else the key of the first model (by name) that has one, else None.

    Without a check (a database from before it, or one taken over from the admin page),
    a key llm-registry wrote is preferred to one made by hand: a hand-made row may hold
    a key under another passphrase, and a passphrase that opened only that one would
    make every managed key look changed, and be re-encrypted under it.
    `connection`: SQLAlchemy's or psycopg's (`db.fetch_one`).
    """
    from reconciler.db import fetch_one

    row = fetch_one(
        connection,
        "(SELECT 0 AS rank, NULL AS name, passphrase_check AS ciphertext FROM llm_registry_encryption) "
        "UNION ALL (SELECT 1, name, api_key FROM llm_models WHERE api_key IS NOT NULL "
        "ORDER BY managed_by IS NULL, name LIMIT 1) "
        "ORDER BY rank LIMIT 1",
    )
    if row is None:
        return None
    _, name, ciphertext = row
    return PassphraseProbe(bytes(ciphertext), name)


def wrong_passphrase_message(probe: PassphraseProbe) -> str:
    """What to say when the passphrase does not open the probe: which variable to check, and why."""
    what = (
        "the registry's passphrase check (table llm_registry_encryption)"
        if probe.model is None
        else f"the stored API key of {probe.model}"
    )
    return (
        f"{ENCRYPTION_KEY_ENV} is not the passphrase this registry's API keys are encrypted with: it does not "
        f"open {what}. Check the variable (a wrong passphrase would make every key look changed); "
        "nothing was done"
    )


def verify_passphrase(probe: PassphraseProbe | None, passphrase: str | None) -> None:
    """Refuse a passphrase that does not open the probe (RegistryError naming the variable).

    No probe (nothing stored yet) or no passphrase (nothing to compare): nothing to refuse.
    """
    from reconciler import pgp

    if probe is None or not passphrase:
        return
    try:
        text_ = pgp.decrypt(probe.ciphertext, passphrase)
    except pgp.PgpError:
        raise RegistryError(wrong_passphrase_message(probe)) from None
    if probe.model is None and text_ != PASSPHRASE_CHECK_TEXT:
        raise RegistryError(wrong_passphrase_message(probe))


def store_passphrase_check(connection: "Connection", passphrase: str) -> None:
    """Write (or replace) the passphrase check for `passphrase`, in the caller's transaction."""
    from sqlalchemy import text

    from reconciler import pgp

    connection.execute(
        text(
            "INSERT INTO llm_registry_encryption (id, passphrase_check) VALUES (1, :check) "
            "ON CONFLICT (id) DO UPDATE SET passphrase_check = EXCLUDED.passphrase_check, updated_at = clock_timestamp()"
        ),
        {"check": pgp.encrypt(PASSPHRASE_CHECK_TEXT, passphrase)},
    )
