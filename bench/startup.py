"""Startup cost of the command: median wall time against `python -c pass` as the floor.

    python bench/startup.py [--runs 15] [--registry registry.d]

Prints one line per command (median, min, and the difference from the floor) and
exits 1 when a command is more than GOAL seconds above the floor (issue 2, item 7:
`--help` and `validate` must not pay for LiteLLM or SQLAlchemy). To find what is
slow: `python -X importtime -m reconciler --help 2> imports.txt`.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL = 0.1  # seconds above the floor (issue 13)

# What `validate` imports from its dependencies, and nothing of ours: Click, PyYAML,
# pydantic (what spec.py takes from it) and importlib.metadata, which pydantic's plugin
# loader imports when the first validator is built; with the console script's collector
# settings (gc_pause.for_one_shot_process), else its exit would pay collections the
# command does not. Printed for reference, not a goal: the difference between this line
# and validate's is what the project's own code costs.
LIBRARIES_LABEL = "validate's libraries alone"
LIBRARIES_OF_VALIDATE = (
    "import atexit, gc; gc.disable(); atexit.register(gc.freeze); "
    "import click, yaml, importlib.metadata; "
    "from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator"
)


def command_prefix() -> list[str]:
    """The installed console script next to this interpreter, else `python -m reconciler`."""
    script = Path(sys.executable).parent / "llm-registry"
    return [str(script)] if script.exists() else [sys.executable, "-m", "reconciler"]


def run_once(argv: list[str], *, write_bytecode: bool = False) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of `argv`, output discarded. CPU (user + system of
    the child) is what the command itself costs; wall also holds waiting for a busy CPU.

    `write_bytecode` (the warm-up) lets the run write .pyc files even where
    PYTHONDONTWRITEBYTECODE is set (as on the shared test machine): an installed
    command has them (pip compiles at install time), and without them every timed run
    would compile the project's sources again.
    """
    env = {**os.environ, "NO_COLOR": "1"}
    if write_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main() -> int:
    """Run the commands in turns with the floor and print the table; exit 1 when over the goal."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--registry", default=str(Path(__file__).resolve().parents[1] / "registry.d"))
    args = parser.parse_args()

    prefix = command_prefix()
    commands = {
        "python -c pass (floor)": [sys.executable, "-c", "pass"],
        LIBRARIES_LABEL: [sys.executable, "-c", LIBRARIES_OF_VALIDATE],
        "llm-registry --help": [*prefix, "--help"],
        "llm-registry validate registry.d": [*prefix, "validate", args.registry],
    }
    times: dict[str, list[float]] = {label: [] for label in commands}
    cpu: dict[str, list[float]] = {label: [] for label in commands}
    for argv in commands.values():  # warm-up: page cache, .pyc files
        run_once(argv, write_bytecode=True)
    # In turns, so that other load on the machine hits the floor and the commands alike.
    for _ in range(args.runs):
        for label, argv in commands.items():
            wall, used = run_once(argv)
            times[label].append(wall)
            cpu[label].append(used)
    floor = statistics.median(times["python -c pass (floor)"])
    cpu_floor = statistics.median(cpu["python -c pass (floor)"])
    over = False
    for label, samples in times.items():
        median, fastest = statistics.median(samples), min(samples)
        line = f"{label:<34} median {median:6.3f}s  min {fastest:6.3f}s  cpu {statistics.median(cpu[label]):6.3f}s"
        if label == LIBRARIES_LABEL:
            line += f" (+{statistics.median(cpu[label]) - cpu_floor:.3f}s cpu)  +{median - floor:.3f}s over floor (reference)"
        if label.startswith("llm-registry"):
            line += f" (+{statistics.median(cpu[label]) - cpu_floor:.3f}s cpu)"
            difference = median - floor
            verdict = "ok" if difference <= GOAL else "OVER GOAL"
            over |= difference > GOAL
            line += f"  +{difference:.3f}s over floor, {median / floor:.2f}x ({verdict}, goal +{GOAL}s)"
        print(line)
    validate = statistics.median(cpu["llm-registry validate registry.d"]) - statistics.median(cpu[LIBRARIES_LABEL])
    print(f"validate's own code (CPU over its libraries' imports): {validate * 1000:+.0f} ms")
    print(f"{args.runs} rounds, commands in turns, {' '.join(prefix)}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
