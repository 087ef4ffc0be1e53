"""Benchmark: apply of N creates (no connection tests), next to the floor of the same work done simply.

For a registry of N models (the generator of bench/plan.py: all types and providers,
keys as `${env:...}` references over five distinct keys), on a scratch database,
in turns:

- **apply**: `reconciler.apply.apply_registry` on an empty registry, the spec loaded
  and validated beforehand (what `apply --auto-approve --skip-connection-tests` does
  after reading the files): lock, read the state, plan, encrypt, write, audit, commit;
  and its **write stage** alone, from the plan (Hooks.planned) to the commit;
- **floor**: the same work the simplest way, from the same loaded spec: read the rows
  (one SELECT), encrypt each distinct key once, and per model its record
  (`desired_record`), its row with the applied fingerprint (sha256 of the JSON of its
  values) and its audit row (the configuration as JSON); COPY both, commit. That is
  every value apply writes, computed and written with nothing in between: no plan,
  no policies, no checks;
- **write floor**, for scale: the same COPYs with every value computed beforehand,
  outside the timer (the database's share alone).

All three run with the garbage collector off, as the `llm-registry` process runs
(gc_pause.for_one_shot_process). Between runs the tables are emptied (outside the
timer), so every run starts from the same empty registry. The CLI figure (the whole
`llm-registry apply` process, files read and validated) is printed beside, with its
own floor process (reading the files with PyYAML's C loader, then the floor).

It prints the median time of each, the median of the per-round ratios, and the goal
(issue 13: apply within 1.5x of the floor at 10,000 creates). Figures only: exit 0
whatever they are (1 when no server is reachable or a run fails).

    .venv/bin/python bench/apply.py                      # N = 10,000, 5 rounds
    .venv/bin/python bench/apply.py --size 2000 --repeat 3 --no-cli
"""

from __future__ import annotations

import argparse
import gc
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

# The floor as a process: the files read the simplest way (PyYAML's C loader, each
# model validated by the spec's pydantic adapter), then the floor.
FLOOR_PROCESS = r"""
import gc, os, sys, types
gc.disable()
from pathlib import Path
sys.path.insert(0, sys.argv[3])
import psycopg, yaml
from bench.apply import fair_floor
from reconciler.spec import MODEL_ADAPTER
documents = [yaml.load(p.read_bytes(), Loader=yaml.CSafeLoader) for p in sorted(Path(sys.argv[1]).rglob("*.yaml"))]
registry = types.SimpleNamespace(models=[MODEL_ADAPTER.validate_python(m) for d in documents for m in d["models"]])
with psycopg.connect(sys.argv[2]) as connection:
    fair_floor(connection, registry, os.environ)
print(len(registry.models))
"""


def reset(conninfo: str) -> None:
    """Empty the registry's tables (the audit table's truncate guard lifted for it)."""
    import psycopg

    with psycopg.connect(conninfo) as connection:
        for statement in RESET:
            connection.execute(statement)


def fair_floor(connection: Any, registry: Any, environ: Any) -> None:
    """The floor's timed work: read the rows, compute every value apply writes, COPY them (see the docstring)."""
    connection.execute("SELECT id, name FROM llm_models").fetchall()
    copy_rows(connection, *floor_rows(registry, environ))


def floor_rows(registry: Any, environ: Any) -> tuple[list[str], list[list[Any]], list[list[Any]]]:
    """(llm_models columns, their rows, audit rows) of every model, the simplest way; each distinct key encrypted once."""
    import hashlib
    import uuid

    from reconciler import MANAGED_BY, pgp
    from reconciler.secrets import key_fingerprint
    from reconciler.spec import RECORD_FIELDS, desired_record, env_reference_name
    from reconciler.state import APPLIED_FINGERPRINT_VERSION
    from reconciler.tables import column_name

    stored = {}
    for reference in {m.api_key for m in registry.models if m.api_key}:
        key = environ[env_reference_name(reference)]
        stored[reference] = (pgp.encrypt(key, PASSPHRASE), key_fingerprint(key, PASSPHRASE))
    value_fields = [f for f in RECORD_FIELDS if f != "api_key"]
    columns = ["id", "name", "managed_by", *(column_name(f) for f in value_fields), "api_key", "api_key_fingerprint", "applied_fingerprint"]
    rows, audit = [], []
    for model in registry.models:
        record = desired_record(model)
        ciphertext, fingerprint = stored.get(record["api_key"], (None, None))
        record["api_key"] = fingerprint
        applied = hashlib.sha256(json.dumps([APPLIED_FINGERPRINT_VERSION, model.name, [record[f] for f in RECORD_FIELDS]]).encode()).hexdigest()
        model_id = str(uuid.uuid4())
        rows.append([model_id, model.name, MANAGED_BY, *(record[f] for f in value_fields), ciphertext, fingerprint, applied])
        configuration = {k: v for k, v in record.items() if v is not None} | {"api_key": "set" if fingerprint else None}
        details = json.dumps({"configuration": configuration, "connection_test": "skipped"})
        audit.append(["bench", "MODEL_CREATED", model.name, model_id, "bench", details])
    return columns, rows, audit


def copy_rows(connection: Any, columns: list[str], rows: list[list[Any]], audit: list[list[Any]]) -> None:
    """COPY the model rows and the audit rows, commit."""
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY llm_models ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        with cursor.copy("COPY registry_audit_events (run_id, event_type, model_name, model_id, actor, details) FROM STDIN") as copy:
            for row in audit:
                copy.write_row(row)
    connection.commit()


def time_apply(url: str, registry: Any, environ: dict[str, str]) -> tuple[float, float, float]:
    """Seconds of one apply_registry of every model into the empty registry, of its part
    after the plan (encrypt, write, audit, commit: the write stage), and this process's
    CPU seconds for the whole of it."""
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
            started, cpu = time.perf_counter(), time.process_time()
            outcome = apply_registry(connection, registry, environ, options, Clock())
            ended, cpu = time.perf_counter(), time.process_time() - cpu
    finally:
        engine.dispose()
    if not outcome.committed or outcome.plan.count("create") != len(registry.models):
        raise BenchError("apply did not create every model")
    return ended - started, ended - planned[0], cpu


def time_floor(conninfo: str, work: Any) -> tuple[float, float]:
    """Wall and CPU seconds of one floor run, `work(connection)` (connection opened before the timer, as apply's is)."""
    import psycopg

    with psycopg.connect(conninfo) as connection:
        started, cpu = time.perf_counter(), time.process_time()
        work(connection)
        return time.perf_counter() - started, time.process_time() - cpu


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

    from reconciler.pipeline import load_registry

    signal.signal(signal.SIGTERM, signal.default_int_handler)
    workdir = Path(tempfile.mkdtemp(prefix="llm-registry-bench-apply-"))
    environ = {**os.environ, **KEY_VALUES, ENCRYPTION_KEY_ENV: PASSPHRASE, "NO_COLOR": "1"}
    # An installed command has its .pyc files (pip compiles at install time): let the
    # warm-up round write them where PYTHONDONTWRITEBYTECODE is set (as on the shared
    # test machine), or every timed run would compile the project's sources again.
    environ.pop("PYTHONDONTWRITEBYTECODE", None)
    environ.pop("LLM_REGISTRY_DATABASE_URL", None)
    try:
        directory = workdir / "registry"
        write_registry(generate_models(args.size, random.Random(SEED + args.size)), directory)
        registry, _ = load_registry(directory)
        written = floor_rows(registry, environ)  # the write floor's values, computed once
        gc.disable()  # as the llm-registry process runs (gc_pause.for_one_shot_process), for every figure
        scratch = ScratchDatabase(args.database_url)
        with scratch:
            scratch.migrate()
            print(f"scratch database {scratch.name}; {args.size:,} creates; {args.repeat} rounds after a warm-up", flush=True)
            cli_argv = [*command_prefix(), "apply", str(directory), "--database-url", scratch.url, "--auto-approve", "--skip-connection-tests"]
            floor_argv = [sys.executable, "-c", FLOOR_PROCESS, str(directory), scratch.conninfo, str(Path(__file__).resolve().parents[1])]
            figures: dict[str, list[float]] = {
                key: [] for key in ("apply", "apply cpu", "write stage", "floor", "floor cpu", "write floor", "write floor cpu", "cli", "cli floor")
            }
            for round_number in range(args.repeat + 1):
                measured = {}
                reset(scratch.conninfo)
                measured["write floor"], measured["write floor cpu"] = time_floor(scratch.conninfo, lambda connection: copy_rows(connection, *written))
                reset(scratch.conninfo)
                measured["floor"], measured["floor cpu"] = time_floor(scratch.conninfo, lambda connection: fair_floor(connection, registry, environ))
                reset(scratch.conninfo)
                measured["apply"], measured["write stage"], measured["apply cpu"] = time_apply(scratch.url, registry, environ)
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
        print(f"{'what':<44} {'median':>9} {'x floor':>8} {'us/model':>9} {'CPU':>8} {'CPU x':>6}")
        rows = [
            ("floor: the same values computed + COPY", "floor", None),
            ("apply_registry (spec loaded)", "apply", "floor"),
            ("  of which after the plan (write stage)", "write stage", "floor"),
            ("write floor: COPY of precomputed values", "write floor", None),
            ("apply_registry against the write floor", "apply", "write floor"),
        ]
        if not args.no_cli:
            rows += [("floor process: C loader + pydantic + floor", "cli floor", None), ("llm-registry apply (whole process)", "cli", "cli floor")]

        def ratio_of(key: str, floor: str) -> float:
            return statistics.median(a / b for a, b in zip(figures[key], figures[floor]))

        for label, key, floor in rows:
            median = statistics.median(figures[key])
            ratio = ratio_of(key, floor) if floor else 1.0
            cpu_key, cpu_floor = f"{key} cpu", f"{floor or key} cpu"
            cpu = f"{statistics.median(figures[cpu_key]):>7.3f}s {ratio_of(cpu_key, cpu_floor):>5.2f}x" if cpu_key in figures and cpu_floor in figures else ""
            print(f"{label:<44} {median:>8.3f}s {ratio:>7.2f}x {median / args.size * 1e6:>9.1f} {cpu}")
        ratio = ratio_of("apply", "floor")
        print()
        print("each round runs the floors and apply back to back; 'x floor' is the median of the per-round ratios;")
        print("CPU: this process's CPU time (steadier on a busy machine; the server's share is in the wall time only)")
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
