"""registry.d/ is the example users copy: it must be valid and show the whole format."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from reconciler import spec
from reconciler.validate import ValidationResult, validate_directory

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "registry.d"
MODELINE = "# yaml-language-server: $schema="


@pytest.fixture(scope="module")
def result() -> ValidationResult:
    return validate_directory(REGISTRY)


def test_example_registry_is_valid_without_warnings(result: ValidationResult) -> None:
    assert result.ok, [f"{d.location}: {d.message}" for d in result.errors]
    assert result.warnings == ()
    assert result.spec is not None and len(result.files) >= 6


def test_every_provider_is_present(result: ValidationResult) -> None:
    assert result.spec is not None
    assert {m.provider for m in result.spec.models} == set(spec.PROVIDERS)


def test_both_main_types_and_an_ner_model(result: ValidationResult) -> None:
    assert result.spec is not None
    types = Counter(m.type for m in result.spec.models)
    assert types["embedding"] >= 2 and types["generation"] >= 2 and types["ner"] >= 1


def test_exactly_one_active_default_per_type(result: ValidationResult) -> None:
    assert result.spec is not None
    defaults = Counter(m.type for m in result.spec.models if m.default)
    assert defaults == Counter({t: 1 for t in spec.MODEL_TYPES})
    assert all(m.active for m in result.spec.models if m.default)


def test_no_literal_keys(result: ValidationResult) -> None:
    assert result.spec is not None
    for model in result.spec.models:
        assert model.api_key is None or spec.env_reference_name(model.api_key) is not None


@pytest.mark.parametrize("path", sorted(REGISTRY.rglob("*.y*ml")), ids=lambda p: p.name)
def test_every_file_carries_the_schema_modeline(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    assert first.startswith(MODELINE), f"{path.name}: first line must be the yaml-language-server modeline"
    target = (path.parent / first.removeprefix(MODELINE).strip()).resolve()
    assert target == ROOT / "schemas" / "registry.schema.json"
    assert target.is_file()


def test_every_diagnostic_code_is_documented() -> None:
    import re

    sources = "".join((ROOT / "reconciler" / name).read_text() for name in ("load.py", "validate.py"))
    codes = set(re.findall(r'(?:error|warning|_LoadError)\(\s*"([a-z0-9-]+)"', sources))
    assert len(codes) > 30
    documented = (ROOT / "docs" / "format.md").read_text()
    missing = sorted(code for code in codes if f"`{code}`" not in documented)
    assert missing == [], f"add these codes to docs/format.md: {missing}"
