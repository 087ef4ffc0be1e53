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


def _yaml_blocks(document: Path) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", document.read_text(), flags=re.S)


def test_the_environment_workflows_set_every_variable_their_registry_reads() -> None:
    """docs/environments.md's plan job and staging apply job, copied as they are, must resolve
    every `${env:NAME}` of the page's example registry (else apply stops at plan time)."""
    import yaml

    blocks = _yaml_blocks(REPO / "docs" / "environments.md")
    registry = next(block for block in blocks if block.lstrip().startswith(("version:", "# registry.d/common")))
    references = re.findall(r"^\s*(\w+): \$\{env:([A-Za-z_][A-Za-z0-9_]*)\}", registry, flags=re.M)
    # A plan resolves endpoints and versions; keys it may leave unknown (a plan job holds none).
    resolved_by_plan = {name for field, name in references if field != "api_key"}
    read_by_apply = {name for _, name in references}
    assert resolved_by_plan and read_by_apply > resolved_by_plan, "the page's example lost its references"
    plan = yaml.safe_load(next(block for block in blocks if "registry-plan.yml" in block))
    apply = yaml.safe_load(next(block for block in blocks if "registry-apply.yml" in block))
    assert resolved_by_plan - set(plan["jobs"]["plan"]["env"]) == set()
    assert read_by_apply - set(apply["jobs"]["staging"]["env"]) == set()
