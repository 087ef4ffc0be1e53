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
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL = 0.25  # seconds above the floor


def command_prefix() -> list[str]:
    """The installed console script next to this interpreter, else `python -m reconciler`."""
    script = Path(sys.executable).parent / "llm-registry"
    return [str(script)] if script.exists() else [sys.executable, "-m", "reconciler"]


def median_seconds(argv: list[str], runs: int) -> tuple[float, float]:
    """Median and minimum wall time of running `argv` `runs` times (after one warm-up run)."""
    env = {**os.environ, "NO_COLOR": "1"}
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times)


def main() -> int:
    """Run the benchmark and print the table; exit 1 when over the goal."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--registry", default=str(Path(__file__).resolve().parents[1] / "registry.d"))
    args = parser.parse_args()

    prefix = command_prefix()
    floor, floor_min = median_seconds([sys.executable, "-c", "pass"], args.runs)
    print(f"{'python -c pass (floor)':<34} median {floor:6.3f}s  min {floor_min:6.3f}s")
    over = False
    for label, argv in (
        ("llm-registry --help", [*prefix, "--help"]),
        ("llm-registry validate registry.d", [*prefix, "validate", args.registry]),
    ):
        median, fastest = median_seconds(argv, args.runs)
        difference = median - floor
        verdict = "ok" if difference <= GOAL else "OVER GOAL"
        over |= difference > GOAL
        print(f"{label:<34} median {median:6.3f}s  min {fastest:6.3f}s  +{difference:.3f}s over floor ({verdict}, goal +{GOAL}s)")
    print(f"{args.runs} runs each, {' '.join(prefix)}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
