"""Benchmark: apply of N creates (no connection tests), next to the floor of COPYing the same rows.

For a registry of N models (the generator of bench/plan.py: all types and providers,
keys as `${env:...}` references over five distinct keys), on a scratch database,
in turns:

- **apply**: `reconciler.apply.apply_registry` on an empty registry, the spec loaded
  and validated beforehand (what `apply --auto-approve --skip-connection-tests` does
  after reading the files): lock, read the state, plan, encrypt, write, audit, commit;
  and its **write stage** alone, from the plan (Hooks.planned) to the commit;
- **floor**: the same end state the simplest way: encrypt each distinct key once (the
  same client-side encryption), COPY the same llm_models rows and the same number of
  audit rows (their details precomputed, outside the timer), commit.

Between runs the tables are emptied (outside the timer), so every run starts from
the same empty registry. The CLI figure (the whole `llm-registry apply` process,
files read and validated) is printed beside, for scale, with its own floor process
(the floor above plus reading the files with PyYAML's C loader).

It prints the median time of each, the median of the per-round ratios, and the goal
(issue 13: apply within 1.5x of the floor at 10,000 creates). Figures only: exit 0
whatever they are (1 when no server is reachable or a run fails).

    .venv/bin/python bench/apply.py                      # N = 10,000, 5 rounds
    .venv/bin/python bench/apply.py --size 2000 --repeat 3 --no-cli
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.plan import (  # noqa: E402
    DEFAULT_ADMIN_URL,
    KEY_VALUES,
    PASSPHRASE,
    SEED,
    BenchError,
    ScratchDatabase,
    command_prefix,
    generate_models,
    write_registry,
)
from reconciler.secrets import ENCRYPTION_KEY_ENV  # noqa: E402

RESET = [
    "ALTER TABLE registry_audit_events DISABLE TRIGGER registry_audit_events_no_truncate",
    "TRUNCATE registry_audit_events, knowledge_bases, llm_models, llm_registry_encryption",
    "ALTER TABLE registry_audit_events ENABLE TRIGGER registry_audit_events_no_truncate",
]

# The floor as a process: read the files (C loader), then COPY precomputed rows.
FLOOR_PROCESS = r"""
import pickle, sys, time
from pathlib import Path
import psycopg, yaml
documents = [yaml.load(p.read_bytes(), Loader=yaml.CSafeLoader) for p in sorted(Path(sys.argv[1]).rglob("*.yaml"))]
sys.path.insert(0, sys.argv[4])
from bench.apply import copy_floor
with open(sys.argv[3], "rb") as handle:
    prepared = pickle.load(handle)
with psycopg.connect(sys.argv[2]) as connection:
    copy_floor(connection, prepared)
print(sum(len(d["models"]) for d in documents))
"""


def reset(conninfo: str) -> None:
    """Empty the registry's tables (the audit table's truncate guard lifted for it)."""
    import psycopg

    with psycopg.connect(conninfo) as connection:
        for statement in RESET:
            connection.execute(statement)


def prepare_floor(registry: Any) -> dict[str, Any]:
    """What the floor writes, computed outside its timer: row values, key per row, audit rows."""
    from reconciler import MANAGED_BY
    from reconciler.spec import RECORD_FIELDS, desired_record, env_reference_name
    from reconciler.tables import column_name

    columns = ["name", "managed_by", *(column_name(f) for f in RECORD_FIELDS if f != "api_key")]
    rows, keys, audit = [], [], []
    for model in registry.models:
        record = desired_record(model)
        rows.append([model.name, MANAGED_BY, *(record[f] for f in RECORD_FIELDS if f != "api_key")])
        variable = env_reference_name(record["api_key"]) if record["api_key"] else None
        keys.append(KEY_VALUES[variable] if variable else None)
        details = {k: v for k, v in record.items() if v is not None} | {"api_key": "set" if variable else None}
        audit.append(["bench", "MODEL_CREATED", model.name, "bench", json.dumps({"configuration": details})])
    return {"columns": columns, "rows": rows, "keys": keys, "audit": audit}


def copy_floor(connection: Any, prepared: dict[str, Any]) -> None:
    """The floor's timed work: encrypt each distinct key once, COPY the rows and the audit rows, commit."""
    from reconciler import pgp
    from reconciler.secrets import key_fingerprint

    stored = {key: (pgp.encrypt(key, PASSPHRASE), key_fingerprint(key, PASSPHRASE)) for key in set(prepared["keys"]) - {None}}
    columns = [*prepared["columns"], "api_key", "api_key_fingerprint"]
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY llm_models ({', '.join(columns)}) FROM STDIN") as copy:
            for row, key in zip(prepared["rows"], prepared["keys"]):
                copy.write_row([*row, *(stored[key] if key else (None, None))])
        with cursor.copy("COPY registry_audit_events (run_id, event_type, model_name, actor, details) FROM STDIN") as copy:
            for row in prepared["audit"]:
                copy.write_row(row)
    connection.commit()


def time_apply(url: str, registry: Any, environ: dict[str, str]) -> tuple[float, float]:
    """Seconds of one apply_registry of every model into the empty registry, and of its part
    after the plan (encrypt, write, audit, commit: the write stage)."""
    from reconciler import db
    from reconciler.apply import ApplyOptions, Hooks, apply_registry

    planned: list[float] = []

    class Clock(Hooks):
        def planned(self, plan: Any) -> None:
            planned.append(time.perf_counter())

    engine = db.create_engine(url)
    try:
        with engine.connect() as connection:
            options = ApplyOptions(actor="bench", revision=None, skip_connection_tests=True)
            started = time.perf_counter()
            outcome = apply_registry(connection, registry, environ, options, Clock())
            ended = time.perf_counter()
    finally:
        engine.dispose()
    if not outcome.committed or outcome.plan.count("create") != len(registry.models):
        raise BenchError("apply did not create every model")
    return ended - started, ended - planned[0]


def time_floor(conninfo: str, prepared: dict[str, Any]) -> float:
    """Seconds of one floor run (connection opened before the timer, as apply's is)."""
    import psycopg

    with psycopg.connect(conninfo) as connection:
        started = time.perf_counter()
        copy_floor(connection, prepared)
        return time.perf_counter() - started


def time_process(argv: list[str], env: dict[str, str]) -> float:
    """Wall seconds of a command; a failed run is an error, never a figure."""
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv[:3])} ... exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return elapsed


def count_rows(conninfo: str) -> int:
    import psycopg

    with psycopg.connect(conninfo) as connection:
        return int(connection.execute("SELECT count(*) FROM llm_models").fetchone()[0])  # type: ignore[index]


def main() -> int:
    """Measure, print the table; exit 1 only when the benchmark itself cannot run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_ADMIN_URL, help=f"admin connection (default {DEFAULT_ADMIN_URL})")
    parser.add_argument("--size", type=int, default=10_000, help="models to create (default 10000)")
    parser.add_argument("--repeat", type=int, default=5, help="measured rounds after one warm-up (default 5)")
    parser.add_argument("--no-cli", action="store_true", help="skip the whole-process figures")
    args = parser.parse_args()
    if args.size < 10 or args.repeat < 1:
        parser.error("--size at least 10, --repeat at least 1")

    import pickle

    from reconciler.pipeline import load_registry

    signal.signal(signal.SIGTERM, signal.default_int_handler)
    workdir = Path(tempfile.mkdtemp(prefix="llm-registry-bench-apply-"))
    environ = {**os.environ, **KEY_VALUES, ENCRYPTION_KEY_ENV: PASSPHRASE, "NO_COLOR": "1"}
    environ.pop("LLM_REGISTRY_DATABASE_URL", None)
    try:
        directory = workdir / "registry"
        write_registry(generate_models(args.size, random.Random(SEED + args.size)), directory)
        registry, _ = load_registry(directory)
        prepared = prepare_floor(registry)
        prepared_file = workdir / "floor.pickle"
        prepared_file.write_bytes(pickle.dumps(prepared))
        scratch = ScratchDatabase(args.database_url)
        with scratch:
            scratch.migrate()
            print(f"scratch database {scratch.name}; {args.size:,} creates; {args.repeat} rounds after a warm-up", flush=True)
            cli_argv = [*command_prefix(), "apply", str(directory), "--database-url", scratch.url, "--auto-approve", "--skip-connection-tests"]
            floor_argv = [sys.executable, "-c", FLOOR_PROCESS, str(directory), scratch.conninfo, str(prepared_file), str(Path(__file__).resolve().parents[1])]
            figures: dict[str, list[float]] = {"apply": [], "write stage": [], "floor": [], "cli": [], "cli floor": []}
            for round_number in range(args.repeat + 1):
                measured = {}
                reset(scratch.conninfo)
                measured["floor"] = time_floor(scratch.conninfo, prepared)
                reset(scratch.conninfo)
                measured["apply"], measured["write stage"] = time_apply(scratch.url, registry, environ)
                if count_rows(scratch.conninfo) != args.size:
                    raise BenchError("apply left a different number of rows")
                if not args.no_cli:
                    reset(scratch.conninfo)
                    measured["cli floor"] = time_process(floor_argv, environ)
                    reset(scratch.conninfo)
                    measured["cli"] = time_process(cli_argv, environ)
                if round_number:  # the first round only warms caches
                    for label, seconds in measured.items():
                        figures[label].append(seconds)
        print()
        print(f"{'what':<44} {'median':>9} {'x floor':>8} {'us/model':>9}")
        rows = [
            ("floor: encrypt keys once, COPY rows + audit", "floor", None),
            ("apply_registry (spec loaded)", "apply", "floor"),
            ("  of which after the plan (write stage)", "write stage", "floor"),
        ]
        if not args.no_cli:
            rows += [("floor process: read files + the floor", "cli floor", None), ("llm-registry apply (whole process)", "cli", "cli floor")]
        for label, key, floor in rows:
            median = statistics.median(figures[key])
            ratio = statistics.median(a / b for a, b in zip(figures[key], figures[floor])) if floor else 1.0
            print(f"{label:<44} {median:>8.3f}s {ratio:>7.2f}x {median / args.size * 1e6:>9.1f}")
        ratio = statistics.median(a / b for a, b in zip(figures["apply"], figures["floor"]))
        print()
        print("each round runs the floor and apply back to back; 'x floor' is the median of the per-round ratios")
        print(f"goal (issue 13): apply of {args.size:,} creates within 1.5x of the floor -> {ratio:.2f}x, {'met' if ratio <= 1.5 else 'NOT MET'}")
        return 0
    except BenchError as error:
        print(f"bench/apply.py: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; the scratch database was dropped", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
