"""A simulated GitHub Actions runner: runs a workflow's job the way the runner does, on this machine.

Enough of the runner for the templates in .github/workflows/templates/ and action.yml:

- the job's steps in order, each `run:` with `bash -e` in the workspace, with the
  workflow's, the job's and the step's `env:`; a failing step fails the job and skips the
  rest (there is no `if: always()` in the templates);
- the files and variables the runner gives a step: GITHUB_OUTPUT (read back into
  `steps.<id>.outputs`), GITHUB_PATH (prepended to PATH for later steps),
  GITHUB_STEP_SUMMARY, GITHUB_EVENT_PATH, RUNNER_TEMP, CI=true, GITHUB_ACTIONS=true, ...;
- `${{ }}` expressions made of context paths (`secrets.X`, `inputs.X`, `github.X`,
  `steps.X.outputs.Y`, `env.X`, `vars.X`) and `a != ''` / `a == 'b'` in `if:`;
- `uses:` of this repository's action (`./` or `*/llm-registry@*`) runs action.yml's
  composite steps with GITHUB_ACTION_PATH at this checkout; `actions/checkout` and
  `actions/setup-python` are no-ops (the workspace and Python are already there).

The action's install step finds a virtualenv already in RUNNER_TEMP (as when the action
runs twice in one job) whose `llm-registry` runs this interpreter's reconciler, so a
test does not build the package again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

REPO = Path(__file__).resolve().parents[2]
_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_COMPARISON = re.compile(r"^(.+?)\s*(==|!=)\s*(.+)$")


@dataclass
class StepResult:
    """One step as the run log shows it."""

    name: str
    exit_code: int
    output: str
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class JobResult:
    """A job's outcome: its steps, whether it succeeded, the job summary."""

    steps: list[StepResult]
    summary: str

    @property
    def succeeded(self) -> bool:
        """True when every step that ran succeeded."""
        return all(step.exit_code == 0 for step in self.steps)

    @property
    def log(self) -> str:
        """Every step's output, as the run log would show it."""
        return "\n".join(f"## {step.name} (exit {step.exit_code})\n{step.output}" for step in self.steps)

    def step(self, name_part: str) -> StepResult:
        """The step whose name contains `name_part`."""
        return next(step for step in self.steps if name_part in step.name)


class SimulatedRunner:
    """Runs one job of a workflow file in `workspace`, with `secrets` and an event."""

    def __init__(self, workspace: Path, runner_temp: Path, *, secrets: Mapping[str, str], base_env: Mapping[str, str]) -> None:
        self.workspace = workspace
        self.temp = runner_temp
        self.secrets = dict(secrets)
        self.base_env = dict(base_env)
        self.temp.mkdir(parents=True, exist_ok=True)
        self._install_venv()

    def _venv(self) -> Path:
        # Named as action/install.sh names it: by a digest of the action's checkout path.
        return self.temp / f"llm-registry-venv-{hashlib.sha256(str(REPO).encode()).hexdigest()[:16]}"

    def _install_venv(self) -> None:
        bindir = self._venv() / "bin"
        bindir.mkdir(parents=True, exist_ok=True)
        wrapper = bindir / "llm-registry"
        wrapper.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m reconciler \"$@\"\n")
        wrapper.chmod(0o755)

    # -- expressions

    def _lookup(self, path: str, contexts: Mapping[str, Any]) -> Any:
        value: Any = contexts
        for part in path.split("."):
            if not isinstance(value, Mapping):
                return ""
            value = value.get(part, "")
        return value

    def _evaluate(self, expression: str, contexts: Mapping[str, Any]) -> Any:
        expression = expression.strip()
        comparison = _COMPARISON.match(expression)
        if comparison:
            left, operator, right = comparison.groups()
            equal = str(self._evaluate(left, contexts)) == str(self._evaluate(right, contexts))
            return equal if operator == "==" else not equal
        if expression.startswith("'") and expression.endswith("'"):
            return expression[1:-1]
        return self._lookup(expression, contexts)

    def _substitute(self, value: Any, contexts: Mapping[str, Any]) -> str:
        text = str(value)
        whole = _EXPRESSION.fullmatch(text.strip())
        if whole:
            result = self._evaluate(whole.group(1), contexts)
            if isinstance(result, bool):
                return "true" if result else "false"
            if isinstance(result, (dict, list)):
                return json.dumps(result)
            return "" if result is None else str(result)
        return _EXPRESSION.sub(lambda m: str(self._evaluate(m.group(1), contexts)), text)

    def _condition(self, condition: Any, contexts: Mapping[str, Any]) -> bool:
        if condition is None:
            return True
        text = str(condition).strip()
        match = _EXPRESSION.fullmatch(text)
        return bool(self._evaluate(match.group(1) if match else text, contexts))

    # -- running

    def run(self, workflow: Path, *, event_name: str, event: Mapping[str, Any], sha: str, inputs: Mapping[str, str] | None = None) -> JobResult:
        """Run the workflow's (only) job for this event."""
        document = yaml.safe_load(workflow.read_text())
        [job] = document["jobs"].values()
        event_path = self.temp / "event.json"
        event_path.write_text(json.dumps(event))
        summary = self.temp / "step_summary.md"
        summary.write_text("")
        path_file = self.temp / "github_path"
        path_file.write_text("")
        dispatch_inputs = {
            name: (inputs or {}).get(name, spec.get("default", ""))
            for name, spec in ((document.get(True) or document.get("on") or {}).get("workflow_dispatch") or {}).get("inputs", {}).items()
        }
        github = {
            "event_name": event_name, "event": dict(event), "sha": sha, "repository": self.base_env.get("GITHUB_REPOSITORY", ""),
            "token": self.base_env.get("GITHUB_TOKEN", ""), "workspace": str(self.workspace), "actor": "octocat",
        }  # fmt: skip
        env = {
            **self.base_env,
            "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": event_name, "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_SHA": sha, "GITHUB_WORKSPACE": str(self.workspace), "RUNNER_TEMP": str(self.temp),
            "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_PATH": str(path_file), "GITHUB_ACTOR": "octocat",
        }  # fmt: skip
        contexts: dict[str, Any] = {"secrets": self.secrets, "github": github, "inputs": dispatch_inputs, "vars": {}, "steps": {}}
        contexts["env"] = {}
        for scope in (document.get("env") or {}, job.get("env") or {}):
            for name, value in scope.items():
                env[name] = self._substitute(value, {**contexts, "env": env})
        results: list[StepResult] = []
        for index, step in enumerate(job["steps"]):
            contexts["env"] = env
            if not self._condition(step.get("if"), contexts):
                continue
            result = self._step(step, index, env, contexts, path_file)
            results.append(result)
            if step.get("id"):
                contexts["steps"][step["id"]] = {"outputs": result.outputs}
            if result.exit_code != 0:
                break
        made = sorted(p.name for p in self.temp.glob("llm-registry-venv*") if p != self._venv())
        assert made == [], f"install.sh made {made}: _venv() no longer names its virtualenv as it does"
        return JobResult(results, summary.read_text())

    def _step(self, step: Mapping[str, Any], index: int, env: dict[str, str], contexts: dict[str, Any], path_file: Path) -> StepResult:
        name = self._substitute(step.get("name") or step.get("uses") or step.get("run", "").splitlines()[0], contexts)
        step_env = {**env, **{k: self._substitute(v, contexts) for k, v in (step.get("env") or {}).items()}}
        uses = step.get("uses")
        if uses:
            if uses.startswith(("actions/checkout@", "actions/setup-python@")):
                return StepResult(name, 0, f"(simulated: {uses.split('@')[0]})")
            if uses == "./" or uses.split("@")[0].endswith("/llm-registry"):
                inputs = {k: self._substitute(v, contexts) for k, v in (step.get("with") or {}).items()}
                return self._composite(name, inputs, step_env, contexts, path_file)
            raise AssertionError(f"the simulated runner does not know the action {uses}")
        script = self._substitute(step["run"], contexts)
        return self._shell(name, script, step_env, path_file, f"step{index}")

    def _shell(self, name: str, script: str, env: Mapping[str, str], path_file: Path, label: str, cwd: Path | None = None) -> StepResult:
        output_file = self.temp / f"output-{label}"
        output_file.write_text("")
        extra_path = [line for line in path_file.read_text().splitlines() if line.strip()]
        full_env = {**env, "GITHUB_OUTPUT": str(output_file)}
        full_env["PATH"] = os.pathsep.join([*reversed(extra_path), env.get("PATH", os.environ.get("PATH", ""))])
        completed = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=cwd or self.workspace, env=full_env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        outputs = dict(line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line)
        return StepResult(name, completed.returncode, completed.stdout + completed.stderr, outputs)

    def _composite(self, name: str, given: Mapping[str, str], env: dict[str, str], contexts: dict[str, Any], path_file: Path) -> StepResult:
        action = yaml.safe_load((REPO / "action.yml").read_text())
        inputs = {k: str(spec.get("default", "")) for k, spec in action["inputs"].items()}
        inputs = {k: self._substitute(v, contexts) for k, v in inputs.items()}
        unknown = set(given) - set(inputs)
        assert not unknown, f"inputs not declared by action.yml: {unknown}"
        inputs.update(given)
        inner: dict[str, Any] = {**contexts, "inputs": inputs, "steps": {}}
        logs: list[str] = []
        for index, step in enumerate(action["runs"]["steps"]):
            if not self._condition(step.get("if"), inner):
                continue
            if "uses" in step:
                assert step["uses"].startswith("actions/setup-python@"), step["uses"]
                continue
            step_env = {**env, "GITHUB_ACTION_PATH": str(REPO)}
            step_env.update({k: self._substitute(v, inner) for k, v in (step.get("env") or {}).items()})
            result = self._shell(str(step.get("name", "")), self._substitute(step["run"], inner), step_env, path_file, f"action{index}")
            logs.append(result.output)
            if step.get("id"):
                inner["steps"][step["id"]] = {"outputs": result.outputs}
            if result.exit_code != 0:
                return StepResult(name, result.exit_code, "\n".join(logs), self._action_outputs(action, inner))
        return StepResult(name, 0, "\n".join(logs), self._action_outputs(action, inner))

    def _action_outputs(self, action: Mapping[str, Any], inner: Mapping[str, Any]) -> dict[str, str]:
        return {name: self._substitute(spec["value"], inner) for name, spec in action.get("outputs", {}).items()}
