"""Saved plans (`plan --out PLANFILE`, `apply PLANFILE`).

A plan file holds the definitions that were planned (key *references*, never keys),
the fingerprint of the database state the plan read, a digest of the key
fingerprints it compared, and the plan itself as its JSON document. `apply` re-plans
the saved definitions against the database under its lock and refuses unless the
state fingerprint, the key digest and the resulting actions are those that were saved.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from pydantic import ValidationError

from reconciler import __version__
from reconciler.diagnostics import Location
from reconciler.errors import RegistryError
from reconciler.plan import KEY_CHANGED, KEY_SET, KEY_UNKNOWN, Plan
from reconciler.render import plan_to_json_data
from reconciler.spec import MODEL_ADAPTER, RegistrySpec
from reconciler.target import Target

PLANFILE_KIND = "llm-registry-plan"
PLANFILE_VERSION = 1


@dataclass(frozen=True)
class SavedPlan:
    """A plan file as read back."""

    registry: RegistrySpec
    state_fingerprint: str
    spec_fingerprint: str
    keys_digest: str
    keys_unknown: tuple[str, ...]
    allow_delete_all: bool
    actions: tuple[Any, ...]
    directory: str
    created_at: str
    target: Target


def keys_digest(key_fingerprints: Mapping[str, str | None]) -> str:
    """One digest over the known key fingerprints, so the file need not list them."""
    known = sorted((name, fp) for name, fp in key_fingerprints.items() if fp not in (None, KEY_UNKNOWN))
    return hashlib.sha256(json.dumps(known).encode()).hexdigest()


def comparable_actions(plan_json: Mapping[str, Any]) -> list[Any]:
    """The actions of a plan's JSON document, with key tokens that only mean "a key" unified.

    "(known at apply)" in a saved plan and "(set)" at apply mean the same thing for a
    new key; "changed" stays distinct, so a key that moved unseen makes the plans differ.
    """
    def token(value: Any) -> Any:
        return KEY_SET if value in (KEY_UNKNOWN, KEY_SET) else value

    return [
        [
            action["action"], action["name"], action["blocked"],
            [[c["field"], token(c["before"]), token(c["after"])] for c in action["changes"]],
        ]
        for action in plan_json["actions"]
    ]


def write_planfile(
    path: Path, plan: Plan, registry: RegistrySpec, *, directory: str, allow_delete_all: bool, target: Target
) -> None:
    """Save the plan atomically (a reader never sees half a file), bound to `target`'s database."""
    document = {
        "kind": PLANFILE_KIND,
        "format_version": PLANFILE_VERSION,
        "llm_registry_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "directory": directory,
        "allow_delete_all": allow_delete_all,
        "state_fingerprint": plan.state_fingerprint,
        "spec_fingerprint": plan.spec_fingerprint,
        "keys": {
            "digest": keys_digest(plan.key_fingerprints),
            "unknown": sorted(name for name, fp in plan.key_fingerprints.items() if fp == KEY_UNKNOWN),
        },
        "definitions": [
            {"definition": model.model_dump(mode="json"), "location": str(registry.locations.get(model.name, ""))}
            for model in registry.models
        ],
        "target": {**target.as_json(), "database_identity": target.database_identity},
        "plan": plan_to_json_data(plan, target),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(document, out, indent=2, sort_keys=True, default=str)
            out.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _location(text: str) -> Location | None:
    file, _, rest = text.rpartition(":")
    file, _, line = file.rpartition(":")
    if not file or not line.isdigit() or not rest.isdigit():
        return None
    return Location(file, int(line), int(rest))


def read_planfile(path: Path) -> SavedPlan:
    """Read a plan file; a RegistryError says why one is unusable."""
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RegistryError(f"{path} is not a readable plan file ({type(error).__name__}); re-run plan --out") from None
    if not isinstance(document, dict) or document.get("kind") != PLANFILE_KIND:
        raise RegistryError(f"{path} is not an llm-registry plan file")
    if document.get("format_version") != PLANFILE_VERSION:
        raise RegistryError(
            f"{path} has plan format {document.get('format_version')!r}; this llm-registry reads {PLANFILE_VERSION}: re-run plan"
        )
    try:
        models = [MODEL_ADAPTER.validate_python(entry["definition"]) for entry in document["definitions"]]
        locations = {
            model.name: loc
            for model, entry in zip(models, document["definitions"])
            if (loc := _location(entry.get("location", ""))) is not None
        }
        return SavedPlan(
            registry=RegistrySpec(tuple(sorted(models, key=lambda m: m.name)), locations),
            state_fingerprint=document["state_fingerprint"],
            spec_fingerprint=document["spec_fingerprint"],
            keys_digest=document["keys"]["digest"],
            keys_unknown=tuple(document["keys"]["unknown"]),
            allow_delete_all=bool(document.get("allow_delete_all")),
            actions=tuple(document["plan"]["actions"]),
            directory=str(document.get("directory", "")),
            created_at=str(document.get("created_at", "")),
            target=Target(
                database=str(document["target"]["database"]),
                environment=document["target"]["environment"],
                revision=document["target"]["revision"],
                database_identity=str(document["target"]["database_identity"]),
            ),
        )
    except (KeyError, TypeError, ValidationError):
        raise RegistryError(f"{path} is a damaged plan file; re-run plan --out") from None


def check_saved_target(saved: SavedPlan, database_identity: str, environment: str | None) -> None:
    """Refuse (RegistryError) a plan made for another database or another environment.

    The database is compared by identity (cluster system identifier + database name),
    not by URL: the same database reached by another host name is the same, and
    another database with an identical registry is not.
    """
    if saved.target.database_identity != database_identity:
        raise RegistryError(
            f"this plan was made for another database ({saved.target.database}); it applies only there. "
            "Nothing was written: make a plan against this database"
        )
    if environment is not None and saved.target.environment != environment:
        raise RegistryError(
            f"this plan was made for environment {saved.target.environment or '(none)'!r}, not {environment!r}. "
            "Nothing was written: make a plan with --environment " + environment
        )


def check_saved_plan(saved: SavedPlan, current: Plan) -> None:
    """Refuse (RegistryError) unless `current`, re-planned now, is the plan that was saved."""
    stale = "plan is stale: re-run plan"
    if current.state_fingerprint != saved.state_fingerprint:
        raise RegistryError(f"{stale} (the database has changed since the plan was made)")
    if keys_digest({n: fp for n, fp in current.key_fingerprints.items() if n not in saved.keys_unknown}) != saved.keys_digest:
        raise RegistryError(f"{stale} (an API key is not the one the plan was made with)")
    now = comparable_actions(plan_to_json_data(current))
    then = comparable_actions({"actions": saved.actions})
    if now != then:
        moved = [n for n in saved.keys_unknown if any(a[1] == n and any(c[2] == KEY_CHANGED for c in a[3]) for a in now)]
        detail = (
            f"the key of {', '.join(moved)} was not known when the plan was made and differs from the stored one"
            if moved
            else "applying it now would not do what the plan showed"
        )
        raise RegistryError(f"{stale} ({detail})")
