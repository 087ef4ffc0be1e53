"""The pipeline as `plan`, `apply` and `test` run it: files -> spec -> (with state) -> plan.

Each step is a stage module; this module only wires them and resolves what comes
from the environment (key references, the passphrase) into plain values the pure
stages take.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence

from reconciler.diagnostics import Diagnostic, error
from reconciler.drift import mark_drift
from reconciler.errors import RegistryError
from reconciler.gc_pause import collector_paused
from reconciler.plan import KEY_UNKNOWN, Plan, compute_plan
from reconciler.policy import apply_policies
from reconciler.references import endpoint_credentials_problem
from reconciler.secrets import ENCRYPTION_KEY_ENV, key_fingerprint, resolve_reference, verify_passphrase
from reconciler.spec import RegistrySpec, env_reference_name, is_http_url
from reconciler.state import RegistryState
from reconciler.targeting import check_targets, limit_to_targets
from reconciler.validate import ValidationResult, validate_directories


class InvalidRegistry(RegistryError):
    """The registry files do not validate; the result holds every diagnostic."""

    def __init__(self, directory: Path | Sequence[Path], result: ValidationResult) -> None:
        count = len(result.errors)
        where = " ".join(str(d) for d in directory) if isinstance(directory, (list, tuple)) else str(directory)
        super().__init__(f"invalid registry: {count} error{'s' * (count != 1)} in {where}; nothing was done")
        self.result = result


def load_registry(
    directories: Path | Sequence[Path], environ: Mapping[str, str] | None = None
) -> tuple[RegistrySpec, ValidationResult]:
    """Validate the directories as one registry; raise InvalidRegistry (with the diagnostics) when invalid.

    With `environ`, the plan-time `${env:NAME}` references (api_endpoint,
    api_version) are resolved too; an unset variable or a value that is not valid
    there is an error at the reference's file:line.
    """
    paths = [directories] if isinstance(directories, Path) else list(directories)
    result = validate_directories(paths)
    if not result.ok or result.spec is None:
        raise InvalidRegistry(paths, result)
    if environ is None:
        return result.spec, result
    registry, problems = resolve_field_references(result.spec, environ)
    if problems:
        every = tuple(sorted([*result.diagnostics, *problems], key=Diagnostic.sort_key))
        raise InvalidRegistry(paths, replace(result, spec=None, diagnostics=every))
    return registry, replace(result, spec=registry)


def resolve_field_references(registry: RegistrySpec, environ: Mapping[str, str]) -> tuple[RegistrySpec, list[Diagnostic]]:
    """Put the values of `${env:NAME}` into api_endpoint / api_version; errors where they cannot be.

    Unlike API keys (resolved only at apply, never shown), these are configuration:
    resolved at plan time, checked as the field would be, and shown in the plan.
    """
    if not registry.references:
        return registry, []
    problems: list[Diagnostic] = []
    resolved = []
    updates: dict[str, dict[str, str]] = {}
    # These values are printed and stored in clear: one that is also a model's API key
    # (whatever its variable is called) must not become an endpoint or a version.
    key_values = {resolve_reference(ref, environ) for ref in {m.api_key for m in registry.models if m.api_key}} - {None}
    for reference in registry.references:
        value = environ.get(reference.variable)
        field_label = f"{reference.model}: {reference.field}"
        if value and value in key_values:
            problems.append(
                error(
                    "refused-variable",
                    f"{field_label}: ${{env:{reference.variable}}} holds the same value as an api_key of this "
                    f"registry; {reference.field} is printed in plans and stored in clear, so it may not hold a key",
                    reference.location,
                )
            )
            continue
        if not value:
            problems.append(
                error(
                    "unset-variable",
                    f"{field_label} is ${{env:{reference.variable}}}, which is not set (or empty) here; "
                    f"set {reference.variable} for this environment",
                    reference.location,
                )
            )
            continue
        if reference.field == "api_endpoint" and (len(value) > 2048 or not is_http_url(value)):
            problems.append(
                error(
                    "bad-value",
                    # The value is not repeated: a variable is no place to be sure there is no secret.
                    f"{field_label}: ${{env:{reference.variable}}} must hold an http:// or https:// URL "
                    f"(its value, {len(value)} characters, is not one; it is not shown)",
                    reference.location,
                )
            )
            continue
        if reference.field == "api_endpoint" and (problem := endpoint_credentials_problem(value)) is not None:
            # As validate refuses it in a file; from a variable it would be printed in the plan.
            problems.append(error("endpoint-credentials", f"{reference.model}: ${{env:{reference.variable}}}: {problem}", reference.location))
            continue
        if reference.field == "api_version" and len(value) > 64:
            problems.append(error("bad-value", f"{field_label}: ${{env:{reference.variable}}} is longer than 64 characters", reference.location))
            continue
        updates.setdefault(reference.model, {})[reference.field] = value
        resolved.append(replace(reference, value=value))
    if problems:
        return registry, problems
    models = tuple(
        model.model_copy(update=updates[model.name]) if model.name in updates else model for model in registry.models
    )
    return replace(registry, models=models, references=tuple(resolved)), []


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
    targets: Sequence[str] = (),
    fingerprints: bool = True,
) -> PlannedRun:
    """Compute the plan of `registry` against `state` and apply the policies.

    A passphrase that does not open the registry's passphrase check (or a stored key)
    is a RegistryError naming the variable: with it every key would look changed.
    With `targets`, only those models (and what they need) are planned; an unknown
    target is a RegistryError (targeting.py). `fingerprints=False`: a plan only shown,
    without its state and spec digests (`compute_plan`).
    """
    verify_passphrase(state.passphrase_probe, environ.get(ENCRYPTION_KEY_ENV) or None)
    if targets:
        check_targets(targets, registry, state)
    raw = compute_plan(registry, state, key_fingerprints(registry, environ), fingerprints=fingerprints)
    raw = replace(raw, resolved_references=tuple(ref for ref in registry.references if ref.value is not None))
    raw = mark_drift(raw, state)
    if targets:
        raw = limit_to_targets(raw, targets)
    references = {model.api_key for model in registry.models if model.api_key}  # a few distinct ones
    # Unset as resolve_reference sees it (an empty variable counts as unset).
    unset = tuple(sorted({env_reference_name(ref) or "" for ref in references if resolve_reference(ref, environ) is None}))
    with collector_paused():  # the policies simulate the plan: 10,000 rows' worth of objects, no cycles
        planned = apply_policies(replace(raw, unset_key_variables=unset), state, allow_delete_all=allow_delete_all)
    return PlannedRun(registry, state, planned)
