"""Saved plans (`plan --out PLANFILE`, `apply PLANFILE`).

A plan file holds the definitions that were planned (key *references*, never keys),
the fingerprint of the database state the plan read, a digest of the key
fingerprints it compared, and the plan itself as its JSON document. `apply` re-plans
the saved definitions against the database under its lock and refuses unless the
state fingerprint, the key digest and the resulting actions are those that were saved.

A plan file cannot be edited, consistently or not: it carries `mac`, an
HMAC-SHA256 over its canonical JSON under a key derived from
`LLM_REGISTRY_ENCRYPTION_KEY` (`HMAC(passphrase, "llm-registry/plan-file/v1")`, kept
apart from the key fingerprints' derivation). Whoever can change the file (an
artifact store, a shared disk) but does not hold the passphrase cannot make a MAC
that `apply` accepts. So `plan --out` and `apply PLANFILE` both need the passphrase,
even for a registry without keys (apply needs it anyway for any key). On top of the
MAC, `spec_fingerprint` must be the digest of the saved definitions, and the saved
definitions pass the same reference rules as `validate` (references.py).
"""

from __future__ import annotations

import hashlib
import hmac
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
from reconciler.references import endpoint_credentials_problem, refused_variable, refused_variable_message
from reconciler.plan import KEY_CHANGED, KEY_SET, KEY_UNKNOWN, Plan
from reconciler.render import plan_to_json_data
from reconciler.spec import MODEL_ADAPTER, RegistrySpec, env_reference_name
from reconciler.target import Target

PLANFILE_KIND = "llm-registry-plan"
PLANFILE_VERSION = 1
PASSPHRASE_ENV = "LLM_REGISTRY_ENCRYPTION_KEY"  # secrets.ENCRYPTION_KEY_ENV, without importing it here
_MAC_CONTEXT = b"llm-registry/plan-file/v1"


def signing_passphrase(environ: Mapping[str, str]) -> str:
    """The passphrase that signs and checks plan files; a RegistryError naming the variable when unset."""
    passphrase = environ.get(PASSPHRASE_ENV, "")
    if not passphrase:
        raise RegistryError(
            f"{PASSPHRASE_ENV} is not set: plan files are signed with a key derived from it, so that "
            "apply can refuse a plan file edited after plan wrote it; set it where plan --out and apply PLANFILE run"
        )
    return passphrase


def _canonical(document: Mapping[str, Any]) -> bytes:
    body = {key: value for key, value in document.items() if key != "mac"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def document_mac(document: Mapping[str, Any], passphrase: str) -> str:
    """HMAC-SHA256 (hex) of a plan document without its `mac`, under the plan-file key of `passphrase`."""
    key = hmac.new(passphrase.encode("utf-8"), _MAC_CONTEXT, hashlib.sha256).digest()
    return hmac.new(key, _canonical(document), hashlib.sha256).hexdigest()


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
    targets: tuple[str, ...] = ()  # --target of the plan (its JSON's "targets"): apply re-plans with them


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
    path: Path,
    plan: Plan,
    registry: RegistrySpec,
    *,
    directory: str,
    allow_delete_all: bool,
    target: Target,
    passphrase: str,
) -> None:
    """Save the plan, bound to `target`'s database and signed (see the module docstring).

    A regular file (or a new one) is replaced atomically, so a reader never sees half
    a file. A path that exists and is not a regular file (a FIFO, /dev/stdout, a
    terminal) is written into, never replaced; a directory or socket is refused.
    """
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
    # The MAC covers the document as a reader will parse it (after default=str).
    document = json.loads(json.dumps(document, default=str))
    document["mac"] = document_mac(document, passphrase)
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    _write_output(path, text)


def _write_output(path: Path, text: str) -> None:
    """Write `text` to `path`: atomically for a regular file, into it for a device or FIFO."""
    import stat

    try:
        mode = os.stat(path).st_mode  # follows a symlink: its target is what gets written
    except FileNotFoundError:
        mode = None
    except OSError as error:
        raise RegistryError(f"cannot write the plan file {path}: {error.strerror or type(error).__name__}") from None
    if mode is not None and not stat.S_ISREG(mode):
        if stat.S_ISDIR(mode) or stat.S_ISSOCK(mode):
            raise RegistryError(f"cannot write the plan file to {path}: it is a {'directory' if stat.S_ISDIR(mode) else 'socket'}")
        # A FIFO, /dev/null, /dev/stdout: write into it, never replace it with a file.
        with open(path, "w") as out:
            out.write(text)
        return
    target = path.resolve() if path.is_symlink() else path  # replace the file a symlink names, keep the link
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _location(text: str) -> Location | None:
    file, _, rest = text.rpartition(":")
    file, _, line = file.rpartition(":")
    if not file or not line.isdigit() or not rest.isdigit():
        return None
    return Location(file, int(line), int(rest))


def read_planfile(path: Path, passphrase: str) -> SavedPlan:
    """Read a plan file and check its MAC; a RegistryError says why one is unusable.

    Nothing in the file is trusted before its MAC is checked under `passphrase`.
    """
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as error:
        raise RegistryError(f"{path} is not a readable plan file ({type(error).__name__}); re-run plan --out") from None
    if not isinstance(document, dict) or document.get("kind") != PLANFILE_KIND:
        raise RegistryError(f"{path} is not an llm-registry plan file")
    if document.get("format_version") != PLANFILE_VERSION:
        raise RegistryError(
            f"{path} has plan format {document.get('format_version')!r}; this llm-registry reads {PLANFILE_VERSION}: re-run plan"
        )
    if document.get("llm_registry_version") != __version__:
        # Digests and checks may differ between versions: a plan is applied by the version that made it.
        # The field is not trusted yet (no MAC checked): shown as a short repr, never whole.
        written_by = repr(document.get("llm_registry_version"))[:40]
        raise RegistryError(f"{path} was written by llm-registry {written_by}; this is {__version__}: re-run plan --out with this version")
    mac = document.get("mac")
    if not isinstance(mac, str) or not hmac.compare_digest(mac, document_mac(document, passphrase)):
        raise RegistryError(
            f"{path} was changed after plan wrote it, or signed under another {PASSPHRASE_ENV}: "
            "refusing to apply it; re-run plan --out"
        )
    try:
        models = [MODEL_ADAPTER.validate_python(entry["definition"]) for entry in document["definitions"]]
        locations = {
            model.name: loc
            for model, entry in zip(models, document["definitions"])
            if (loc := _location(entry.get("location", ""))) is not None
        }
        saved = SavedPlan(
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
            targets=tuple(str(name) for name in document["plan"].get("targets", [])),
        )
    except (KeyError, TypeError, ValidationError):
        raise RegistryError(f"{path} is a damaged plan file; re-run plan --out") from None
    _check_saved_definitions(path, saved)
    return saved


def _check_saved_definitions(path: Path, saved: SavedPlan) -> None:
    """The saved definitions are those the plan digested, and pass validate's reference rules."""
    from reconciler.plan import spec_fingerprint

    if spec_fingerprint(saved.registry) != saved.spec_fingerprint:
        raise RegistryError(f"{path}: the definitions do not match the plan's spec_fingerprint; re-run plan --out")
    for model in saved.registry.models:
        for field_name in ("api_key", "api_endpoint", "api_version"):
            value = getattr(model, field_name)
            name = env_reference_name(value) if isinstance(value, str) else None
            reason = refused_variable(name, field=field_name) if name else None
            if reason is not None:
                raise RegistryError(f"{path}: model {model.name!r}: {refused_variable_message(field_name, name or '', reason)}")
        if model.api_endpoint and endpoint_credentials_problem(model.api_endpoint):
            raise RegistryError(f"{path}: model {model.name!r}: api_endpoint holds credentials; re-run plan --out")


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
