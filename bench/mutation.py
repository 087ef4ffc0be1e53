"""Mutation testing: does the test suite notice when the code is wrong?

For each target module it makes small, plausible bugs (mutants), one at a time, in a
scratch copy of the repository, runs the tests that cover the module with
`pytest -x` (the leading unit-test files first, then the rest), and counts a mutant
as killed when they fail (or time out), survived when they pass. Prints the score per
module and every survivor with its line.

    .venv/bin/python bench/mutation.py                          # every target, every mutant (hours)
    .venv/bin/python bench/mutation.py --module plan --module policy
    .venv/bin/python bench/mutation.py --sample 40 --seed 7     # 40 random mutants per module
    .venv/bin/python bench/mutation.py --list --module spec     # list the mutants (with indexes), run nothing
    .venv/bin/python bench/mutation.py --module apply --index 17 --index 40   # rerun chosen mutants
    .venv/bin/python bench/mutation.py --json results.json      # also write every outcome

Mutations (AST level, so docstrings and comments are never touched):
comparison operators flipped (== !=, < <=, > >=, in / not in, is / is not),
`and` <-> `or`, `not x` -> `x`, True <-> False, integer constants +1, `+` <-> `-`,
an element dropped from a literal tuple/list/set of constants (e.g. a field of
RECORD_FIELDS), a statement replaced by `pass` (a call, an assignment, an append,
a `continue`/`raise`), an `if` condition forced to True/False.

Survivors that cannot change behaviour (equivalent mutants) or are accepted are
listed in BENCHMARKS.md with the reason; `--accepted FILE` leaves them out of the
score. Its entries are `module:source line:description` (the mutated line's text,
stripped, so that edits elsewhere in the module keep them valid), each optionally
followed by `  # reason`; `--list` shows the key of every mutant, and entries that
match no mutant any more are reported. Not part of CI: a full run takes hours on
two cores.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]

# module -> the tests that cover it (run with -x: the first failure kills the mutant)
TARGETS: dict[str, list[str]] = {
    "plan": ["tests/unit/test_plan.py", "tests/unit/test_plan_properties.py", "tests/unit/test_render.py",
             "tests/unit/test_policy.py", "tests/unit/test_targeting.py", "tests/cli/test_plan_cases.py"],
    "policy": ["tests/unit/test_policy.py", "tests/unit/test_plan.py", "tests/cli/test_plan_cases.py"],
    "validate": ["tests/unit/test_validate.py", "tests/unit/test_load.py", "tests/unit/test_examples.py",
                 "tests/cli/test_validate.py"],
    "spec": ["tests/unit/test_spec.py", "tests/unit/test_export.py", "tests/unit/test_validate.py", "tests/unit/test_plan.py",
             "tests/unit/test_policy.py", "tests/unit/test_plan_properties.py", "tests/cli/test_schema.py",
             "tests/cli/test_plan_cases.py", "tests/cli/test_apply_failures.py", "tests/cli/test_apply_updates.py"],
    # Every test file that drives apply (through the CLI or apply_registry), broad and quick
    # ones first so that most mutants die within seconds; the fault trials last.
    "apply": ["tests/cli/test_apply.py", "tests/integration/test_lock.py", "tests/integration/test_apply_run.py",
              "tests/cli/test_apply_outcomes.py", "tests/integration/test_writes.py", "tests/cli/test_apply_updates.py",
              "tests/cli/test_apply_audit_paths.py", "tests/cli/test_cli_consistency.py", "tests/cli/test_day_two.py",
              "tests/cli/test_planfile_trust.py", "tests/cli/test_target.py", "tests/cli/test_environments.py",
              "tests/cli/test_roles.py", "tests/cli/test_apply_failures.py", "tests/faults"],
    # apply's write stage (set-based writes, the row-by-row replay, audit events): the
    # direct tests first, then every CLI and integration test that writes rows or reads
    # their audit events; the slow failure cases (the refused row) last.
    "writes": ["tests/integration/test_writes.py", "tests/cli/test_apply.py", "tests/cli/test_apply_updates.py",
               "tests/cli/test_apply_audit_paths.py", "tests/cli/test_audit.py", "tests/cli/test_audit_filters.py",
               "tests/integration/test_audit.py", "tests/cli/test_apply_outcomes.py", "tests/cli/test_day_two.py",
               "tests/cli/test_rotate.py", "tests/cli/test_trust_output.py", "tests/integration/test_apply_run.py",
               "tests/integration/test_pgp.py", "tests/cli/test_admin_page_takeover.py", "tests/cli/test_apply_failures.py"],
    # The secrets edge: a key must never leak (scrub), be stored unreadable (pgp, secrets)
    # or be applied from a plan file nobody signed (planfile).
    "scrub": ["tests/unit/test_scrub.py", "tests/unit/test_connection_pure.py", "tests/cli/test_canary.py"],
    "references": ["tests/unit/test_trust_rules.py", "tests/unit/test_validate.py", "tests/cli/test_references.py",
                   "tests/cli/test_environments.py", "tests/cli/test_export.py"],
    "github": ["tests/integration/test_github.py", "tests/cli/test_pr_comment.py"],
    "pgp": ["tests/unit/test_pgp.py", "tests/integration/test_pgp.py", "tests/unit/test_secrets.py",
            "tests/integration/test_writes.py", "tests/cli/test_rotate.py"],
    "secrets": ["tests/unit/test_secrets.py", "tests/integration/test_secrets.py", "tests/integration/test_state.py",
                "tests/cli/test_rotate.py", "tests/cli/test_canary.py", "tests/cli/test_server_log.py",
                "tests/cli/test_apply.py", "tests/cli/test_admin_page_takeover.py", "tests/integration/test_legacy.py"],
    # Connection tests: classification, messages scrubbed of the key, LiteLLM tamed and
    # the executor that builds its requests on the loop; the pure tests first.
    "connection": ["tests/unit/test_connection_pure.py", "tests/integration/test_connection_executor.py",
                   "tests/integration/test_connection.py", "tests/integration/test_connection_bookkeeping.py",
                   "tests/integration/test_connection_imports.py", "tests/cli/test_test_command.py",
                   "tests/cli/test_canary.py", "tests/integration/test_requested_dimensions.py"],
    "planfile": ["tests/unit/test_plan.py", "tests/cli/test_planfile_trust.py", "tests/cli/test_plan_output.py",
                 "tests/cli/test_target.py", "tests/cli/test_apply_audit_paths.py", "tests/cli/test_apply_failures.py",
                 "tests/cli/test_canary.py", "tests/cli/test_day_two.py"],
}

# module -> environment of its test runs. One random trial per fault instead of three:
# the fault tests still run every kind of fault, in a third of the time.
TARGET_ENV: dict[str, dict[str, str]] = {"apply": {"LLM_REGISTRY_FAULT_TRIALS": "1"}}


@dataclass(frozen=True)
class Mutant:
    """One bug: where (line, and its text), what (description), and the index of the node it changes."""

    module: str
    line: int
    source: str  # the text of that line, stripped: what bench/mutation-accepted.txt matches
    description: str
    index: int  # the n-th mutation point of the module, in walk order
    nth: int = 1  # 2, 3, ... for the later mutants whose source text and description repeat an earlier one's

    @property
    def key(self) -> str:
        """`module:source line:description` (then ` [n]` for a repeat), the form of an entry of the accepted list."""
        return f"{self.module}:{self.source}:{self.description}" + (f" [{self.nth}]" if self.nth > 1 else "")


@dataclass(frozen=True)
class Outcome:
    """A mutant and what the tests did about it."""

    mutant: Mutant
    status: str  # killed | survived | timeout | error
    seconds: float


_FLIP_COMPARE = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE,
                 ast.GtE: ast.Gt, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}


def _is_docstring(node: ast.AST, parent: ast.AST | None) -> bool:
    return (
        isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        and parent is not None and getattr(parent, "body", [None])[0] is node
    )


def _points(tree: ast.AST) -> Iterator[tuple[ast.AST, str, object]]:
    """(node, description, how) for every mutation point, in a stable walk order."""
    parents: dict[int, ast.AST] = {}
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            parents[id(child)] = parent
    for node in ast.walk(tree):
        parent = parents.get(id(node))
        if isinstance(node, ast.Compare):
            for position, op in enumerate(node.ops):
                flipped = _FLIP_COMPARE.get(type(op))
                if flipped:
                    yield node, f"{type(op).__name__} -> {flipped.__name__}", ("compare", position, flipped)
        elif isinstance(node, ast.BoolOp):
            other = ast.Or if isinstance(node.op, ast.And) else ast.And
            yield node, f"{type(node.op).__name__} -> {other.__name__}", ("boolop", other)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield node, "not x -> x", ("unnot",)
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            yield node, f"{node.value} -> {not node.value}", ("const", not node.value)
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            yield node, f"{node.value} -> {node.value + 1}", ("const", node.value + 1)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            other = ast.Sub if isinstance(node.op, ast.Add) else ast.Add
            if not (isinstance(node.left, ast.Constant) and isinstance(node.left.value, str)):
                yield node, f"{type(node.op).__name__} -> {other.__name__}", ("binop", other)
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(node.elts) > 1 and all(
            isinstance(e, ast.Constant) for e in node.elts
        ):
            for position, element in enumerate(node.elts):
                yield node, f"drop {element.value!r} from a literal", ("drop", position)
        elif isinstance(node, ast.If):
            yield node, "if condition -> True", ("ifconst", True)
            yield node, "if condition -> False", ("ifconst", False)
        if isinstance(node, (ast.Expr, ast.Assign, ast.AugAssign, ast.Continue, ast.Raise, ast.Return)) and not _is_docstring(
            node, parent
        ):
            if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.If, ast.For, ast.While, ast.With, ast.Try)):
                yield node, f"{type(node).__name__.lower()} statement -> pass", ("pass",)


def mutants(module: str) -> list[Mutant]:
    """Every mutant of reconciler/<module>.py."""
    source = (ROOT / "reconciler" / f"{module}.py").read_text()
    lines = source.splitlines()
    points = [
        (getattr(node, "lineno", 0), getattr(node, "col_offset", 0), index, description)
        for index, (node, description, _) in enumerate(_points(ast.parse(source)))
    ]
    found: list[Mutant] = []
    seen: dict[tuple[str, str], int] = {}  # (text, description) -> how many so far, in the order of the file
    for line, _, index, description in sorted(points):
        text = lines[line - 1].strip() if line else ""
        seen[text, description] = seen.get((text, description), 0) + 1
        found.append(Mutant(module, line, text, description, index, seen[text, description]))
    return sorted(found, key=lambda mutant: mutant.index)


def mutated_source(mutant: Mutant, source: str | None = None) -> str:
    """The module's source (default: the file in ROOT) with exactly this mutant applied.

    A run passes the source of its scratch copy: the repository may change under a long run.
    """
    if source is None:
        source = (ROOT / "reconciler" / f"{mutant.module}.py").read_text()
    tree = ast.parse(source)
    for index, (node, _, how) in enumerate(_points(tree)):
        if index != mutant.index:
            continue
        kind = how[0]  # type: ignore[index]
        if kind == "compare":
            _, position, flipped = how  # type: ignore[misc]
            node.ops[position] = flipped()  # type: ignore[attr-defined]
        elif kind == "boolop":
            node.op = how[1]()  # type: ignore[attr-defined, index]
        elif kind == "unnot":
            _replace(tree, node, node.operand)  # type: ignore[attr-defined]
        elif kind == "const":
            node.value = how[1]  # type: ignore[attr-defined, index]
        elif kind == "binop":
            node.op = how[1]()  # type: ignore[attr-defined, index]
        elif kind == "drop":
            del node.elts[how[1]]  # type: ignore[attr-defined, index]
        elif kind == "ifconst":
            node.test = ast.Constant(how[1])  # type: ignore[attr-defined, index]
        elif kind == "pass":
            _replace(tree, node, ast.Pass())
        break
    else:
        raise ValueError(f"no mutation point {mutant.index} in {mutant.module}")
    return ast.unparse(ast.fix_missing_locations(tree))


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for field_name, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, field_name, new)
                return
            if isinstance(value, list):
                for position, item in enumerate(value):
                    if item is old:
                        value[position] = new
                        return


def scratch_copy() -> Path:
    """A copy of the repository (without virtualenvs and caches) to mutate."""
    target = Path(tempfile.mkdtemp(prefix="llm-registry-mutation-"))
    ignore = shutil.ignore_patterns(".venv", ".git", "__pycache__", ".pytest_cache", ".hypothesis", "*.egg-info", "node_modules")
    for name in ("reconciler", "tests", "registry.d", "schemas", "scripts", "docs", "pyproject.toml", "README.md"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, target / name)
    return target


def _stages(tests: list[str]) -> list[list[str]]:
    """The tests in two pytest runs: the leading tests/unit files (else the first file), then the rest.

    Most mutants die in the quick unit tests, which then need not wait for the collection
    of every CLI module and the migrated template database. A mutant is killed when
    either run fails: the same verdict as one run over all of them.
    """
    quick = list(itertools.takewhile(lambda t: t.startswith("tests/unit/"), tests))
    quick = quick or tests[:1]
    rest = tests[len(quick):]
    return [quick, rest] if rest else [quick]


def run_tests(workdir: Path, tests: list[str], timeout: float, extra_env: dict[str, str] | None = None) -> tuple[str, float]:
    """('passed' | 'failed' | 'timeout', seconds) of `pytest -x` on `tests` inside `workdir` (see _stages)."""
    env = {**os.environ, **(extra_env or {}), "PYTHONPATH": str(workdir), "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.perf_counter()
    existing = [t for t in tests if (workdir / t).exists()]
    for stage in _stages(existing):
        try:
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *stage],
                cwd=workdir, env=env, capture_output=True, text=True, check=False,
                timeout=max(1.0, timeout - (time.perf_counter() - started)),
            )
        except subprocess.TimeoutExpired:
            return "timeout", time.perf_counter() - started
        if done.returncode != 0:
            return "failed", time.perf_counter() - started
    return "passed", time.perf_counter() - started


def load_accepted(path: Path | None) -> list[str]:
    """The entries (`module:source line:description  # reason`) of survivors judged equivalent or accepted."""
    if path is None or not path.exists():
        return []
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]


def is_accepted(mutant: Mutant, accepted: list[str]) -> bool:
    """Whether an entry is this mutant's key, alone or followed by a `# reason`.

    Matched by text rather than split into fields: a source line may hold `:` and `#` itself.
    """
    key = mutant.key
    return any(entry == key or (entry.startswith(key) and entry[len(key):].lstrip().startswith("#")) for entry in accepted)


def main() -> int:
    """Run the mutants and print the score; exit 0 whatever the score (figures, not a gate)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", choices=sorted(TARGETS), help="target module (repeatable; default all)")
    parser.add_argument("--sample", type=int, help="at most this many random mutants per module")
    parser.add_argument("--seed", type=int, default=1, help="seed of --sample (default 1)")
    parser.add_argument("--index", type=int, action="append",
                        help="run only the mutant with this index (repeatable; the index --list shows)")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--json", type=Path, help="write every outcome to this file")
    parser.add_argument("--accepted", type=Path, default=ROOT / "bench" / "mutation-accepted.txt",
                        help="survivors judged equivalent/accepted (module:source line:description per line)")
    args = parser.parse_args()
    modules = args.module or list(TARGETS)
    accepted = load_accepted(args.accepted)
    for module in modules:  # entries whose line has changed since they were judged
        every = mutants(module)
        for entry in accepted:
            if entry.startswith(f"{module}:") and not any(is_accepted(m, [entry]) for m in every):
                print(f"accepted entry matches no mutant (judge the line again): {entry}", file=sys.stderr)

    chosen: dict[str, list[Mutant]] = {}
    for module in modules:
        every = mutants(module)
        if args.index:
            every = [m for m in every if m.index in set(args.index)]
        if args.sample and len(every) > args.sample:
            every = sorted(random.Random(f"{args.seed}-{module}").sample(every, args.sample), key=lambda m: m.index)
        chosen[module] = every
    if args.list:
        for module, items in chosen.items():
            for mutant in items:
                print(f"{mutant.key}  [line {mutant.line}, index {mutant.index}]")
        return 0

    workdir = scratch_copy()
    outcomes: list[Outcome] = []
    try:
        for module, items in chosen.items():
            path = workdir / "reconciler" / f"{module}.py"
            original = path.read_text()
            extra_env = TARGET_ENV.get(module)
            baseline, seconds = run_tests(workdir, TARGETS[module], timeout=3600, extra_env=extra_env)
            if baseline != "passed":
                print(f"{module}: the tests fail without any mutant; skipped", file=sys.stderr)
                continue
            timeout = seconds * 3 + 30
            print(f"{module}: {len(items)} mutants, tests take {seconds:.0f}s unmutated", file=sys.stderr, flush=True)
            for number, mutant in enumerate(items, 1):
                try:
                    path.write_text(mutated_source(mutant, original))
                    result, took = run_tests(workdir, TARGETS[module], timeout, extra_env)
                finally:
                    path.write_text(original)
                status = {"passed": "survived", "failed": "killed"}.get(result, result)
                outcomes.append(Outcome(mutant, status, took))
                print(f"  [{number}/{len(items)}] {status:<8} {module}:{mutant.line}: {mutant.description}  "
                      f"[index {mutant.index}, {took:.0f}s]", file=sys.stderr, flush=True)
                if args.json:  # after every mutant, so that an interrupted run keeps its results
                    _write_json(args.json, outcomes)
    except KeyboardInterrupt:
        print("interrupted: figures below cover the mutants run so far", file=sys.stderr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(f"{'module':<10} {'mutants':>8} {'killed':>7} {'survived':>9} {'accepted':>9} {'score':>7}")
    total_killed = total_counted = 0
    for module in modules:
        mine = [o for o in outcomes if o.mutant.module == module]
        killed = sum(o.status in ("killed", "timeout") for o in mine)
        survivors = [o for o in mine if o.status == "survived"]
        ok = [o for o in survivors if is_accepted(o.mutant, accepted)]
        counted = len(mine) - len(ok)
        total_killed += killed
        total_counted += counted
        score = f"{killed / counted:.0%}" if counted else "-"
        print(f"{module:<10} {len(mine):>8} {killed:>7} {len(survivors):>9} {len(ok):>9} {score:>7}")
    if total_counted:
        print(f"{'all':<10} {'':>8} {total_killed:>7} {'':>9} {'':>9} {total_killed / total_counted:>7.0%}")
    survivors = [o for o in outcomes if o.status == "survived"]
    if survivors:
        print("\nsurvivors (module:source line:mutation [line, index]):")
        for outcome in survivors:
            mutant = outcome.mutant
            print(f"  {mutant.key}  [line {mutant.line}, index {mutant.index}]{'  (accepted)' if is_accepted(mutant, accepted) else ''}")
    if args.json:
        _write_json(args.json, outcomes)
    return 0


def _write_json(path: Path, outcomes: list[Outcome]) -> None:
    path.write_text(json.dumps([{**asdict(o.mutant), "status": o.status, "seconds": round(o.seconds, 1)} for o in outcomes], indent=1))


if __name__ == "__main__":
    sys.exit(main())
