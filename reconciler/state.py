"""The registry as it is in PostgreSQL: plain data the plan compares against.

`RegistryState` is what `read_state` returns; the plan and the policies take it as
plain data, so they never touch the database themselves.
"""

from __future__ import annotations

import functools
import hashlib
import json
import operator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from reconciler import MANAGED_BY
from reconciler.gc_pause import collector_paused

if TYPE_CHECKING:
    from reconciler.secrets import PassphraseProbe


@dataclass(frozen=True)
class StoredModel:
    """One row of llm_models.

    `record` has a value for every name in `spec.RECORD_FIELDS`; its `api_key` is the
    stored keyed fingerprint (hex) or None, never the key. `key_pending` marks a row
    whose key was stored without a fingerprint (by the story's admin page): its
    `api_key` is None although a key is stored, until `db upgrade` fingerprints it.
    """

    id: str
    name: str
    managed_by: str | None
    record: Mapping[str, Any]
    key_pending: bool = False
    # What apply last wrote (`applied_fingerprint`; None: never, or before 0002) and
    # when the row was made: drift detection (drift.py), not part of state_fingerprint.
    applied_fingerprint: str | None = field(default=None, compare=False)
    created_at: datetime | None = field(default=None, compare=False)

    @property
    def managed(self) -> bool:
        """True when the reconciler owns this row."""
        return self.managed_by == MANAGED_BY


@dataclass(frozen=True)
class KnowledgeBase:
    """A knowledge base and the models it uses (either may be None)."""

    id: str
    name: str
    embedding_model_id: str | None
    generation_model_id: str | None


@dataclass(frozen=True)
class RegistryState:
    """The whole registry: every model row and every KB reference.

    `passphrase_probe` is what the passphrase must open (`secrets.read_passphrase_probe`):
    None when no key is stored yet.
    """

    models: tuple[StoredModel, ...] = ()
    knowledge_bases: tuple[KnowledgeBase, ...] = ()
    passphrase_probe: "PassphraseProbe | None" = field(default=None, compare=False)
    # When the last apply that changed anything wrote its audit events (new unmanaged rows).
    last_applied_at: datetime | None = field(default=None, compare=False)
    _kbs_by_model: dict[str, tuple[str, ...]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_model: dict[str, list[str]] = {}
        for kb in self.knowledge_bases:
            for model_id in {kb.embedding_model_id, kb.generation_model_id} - {None}:
                by_model.setdefault(model_id, []).append(kb.name)  # type: ignore[arg-type]
        self._kbs_by_model.update({k: tuple(sorted(v)) for k, v in by_model.items()})

    def kbs_using(self, model_id: str) -> tuple[str, ...]:
        """Names of the KBs that reference the model, sorted."""
        return self._kbs_by_model.get(model_id, ())

    def by_name(self) -> dict[str, StoredModel]:
        """The models keyed by name."""
        return {model.name: model for model in self.models}


def state_fingerprint(state: RegistryState) -> str:
    """A digest of everything the plan depends on: rows, fingerprints, ownership, KB links.

    Two states with the same fingerprint give the same plan for the same spec, so a
    saved plan can be refused when the database has moved since it was computed.
    """
    # The SHA-256 of `canonical_json({"knowledge_bases": [...], "models": [...]})`, each
    # model as `[id, name, managed_by, record_values(record)]`, fed a chunk of rows at a
    # time: the same digest without the whole document in memory (hundreds of MB at
    # 100,000 models). Values in RECORD_FIELDS order rather than the record as a mapping:
    # the same information, a third of the encoding time.
    digest = hashlib.sha256(b'{"knowledge_bases":')
    kbs = sorted([kb.id, kb.name, kb.embedding_model_id, kb.generation_model_id] for kb in state.knowledge_bases)
    digest.update(canonical_json(kbs).encode())
    digest.update(b',"models":')
    rows = sorted(state.models, key=lambda m: m.name)
    update_with_json_array(digest, ([m.id, m.name, m.managed_by, record_values(m.record)] for m in rows))
    digest.update(b"}")
    return digest.hexdigest()


def record_values(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """A record's values in `spec.RECORD_FIELDS` order (every field must be there), for digests."""
    return _record_getter()(record)


@functools.cache
def _float_indexes() -> tuple[int, ...]:
    from reconciler.spec import RECORD_FIELDS

    return tuple(RECORD_FIELDS.index(name) for name in _FLOAT_FIELDS)


@functools.cache
def _record_getter() -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    from reconciler.spec import RECORD_FIELDS  # here: importing state must not build the spec's models

    return operator.itemgetter(*RECORD_FIELDS)


# json.dumps(value, sort_keys=True, separators=(",", ":"), default=str), with one encoder
# for every call (json.dumps builds a new one per call when given options).
_CANONICAL_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
# Elements encoded per call by JsonArrayDigest: one C call per chunk instead of per row,
# and still never the whole document in memory.
_CHUNK = 1000


def canonical_json(value: Any) -> str:
    """The compact, key-sorted JSON the registry's digests are taken over."""
    return _CANONICAL_ENCODER.encode(value)


class JsonArrayDigest:
    """Feeds a hash the bytes of `canonical_json(list(elements))`, a chunk of elements at a time.

    The encoder joins a list's items with ",", so the chunks' encodings without their
    brackets, joined by ",", are exactly the whole array's encoding.
    """

    def __init__(self, digest: Any) -> None:
        self.digest = digest
        self._chunk: list[Any] = []
        self._empty = True
        digest.update(b"[")

    def add(self, element: Any) -> None:
        """Append one element to the array."""
        self._chunk.append(element)
        if len(self._chunk) >= _CHUNK:
            self._flush()

    def finish(self) -> Any:
        """Close the array; returns the digest."""
        self._flush()
        self.digest.update(b"]")
        return self.digest

    def _flush(self) -> None:
        if not self._chunk:
            return
        encoded = canonical_json(self._chunk)[1:-1].encode()
        self.digest.update(encoded if self._empty else b"," + encoded)
        self._empty = False
        self._chunk = []


def update_with_json_array(digest: Any, elements: Iterable[Any]) -> None:
    """Feed `digest` the bytes of `canonical_json(list(elements))`, a chunk at a time."""
    array = JsonArrayDigest(digest)
    for element in elements:
        array.add(element)
    array.finish()


# Bump the version string when the definition below changes: rows written under the
# old definition then read as "unknown", never as drifted.
APPLIED_FINGERPRINT_VERSION = "llm-registry/applied/v1"
_FLOAT_FIELDS = ("temperature", "top_p")
# One encoder for every digest (json.dumps with separators builds a new one per call).
_DIGEST_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)


def applied_fingerprint(name: str, record: Mapping[str, Any]) -> str:
    """The digest apply stores in `llm_models.applied_fingerprint` for each row it writes.

    Definition (one home; drift detection recomputes it from `read_state`'s rows):
    SHA-256, hex, of the compact JSON array
    `[APPLIED_FINGERPRINT_VERSION, name, [record[f] for f in spec.RECORD_FIELDS]]`,
    where `record` is the row as stored: `api_key` is the stored keyed fingerprint (or
    None), never the key or its reference; temperature and top_p are floats (a
    `double precision` reads back as float even when YAML said `1`). A row whose
    recomputed digest differs from its stored one was changed outside llm-registry.
    """
    try:
        values = list(_record_getter()(record))
    except KeyError:  # a partial record (not one read_state or desired_record made): missing is None
        from reconciler.spec import RECORD_FIELDS

        values = [record.get(f) for f in RECORD_FIELDS]
    for index in _float_indexes():
        if values[index] is not None:
            values[index] = float(values[index])
    payload = _DIGEST_ENCODER.encode([APPLIED_FINGERPRINT_VERSION, name, values])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


_BATCH = 5000  # rows per fetch of read_state


@collector_paused()
def read_state(connection: Any) -> RegistryState:
    """Read the whole registry in four queries (models, KBs, passphrase probe, time of the last apply), whatever its size.

    `connection` (SQLAlchemy's, or psycopg's from `db.snapshot`) is on a database at the
    head revision. Each `StoredModel.record` has every `spec.RECORD_FIELDS` key;
    `record["api_key"]` is the stored keyed fingerprint or None (the encrypted key is not
    read). Ids are strings, temperature and top_p Python floats. Models are sorted by
    name, KBs by name then id.
    """
    from reconciler.db import driver_cursor
    from reconciler.schema_names import column_name
    from reconciler.secrets import read_passphrase_probe
    from reconciler.spec import RECORD_FIELDS

    # Plain SQL (no SQLAlchemy: `plan` reads through psycopg alone, see db.snapshot).
    columns = ", ".join("api_key_fingerprint" if field == "api_key" else column_name(field) for field in RECORD_FIELDS)
    models_query = (
        "SELECT id::text, name, managed_by, api_key IS NOT NULL AND api_key_fingerprint IS NULL, "
        f"applied_fingerprint, created_at, {columns} FROM llm_models ORDER BY name"
    )
    float_indexes = _float_indexes()
    models = []
    # Through psycopg's server-side cursor, _BATCH rows per FETCH: at 100,000 rows,
    # holding every raw row beside the records built from them cost ~100 MB of peak
    # memory, and SQLAlchemy's result layer doubled the cost of reading them.
    with driver_cursor(connection, name="llm_registry_read_state") as cursor:
        cursor.execute(models_query)
        while batch := cursor.fetchmany(_BATCH):
            for model_id, name, managed_by, key_pending, applied, created_at, *values in batch:
                # double precision arrives as float already; this keeps ints from hand-made rows out.
                for index in float_indexes:
                    if values[index] is not None:
                        values[index] = float(values[index])
                models.append(
                    StoredModel(
                        id=model_id, name=name, managed_by=managed_by, record=dict(zip(RECORD_FIELDS, values)),
                        key_pending=key_pending, applied_fingerprint=applied, created_at=created_at,
                    )
                )
    with driver_cursor(connection) as cursor:
        cursor.execute(
            "SELECT id::text, name, embedding_model_id::text, generation_model_id::text "
            "FROM knowledge_bases ORDER BY knowledge_bases.name, knowledge_bases.id"
        )
        kbs = tuple(KnowledgeBase(*row) for row in cursor.fetchall())
    return RegistryState(
        models=tuple(models), knowledge_bases=kbs, passphrase_probe=read_passphrase_probe(connection),
        last_applied_at=_last_applied_at(connection),
    )


def _last_applied_at(connection: Any) -> datetime | None:
    """When the newest apply that changed a row recorded it (the audit trail is append-only)."""
    from reconciler.db import fetch_one

    # Newest first by the primary key: stops at the first matching row.
    row = fetch_one(
        connection,
        "SELECT occurred_at FROM registry_audit_events "
        "WHERE event_type IN ('MODEL_CREATED', 'MODEL_UPDATED', 'MODEL_DELETED') ORDER BY id DESC LIMIT 1",
    )
    return None if row is None else row[0]


def stored_key_names(connection: Any) -> frozenset[str]:
    """Names of the rows that hold an encrypted key, fingerprinted or not.

    `StoredModel.record["api_key"]` is the fingerprint; a row from the old admin page
    may hold a key that has no fingerprint yet, and still has a key.
    """
    from reconciler.db import driver_cursor

    with driver_cursor(connection) as cursor:
        cursor.execute("SELECT name FROM llm_models WHERE api_key IS NOT NULL")
        return frozenset(name for (name,) in cursor.fetchall())
