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


def _locked() -> dict[str, tuple[Version, int]]:
    """action/requirements.lock: name -> (version, number of hashes)."""
    text = (REPO / "action" / "requirements.lock").read_text()
    entries = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)[^\n]*\\\n((?:\s+--hash=sha256:[0-9a-f]{64}[ \\]*\n)+)", text, flags=re.M)
    return {name.lower().replace("_", "-"): (Version(version), hashes.count("--hash=")) for name, version, hashes in entries}


def test_the_action_installs_only_what_the_lock_pins_by_hash() -> None:
    """The action's job holds the writer's URL, the passphrase and the keys: every package it
    installs is pinned with its hashes at the commit the workflow names (scripts/lock.sh)."""
    locked = _locked()
    bounds = {name.replace("_", "-"): version for name, version in _lower_bounds().items()}
    runtime = {re.split(r"[\[>=<]", requirement)[0].lower() for requirement in PYPROJECT["project"]["dependencies"]}
    for name in sorted(runtime | {"psycopg-binary", "setuptools", "wheel"}):
        assert name in locked, f"{name} is not in action/requirements.lock: run scripts/lock.sh"
        version, hashes = locked[name]
        assert hashes >= 1 and version >= Version(bounds.get(name, "0")), name
    install = (REPO / "action" / "install.sh").read_text()
    assert "--require-hashes --no-deps -r \"${GITHUB_ACTION_PATH:?}/action/requirements.lock\"" in install
    assert "--no-deps --no-build-isolation \"$GITHUB_ACTION_PATH\"" in install
