"""The registry as it is in PostgreSQL: plain data the plan compares against.

`RegistryState` is what `read_state` returns; the plan and the policies take it as
plain data, so they never touch the database themselves.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from reconciler import MANAGED_BY


@dataclass(frozen=True)
class StoredModel:
    """One row of llm_models.

    `record` has a value for every name in `spec.RECORD_FIELDS`; its `api_key` is the
    stored keyed fingerprint (hex) or None, never the key.
    """

    id: str
    name: str
    managed_by: str | None
    record: Mapping[str, Any]

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
    """The whole registry: every model row and every KB reference."""

    models: tuple[StoredModel, ...] = ()
    knowledge_bases: tuple[KnowledgeBase, ...] = ()
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
    canonical = {
        "models": sorted(
            ([m.id, m.name, m.managed_by, {k: m.record[k] for k in sorted(m.record)}] for m in state.models),
            key=lambda row: row[1],
        ),
        "knowledge_bases": sorted(
            [kb.id, kb.name, kb.embedding_model_id, kb.generation_model_id] for kb in state.knowledge_bases
        ),
    }
    payload = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()
