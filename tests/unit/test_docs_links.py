"""Every relative link in README.md and docs/*.md points to a path that exists in the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(REPO)))
def test_relative_links_resolve(document: Path) -> None:
    missing = []
    for target in _LINK.findall(document.read_text()):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # a URL or an anchor in the same file
        path = target.split("#", 1)[0]
        if not (document.parent / path).exists():
            missing.append(target)
    assert missing == []


def test_readme_links_the_acceptance_criteria_and_the_roles() -> None:
    readme = (REPO / "README.md").read_text()
    assert "](docs/acceptance.md)" in readme and "](docs/roles.md)" in readme
