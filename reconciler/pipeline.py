"""The pipeline as `plan`, `apply` and `test` run it: files -> spec -> (with state) -> plan.

Each step is a stage module; this module only wires them and resolves what comes
from the environment (key references, the passphrase) into plain values the pure
stages take.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

from reconciler.errors import RegistryError
from reconciler.gc_pause import collector_paused
from reconciler.plan import KEY_UNKNOWN, Plan, compute_plan
from reconciler.policy import apply_policies
from reconciler.secrets import ENCRYPTION_KEY_ENV, key_fingerprint, resolve_reference, verify_passphrase
from reconciler.spec import RegistrySpec, env_reference_name
from reconciler.state import RegistryState
from reconciler.validate import ValidationResult, validate_directory


class InvalidRegistry(RegistryError):
    """The registry files do not validate; the result holds every diagnostic."""

    def __init__(self, directory: Path, result: ValidationResult) -> None:
        count = len(result.errors)
        super().__init__(f"invalid registry: {count} error{'s' * (count != 1)} in {directory}; nothing was done")
        self.result = result


def load_registry(directory: Path) -> tuple[RegistrySpec, ValidationResult]:
    """Validate the directory; raise InvalidRegistry (with the diagnostics) when it is not valid."""
    result = validate_directory(directory)
    if not result.ok or result.spec is None:
        raise InvalidRegistry(directory, result)
    return result.spec, result


def key_fingerprints(registry: RegistrySpec, environ: Mapping[str, str]) -> dict[str, str]:
    """Per model with a key reference: the keyed fingerprint of the resolved key, or KEY_UNKNOWN.

    Unknown when the variable is unset or when the passphrase is, since the
    fingerprint is keyed by it. Plan-time unknowns are not errors (DESIGN.md, Secrets).
    """
    passphrase = environ.get(ENCRYPTION_KEY_ENV) or None
    fingerprints: dict[str, str] = {}
    by_reference: dict[str, str] = {}  # many models share one key: one HMAC per reference
    for model in registry.models:
        if model.api_key is None:
            continue
        fingerprint = by_reference.get(model.api_key)
        if fingerprint is None:
            value = resolve_reference(model.api_key, environ)
            fingerprint = key_fingerprint(value, passphrase) if value and passphrase else KEY_UNKNOWN
            by_reference[model.api_key] = fingerprint
        fingerprints[model.name] = fingerprint
    return fingerprints


@dataclass(frozen=True)
class PlannedRun:
    """A plan with what it was computed from."""

    registry: RegistrySpec
    state: RegistryState
    plan: Plan


def plan_registry(
    registry: RegistrySpec,
    state: RegistryState,
    environ: Mapping[str, str],
    *,
    allow_delete_all: bool = False,
) -> PlannedRun:
    """Compute the plan of `registry` against `state` and apply the policies.

    A passphrase that does not open the registry's passphrase check (or a stored key)
    is a RegistryError naming the variable: with it every key would look changed.
    """
    verify_passphrase(state.passphrase_probe, environ.get(ENCRYPTION_KEY_ENV) or None)
    raw = compute_plan(registry, state, key_fingerprints(registry, environ))
    variables = {env_reference_name(model.api_key) for model in registry.models if model.api_key}
    unset = tuple(sorted(name for name in variables if name and not environ.get(name)))
    with collector_paused():  # the policies simulate the plan: 10,000 rows' worth of objects, no cycles
        planned = apply_policies(replace(raw, unset_key_variables=unset), state, allow_delete_all=allow_delete_all)
    return PlannedRun(registry, state, planned)
