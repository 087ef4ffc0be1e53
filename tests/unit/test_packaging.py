"""Packaging facts a user relies on: our own distribution name, real lower bounds, no foreign install advice."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def test_the_distribution_name_is_ours_and_the_command_unchanged() -> None:
    # `llm-registry` on the public index is an unrelated project (checked there before choosing).
    assert PYPROJECT["project"]["name"] == "llm-registry-reconciler"
    assert PYPROJECT["project"]["scripts"] == {"llm-registry": "reconciler.cli:main"}
    assert (REPO / "reconciler" / "__main__.py").exists()


def _lower_bounds() -> dict[str, str]:
    requirements = [*PYPROJECT["project"]["dependencies"], *PYPROJECT["project"]["optional-dependencies"]["dev"]]
    bounds: dict[str, str] = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[([a-z,]+)\])?>=([0-9][0-9a-z.]*)(?:,<[0-9a-z.]+)?", requirement)
        assert match, f"{requirement!r}: every dependency has a lower bound (>=X, optionally <Y)"
        name, extras, version = match.groups()
        bounds[name.lower()] = version
        if name.lower() == "psycopg" and extras == "binary":
            bounds["psycopg-binary"] = version
    return bounds


def test_the_minimum_constraints_pin_exactly_the_declared_lower_bounds() -> None:
    lines = [line.split("#")[0].strip() for line in (REPO / "constraints" / "minimum.txt").read_text().splitlines()]
    pinned = {name: Version(version) for name, version in (line.lower().split("==") for line in lines if line)}
    assert pinned == {name: Version(version) for name, version in _lower_bounds().items()}


def test_nothing_tells_a_user_to_install_someone_elses_package() -> None:
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    foreign = re.compile(r"pip3? install\s+(?:-[-\w]+\s+)*[\"']?llm-registry(?![-\w])")
    offenders = [
        name
        for name in files
        if (REPO / name).is_file() and name != "tests/unit/test_packaging.py" and foreign.search((REPO / name).read_text(errors="ignore"))
    ]
    assert offenders == []
