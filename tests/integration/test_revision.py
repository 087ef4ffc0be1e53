"""The source revision apply records: git HEAD of the registry, marked -dirty when it has uncommitted changes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from reconciler.target import default_revision
from tests.factories import ner_model, write_registry_file


def _git(repo: Path, *args: str) -> str:
    completed = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return completed.stdout.strip()


def test_clean_head_then_dirty_when_the_registry_changes(tmp_path: Path) -> None:
    registry = tmp_path / "registry.d"
    path = write_registry_file(registry, [ner_model(name="ner", default=True)])
    (tmp_path / "elsewhere.txt").write_text("not the registry\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "registry.d")
    _git(tmp_path, "commit", "-q", "-m", "registry")
    head = _git(tmp_path, "rev-parse", "HEAD")

    # An untracked file outside the registry directory does not make it dirty.
    assert default_revision({}, registry) == head
    path.write_text(path.read_text().replace("gliner", "gliner-v2"))
    assert default_revision({}, registry) == f"{head}-dirty"
    _git(tmp_path, "add", "registry.d")  # staged but not committed: still not HEAD
    assert default_revision({}, registry) == f"{head}-dirty"
    write_registry_file(registry, [ner_model(name="other")], "new.yaml")
    _git(tmp_path, "commit", "-q", "-m", "more")
    assert default_revision({}, registry) == f"{_git(tmp_path, 'rev-parse', 'HEAD')}-dirty"  # new.yaml is untracked


def test_github_sha_wins_and_no_git_means_unknown(tmp_path: Path) -> None:
    assert default_revision({"GITHUB_SHA": "abc"}, tmp_path) == "abc"
    assert default_revision({}, tmp_path) is None
