"""API keys: references in git, pgcrypto ciphertext at rest, a keyed fingerprint beside it.

The scheme (docs/database.md has the full story):

* In git a key is a reference, `${env:NAME}`, resolved from the environment at apply
  time by `resolve_reference`.
* At rest, `llm_models.api_key` holds `pgp_sym_encrypt(key, passphrase,
  'cipher-algo=aes256, compress-algo=0')`. The passphrase comes from
  `LLM_REGISTRY_ENCRYPTION_KEY`. Key and passphrase always travel as *bound
  parameters*, never formatted into SQL text, and engines are made with
  `hide_parameters=True`, so neither shows up in a statement log or an error.
  Compression is off: compressing before encrypting leaks information through length.
* Beside it, `llm_models.api_key_fingerprint` holds
  `HMAC-SHA256(K_fp, key)` in hex, where `K_fp = HMAC-SHA256(passphrase,
  "llm-registry/api-key-fingerprint/v1")`. The plan compares fingerprints, in Python,
  to tell "key changed" without decrypting anything. Deriving `K_fp` instead of using
  the passphrase itself keeps the two uses of the passphrase apart (domain
  separation): the fingerprint reveals nothing that could help against the
  ciphertext, and without the passphrase a fingerprint cannot be used to test guesses
  of a key. Changing the passphrase changes every fingerprint, so re-encrypting under
  a new passphrase shows every key as changed, as it should.

Nothing here puts a key, or the passphrase, into an exception, a repr or a log line.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from reconciler.errors import RegistryError
from reconciler.spec import env_reference_name

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.sql.elements import ColumnElement

ENCRYPTION_KEY_ENV = "LLM_REGISTRY_ENCRYPTION_KEY"

# pgp_sym_encrypt options: AES-256, no compression (see the module docstring).
PGP_OPTIONS = "cipher-algo=aes256, compress-algo=0"

# The encryption as a SQL fragment with bound parameters :api_key and :passphrase,
# for hand-written statements: text(f"UPDATE ... SET api_key = {ENCRYPT_SQL}").
ENCRYPT_SQL = f"pgp_sym_encrypt(:api_key, :passphrase, '{PGP_OPTIONS}')"

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


def encrypt_expression(api_key: str, passphrase: str) -> "ColumnElement[bytes]":
    """`pgp_sym_encrypt(:key, :passphrase, options)` as a SQLAlchemy expression with bound values.

    Use it as a column value in an insert or update statement.
    """
    from sqlalchemy import LargeBinary, Text, bindparam, func, literal_column

    return func.pgp_sym_encrypt(
        bindparam("api_key_plain", api_key, type_=Text, unique=True),
        bindparam("api_key_passphrase", passphrase, type_=Text, unique=True),
        literal_column(f"'{PGP_OPTIONS}'"),
        type_=LargeBinary,
    )


def api_key_columns(api_key: str | None, passphrase: str | None) -> dict[str, Any]:
    """The values of (api_key, api_key_fingerprint) for a key, or both None for no key.

    For `insert(llm_models).values(..., **api_key_columns(key, passphrase))` and updates.
    """
    if api_key is None:
        return {"api_key": None, "api_key_fingerprint": None}
    if not passphrase:
        raise RegistryError(f"{ENCRYPTION_KEY_ENV} is needed to store an API key")
    return {
        "api_key": encrypt_expression(api_key, passphrase),
        "api_key_fingerprint": key_fingerprint(api_key, passphrase),
    }


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


def decrypt_api_keys(connection: "Connection", model_ids: Iterable[str], passphrase: str) -> dict[str, str]:
    """Decrypt the stored keys of the given models: {model id: key}; models without a key are absent.

    One query for all of them. A wrong passphrase (or damaged ciphertext) is a
    RegistryError naming the models whose key cannot be decrypted, never the key, the
    passphrase or a trace. Runs inside a savepoint, so the caller's transaction stays
    usable after such an error. The result's repr is redacted; do not print its values.
    """
    from sqlalchemy import bindparam, func, select
    from sqlalchemy.dialects.postgresql import ARRAY, UUID
    from sqlalchemy.exc import DBAPIError

    from reconciler.tables import llm_models

    ids = sorted(set(model_ids))
    if not ids:
        return _Keys()
    passphrase_param = bindparam("passphrase", passphrase)
    ids_param = bindparam("ids", ids, type_=ARRAY(UUID(as_uuid=False)))
    query = (
        select(llm_models.c.id, llm_models.c.name, func.pgp_sym_decrypt(llm_models.c.api_key, passphrase_param))
        .where(llm_models.c.id == func.any(ids_param))
        .where(llm_models.c.api_key.is_not(None))
    )
    try:
        with connection.begin_nested():
            rows = connection.execute(query).all()
    except DBAPIError:
        # Find which rows fail, for the message; still no key or passphrase in it.
        failing = _undecryptable_models(connection, ids, passphrase)
        raise RegistryError(
            "cannot decrypt the stored API key of "
            + (", ".join(failing) if failing else "a model")
            + f": {ENCRYPTION_KEY_ENV} is not the passphrase they were stored with, or the data is damaged"
        ) from None
    return _Keys({str(model_id): key for model_id, _name, key in rows})


def _undecryptable_models(connection: "Connection", ids: list[str], passphrase: str) -> list[str]:
    """Names of the models whose key does not decrypt under `passphrase` (one query per model)."""
    from sqlalchemy import bindparam, func, select
    from sqlalchemy.exc import DBAPIError

    from reconciler.tables import llm_models

    failing = []
    names = connection.execute(
        select(llm_models.c.id, llm_models.c.name)
        .where(llm_models.c.id.in_(ids))
        .where(llm_models.c.api_key.is_not(None))
        .order_by(llm_models.c.name)
    ).all()
    for model_id, name in names:
        try:
            with connection.begin_nested():
                connection.execute(
                    select(func.pgp_sym_decrypt(llm_models.c.api_key, bindparam("passphrase", passphrase)))
                    .where(llm_models.c.id == model_id)
                ).all()
        except DBAPIError:
            failing.append(name)
    return failing
