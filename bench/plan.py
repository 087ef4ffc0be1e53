"""Benchmark: `llm-registry plan` on a large registry, next to the floor of parsing plus one SELECT.

For each size N it generates a registry of N models over files of ~75 models each
(embedding, generation and NER models over all six providers, keys as
`${env:...}` references), loads a scratch database with exactly those models (COPY),
and times, in a fresh subprocess per run:

- `llm-registry plan DIR --database-url URL` with no changes (no-op);
- the same after 1% drift: changed fields on some rows, a few rows missing
  (creates), a few extra managed rows (deletes);
- the floor: a process that only parses the same files with yaml's C loader and
  runs one `SELECT * FROM llm_models` through psycopg.

The floor runs in turns with the plan runs, so that other load on the machine
hits both alike. It prints the median wall time, the median of the per-round
ratios to the floor, the peak RSS of the process and the time per model, plus the
marginal cost per model between sizes (equal figures mean linear growth). Goals (issue 13): at 10,000 models a no-op
or 1%-drift plan within 1.5x the floor (both with the garbage collector paused), under 500 MB peak at 100,000. Figures only, never an
assertion: the exit code is 0 whatever the figures (1 when no server is reachable
or a run fails).

    .venv/bin/python bench/plan.py                          # N = 1,000, 10,000, 100,000; 5 runs each
    .venv/bin/python bench/plan.py --sizes 10000 --repeat 3
    .venv/bin/python bench/plan.py --database-url postgresql://postgres@db.internal:5432/postgres

`--database-url` is an admin connection: the benchmark creates a scratch database
`llm_registry_bench_<pid>_<random>` beside it and drops it at the end, also on Ctrl-C.
To see where the plan spends its time, `--keep DIR` writes the registries into DIR and
keeps them, to profile the command on, e.g. with `python -m cProfile -s cumtime`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets as random_secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler import MANAGED_BY  # noqa: E402
from reconciler.secrets import ENCRYPTION_KEY_ENV, encrypt_api_key, key_fingerprint  # noqa: E402
from reconciler.spec import MODEL_ADAPTER, RECORD_FIELDS, desired_record  # noqa: E402
from reconciler.tables import column_name  # noqa: E402

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
MODELS_PER_FILE = 75
DRIFT = 0.01
PASSPHRASE = "bench-passphrase-0123456789"
SEED = 20240607

# What the plan subprocess sees: every key variable set, so keys are really compared.
KEY_VARIABLES = {
    "openai": "OPENAI_API_KEY",
    "azure": "AZURE_OPENAI_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "cohere": "COHERE_API_KEY",
}
KEY_VALUES = {variable: f"sk-bench-{variable.lower()}-0123456789abcdef" for variable in KEY_VARIABLES.values()}

# Providers per type, weighted roughly as a real registry: many OpenAI/Azure/Ollama models.
PROVIDERS = {
    "embedding": ["openai"] * 3 + ["azure"] * 2 + ["ollama"] * 3 + ["cohere", "gemini"],
    "generation": ["openai"] * 3 + ["azure"] * 2 + ["ollama"] * 2 + ["anthropic"] * 2 + ["cohere", "gemini"],
    "ner": ["openai", "azure", "ollama", "ollama", "gemini"],
}
TYPES = ["embedding"] * 4 + ["generation"] * 5 + ["ner"]

# Runs one command and reports its wall time and peak RSS: a fresh process per
# measurement, so that RUSAGE_CHILDREN holds exactly that one child.
MEASURE = r"""
import json, resource, subprocess, sys, time
argv = json.loads(sys.argv[1])
started = time.perf_counter()
done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
elapsed = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
tail = done.stdout.strip().splitlines()[-1:] or [""]
print(json.dumps({"seconds": elapsed, "peak_kib": usage.ru_maxrss, "cpu": usage.ru_utime + usage.ru_stime, "returncode": done.returncode,
                  "last_line": tail[0], "stderr": done.stderr[-2000:]}))
"""

# The floor: parse the same files with libyaml and read every row, nothing else, with
# the garbage collector paused as plan pauses it (a floor with it running would be
# slower and flatter plan, more so as N grows).
FLOOR = r"""
import gc, sys
gc.disable()  # plan pauses the cyclic collector while it loads, reads and diffs (gc_pause): same here
from pathlib import Path
import psycopg, yaml
documents = [yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader) for path in sorted(Path(sys.argv[1]).rglob("*.yaml"))]
with psycopg.connect(sys.argv[2]) as connection:
    rows = connection.execute("SELECT * FROM llm_models").fetchall()
print(f"{sum(len(d['models']) for d in documents)} models, {len(rows)} rows")
"""


class BenchError(Exception):
    """A failure the benchmark reports in one line and exits 1 for."""


# ----------------------------------------------------------------------------- the registry


def generate_models(count: int, rng: random.Random) -> list[dict[str, Any]]:
    """`count` valid model definitions as YAML would hold them: one default per type, ~5% inactive."""
    models = []
    defaults_taken: set[str] = set()
    for index in range(count):
        model_type = TYPES[index % len(TYPES)] if index < len(TYPES) else rng.choice(TYPES)
        provider = rng.choice(PROVIDERS[model_type])
        model: dict[str, Any] = {"name": f"{provider}-{model_type[:3]}-{index:06d}", "type": model_type, "provider": provider}
        model["model_id"] = f"{model_type}-model-{index % 97}"
        if provider == "ollama":
            model["api_endpoint"] = f"http://ollama-{index % 7}.internal:11434"
        elif provider == "azure":
            model["api_endpoint"] = f"https://tenant-{index % 5}.openai.azure.com"
            model["api_version"] = "2024-10-21"
        if provider in KEY_VARIABLES:
            model["api_key"] = f"${{env:{KEY_VARIABLES[provider]}}}"
        if model_type not in defaults_taken:
            model["default"] = True
            defaults_taken.add(model_type)
        elif rng.random() < 0.05:
            model["active"] = False
        if rng.random() < 0.5:
            model["description"] = f"Benchmark model {index} for team {index % 13}"
        if index % 10 == 3:
            model["previous_names"] = [f"{model['name']}-old"]
        model["parameters"] = _parameters(model_type, provider, rng)
        models.append(model)
    return models


def _parameters(model_type: str, provider: str, rng: random.Random) -> dict[str, Any]:
    # Half the models spell out every parameter, half rely on the defaults.
    full = rng.random() < 0.5
    if model_type == "embedding":
        parameters: dict[str, Any] = {"dimensions": rng.choice([384, 768, 1024, 1536, 3072])}
        if full:
            parameters.update(max_tokens=8192, normalize=True, distance_metric=rng.choice(["cosine", "dot_product"]), batch_size=64)
        return parameters
    if model_type == "generation":
        window = rng.choice([8192, 32768, 128000, 200000])
        parameters = {"context_window": window, "max_output_tokens": 4096}
        if full:
            parameters.update(temperature=round(rng.uniform(0, 1.5), 2), top_p=1.0)
            if provider not in ("openai", "azure"):
                parameters["top_k"] = 40
        return parameters
    return {"max_tokens": 4096, "batch_size": 16} if full else {}


def write_registry(models: list[dict[str, Any]], directory: Path) -> int:
    """Write the models as YAML files of MODELS_PER_FILE models each, as a person would lay them out."""
    files = 0
    for start in range(0, len(models), MODELS_PER_FILE):
        chunk = models[start : start + MODELS_PER_FILE]
        lines = ["# yaml-language-server: $schema=../schemas/registry.schema.json", "version: 1", "models:"]
        for model in chunk:
            lines.append(f"  - name: {model['name']}")
            for key, value in model.items():
                if key == "name":
                    continue
                if key == "parameters":
                    if value:
                        lines.append("    parameters:")
                        lines += [f"      {name}: {_yaml_scalar(v)}" for name, v in value.items()]
                elif key == "previous_names":
                    lines.append(f"    previous_names: [{', '.join(value)}]")
                else:
                    lines.append(f"    {key}: {_yaml_scalar(value)}")
            lines.append("")
        subdirectory = directory / f"team-{files // 50:02d}"
        subdirectory.mkdir(parents=True, exist_ok=True)
        (subdirectory / f"models-{files:04d}.yaml").write_text("\n".join(lines))
        files += 1
    return files


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and (value.startswith("$") or ":" in value or value[:1].isdigit()):
        return json.dumps(value)
    return str(value)


# ----------------------------------------------------------------------------- the database


@dataclass
class Row:
    """One llm_models row as COPY writes it."""

    name: str
    record: dict[str, Any]
    managed_by: str | None = MANAGED_BY


def rows_for(models: list[dict[str, Any]]) -> list[Row]:
    """The rows `apply` would have written for these models: defaults filled, keys fingerprinted."""
    rows = []
    for model in models:
        record = desired_record(MODEL_ADAPTER.validate_python(model))
        if record["api_key"] is not None:
            variable = record["api_key"][len("${env:") : -1]
            record["api_key"] = key_fingerprint(KEY_VALUES[variable], PASSPHRASE)
        rows.append(Row(model["name"], record))
    return rows


COLUMNS = ["name", "managed_by", *(column_name(f) for f in RECORD_FIELDS if f != "api_key"), "api_key_fingerprint", "api_key"]


def copy_rows(connection: Any, rows: list[Row], ciphertext: bytes) -> None:
    """COPY the rows into llm_models, one round trip (keys: the fingerprint and one real ciphertext)."""
    with connection.cursor().copy(f"COPY llm_models ({', '.join(COLUMNS)}) FROM STDIN") as copy:
        for row in rows:
            fingerprint = row.record["api_key"]
            values = [row.name, row.managed_by, *(row.record[f] for f in RECORD_FIELDS if f != "api_key")]
            copy.write_row([*values, fingerprint, ciphertext if fingerprint is not None else None])


@dataclass(frozen=True)
class Drift:
    """What the drifted database differs by, i.e. what the drift plan must show."""

    updates: int
    creates: int
    deletes: int

    def summary(self) -> str:
        return f"Plan: {self.creates} to create, {self.updates} to update, {self.deletes} to delete, 0 blocked."


def apply_drift(connection: Any, rows: list[Row], ciphertext: bytes, rng: random.Random) -> Drift:
    """1% of the models drift: ~60% of those changed, ~20% missing rows, ~20% extra managed rows.

    Defaults and rows KBs use are left alone so the plan is a plain one, not blocked.
    """
    total = max(3, round(len(rows) * DRIFT))
    missing = extra = max(1, total // 5)
    changed = total - missing - extra
    used = {name for (name,) in connection.execute(
        "SELECT m.name FROM llm_models m JOIN knowledge_bases k ON m.id IN (k.embedding_model_id, k.generation_model_id)"
    )}
    candidates = [row for row in rows if not row.record["is_default"] and row.name not in used]
    picked = rng.sample(candidates, changed + missing)
    edits = [
        "description = description || ' (edited by hand)'",
        "is_active = NOT is_active",
        "max_tokens = max_tokens + 1",
        "model_id = model_id || '-v2'",
        "api_endpoint = 'http://moved.internal:11434'",
    ]
    with connection.cursor() as cursor:
        for number, row in enumerate(picked[:changed]):
            edit = edits[number % len(edits)]
            if "max_tokens" in edit and row.record["max_tokens"] is None:
                edit = edits[0]
            if "api_endpoint" in edit and row.record["provider"] != "ollama":
                edit = edits[0]
            cursor.execute(f"UPDATE llm_models SET {edit} WHERE name = %s", (row.name,))
        cursor.executemany("DELETE FROM llm_models WHERE name = %s", [(row.name,) for row in picked[changed:]])
    template = rows[len(rows) // 2]
    copy_rows(connection, [Row(f"retired-model-{n:05d}", {**template.record, "is_default": False}) for n in range(extra)], ciphertext)
    connection.commit()
    return Drift(updates=changed, creates=missing, deletes=extra)


def add_knowledge_bases(connection: Any, rows: list[Row], rng: random.Random) -> None:
    """A KB per 200 models, each on an embedding and a generation model (the policies look them up)."""
    ids = {name: (model_id, kind) for model_id, name, kind in connection.execute("SELECT id, name, model_type FROM llm_models")}
    embedding = [ids[r.name][0] for r in rows if r.record["type"] == "embedding"]
    generation = [ids[r.name][0] for r in rows if r.record["type"] == "generation"]
    kbs = [(f"kb-{n:05d}", rng.choice(embedding), rng.choice(generation)) for n in range(max(1, len(rows) // 200))]
    with connection.cursor() as cursor:
        cursor.executemany("INSERT INTO knowledge_bases (name, embedding_model_id, generation_model_id) VALUES (%s, %s, %s)", kbs)
    connection.commit()


class ScratchDatabase:
    """A database of our own on the admin connection's server, dropped on exit (also on Ctrl-C)."""

    def __init__(self, admin_url: str) -> None:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        self.admin_url = admin_url
        self.name = f"llm_registry_bench_{os.getpid()}_{random_secrets.token_hex(4)}"
        try:
            self.admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as error:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise BenchError(f"no PostgreSQL server reachable at {_masked(admin_url)}: {reason}") from None
        params = conninfo_to_dict(admin_url)
        params["dbname"] = self.name
        self.conninfo = make_conninfo(**params)
        self.url = _url_with_database(admin_url, self.name)

    def __enter__(self) -> "ScratchDatabase":
        self.admin.execute(f'CREATE DATABASE "{self.name}"')
        return self

    def migrate(self) -> None:
        """`llm-registry db upgrade` on the scratch database (a BenchError if it fails)."""
        upgrade = subprocess.run(
            [*command_prefix(), "db", "upgrade", "--database-url", self.url], capture_output=True, text=True, check=False
        )
        if upgrade.returncode != 0:
            raise BenchError(f"llm-registry db upgrade failed: {upgrade.stderr.strip()[-500:]}")

    def __exit__(self, *exc: object) -> None:
        try:
            self.admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            self.admin.close()


def _url_with_database(url: str, database: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _masked(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


# ----------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Figures:
    """Median wall and CPU time, the largest peak RSS, and the median ratios to the floor run beside each run."""

    seconds: float
    peak_mb: float
    runs: int
    ratio: float = 1.0
    cpu: float = 0.0
    cpu_ratio: float = 1.0


def command_prefix() -> list[str]:
    """The installed console script next to this interpreter, else `python -m reconciler`."""
    script = Path(sys.executable).parent / "llm-registry"
    return [str(script)] if script.exists() else [sys.executable, "-m", "reconciler"]


@dataclass(frozen=True)
class Command:
    """A command to measure and what it must end with (so a broken run is never timed)."""

    argv: list[str]
    returncode: int
    last_line: str


Run = tuple[float, float, float]  # wall seconds, peak RSS (MB), CPU seconds (user + system)


def run_once(command: Command, env: dict[str, str]) -> Run:
    """Wall seconds, peak RSS (MB) and CPU seconds of one run, in a fresh measuring process."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, json.dumps(command.argv)], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"the measuring process failed: {done.stderr.strip()[-500:]}")
    result = json.loads(done.stdout)
    if result["returncode"] != command.returncode or result["last_line"] != command.last_line:
        raise BenchError(
            f"{' '.join(command.argv[:2])} ... exited {result['returncode']} (expected {command.returncode}); "
            f"last line {result['last_line']!r} (expected {command.last_line!r}); "
            f"stderr: {result['stderr'].strip()[-500:]}"
        )
    return result["seconds"], result["peak_kib"] / 1024, result["cpu"]


def measure(commands: dict[str, Command], env: dict[str, str], repeat: int) -> dict[str, list[Run]]:
    """Run the commands in turns (so a busy moment of the machine hits them alike), once to warm up, then `repeat` times."""
    runs: dict[str, list[Run]] = {label: [] for label in commands}
    for round_number in range(repeat + 1):
        for label, command in commands.items():
            figures = run_once(command, env)
            if round_number:  # the first round only warms caches
                runs[label].append(figures)
    return runs


def summarise(runs: list[Run], floor: list[Run] | None = None) -> Figures:
    """Median wall and CPU time, largest peak RSS; with `floor` (run in the same rounds), the median per-round ratios."""
    ratio = statistics.median(t / f for (t, _, _), (f, _, _) in zip(runs, floor)) if floor else 1.0
    cpu_ratio = statistics.median(c / f for (_, _, c), (_, _, f) in zip(runs, floor)) if floor else 1.0
    return Figures(
        statistics.median(t for t, _, _ in runs), max(m for _, m, _ in runs), len(runs), ratio,
        statistics.median(c for _, _, c in runs), cpu_ratio,
    )  # fmt: skip


@dataclass(frozen=True)
class SizeResult:
    size: int
    files: int
    drift: Drift
    floor: Figures  # both phases' floor runs together (for the marginal cost per model)
    floor_before: Figures  # the floor of the no-op's rounds
    floor_after: Figures  # the floor of the drift's rounds (the same files, the drifted table)
    noop: Figures
    drifted: Figures


def run_size(scratch: ScratchDatabase, size: int, repeat: int, workdir: Path) -> SizeResult:
    import psycopg

    rng = random.Random(SEED + size)
    models = generate_models(size, rng)
    directory = workdir / f"registry-{size}"
    files = write_registry(models, directory)
    rows = rows_for(models)
    env = {**os.environ, **KEY_VALUES, ENCRYPTION_KEY_ENV: PASSPHRASE, "NO_COLOR": "1"}
    # An installed command has its .pyc files (pip compiles at install time): let the
    # warm-up round write them where PYTHONDONTWRITEBYTECODE is set (as on the shared
    # test machine), or every timed run would compile the project's sources again.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("LLM_REGISTRY_DATABASE_URL", None)
    plan = [*command_prefix(), "plan", str(directory), "--database-url", scratch.url, "--detailed-exitcode"]
    floor_argv = [sys.executable, "-c", FLOOR, str(directory), scratch.conninfo]

    with psycopg.connect(scratch.conninfo) as connection:
        ciphertext = encrypt_api_key(KEY_VALUES["OPENAI_API_KEY"], PASSPHRASE)
        connection.execute("TRUNCATE knowledge_bases, llm_models")
        copy_rows(connection, rows, ciphertext)
        connection.commit()
        add_knowledge_bases(connection, rows, rng)
        floor = Command(floor_argv, 0, f"{size} models, {size} rows")
        noop = Command(plan, 0, "No changes. The registry in the database matches the definitions.")
        before = measure({"floor": floor, "noop": noop}, env, repeat)
        drift = apply_drift(connection, rows, ciphertext, rng)
        drifted = Command(plan, 2, drift.summary())
        floor_after = Command(floor_argv, 0, f"{size} models, {size - drift.creates + drift.deletes} rows")
        after = measure({"floor": floor_after, "drift": drifted}, env, repeat)
    return SizeResult(
        size,
        files,
        drift,
        summarise(before["floor"] + after["floor"]),
        summarise(before["floor"]),
        summarise(after["floor"]),
        summarise(before["noop"], before["floor"]),
        summarise(after["drift"], after["floor"]),
    )


# ----------------------------------------------------------------------------- report


def print_table(results: list[SizeResult], repeat: int) -> None:
    header = (
        f"{'models':>8} {'files':>6}  {'command':<22} {'median':>9} {'x floor':>8} {'peak MB':>8} {'us/model':>9} "
        f"{'CPU':>8} {'CPU x':>6}"
    )
    print(header)
    print("-" * len(header))
    for result in results:
        # Each plan's ratio is to the floor of its own rounds: the two floors are shown.
        rows = (
            ("floor (yaml + SELECT)", result.floor_before),
            ("plan, no changes", result.noop),
            ("floor, drifted table", result.floor_after),
            ("plan, 1% drift", result.drifted),
        )
        for label, figures in rows:
            print(
                f"{result.size:>8,} {result.files:>6}  {label:<22} {figures.seconds:>8.3f}s {figures.ratio:>7.2f}x "
                f"{figures.peak_mb:>8.1f} {figures.seconds / result.size * 1e6:>9.1f} {figures.cpu:>7.3f}s {figures.cpu_ratio:>5.2f}x"
            )
        d = result.drift
        print(f"{'':>17}(drift: {d.updates} updated, {d.creates} missing, {d.deletes} extra rows)")
    if len(results) > 1:
        print()
        print("marginal cost per model between sizes (equal figures = linear growth):")
        for before, after in zip(results, results[1:]):
            span = after.size - before.size
            cells = [
                f"{label} {(getattr(after, attr).seconds - getattr(before, attr).seconds) / span * 1e6:.1f} us"
                for label, attr in (("floor", "floor"), ("no-op", "noop"), ("drift", "drifted"))
            ]
            print(f"  {before.size:,} -> {after.size:,}: " + ", ".join(cells))
    print()
    print(f"median of {repeat} runs after one warm-up round; each round runs the floor and a plan back to back, and")
    print("'x floor' is the median of those per-round ratios (the drift's floor reads the drifted table);")
    print("peak = largest RSS high-water mark; CPU = user + system time of the measured process (steadier")
    print("than wall time on a busy machine)")
    print("goals (issue 13): at 10,000 models, no-op and 1%-drift plan within 1.5x the (GC-paused) floor;")
    print("at 100,000 models under 500 MB peak; linear growth (equal marginal cost per model)")
    for result in results:
        if result.size == 10_000:
            for label, figures in (("no-op", result.noop), ("1% drift", result.drifted)):
                met = figures.ratio <= 1.5
                print(f"  10,000 {label}: {figures.ratio:.2f}x floor -> {'met' if met else 'NOT MET'}")
        if result.size == 100_000:
            for label, figures in (("no-op", result.noop), ("1% drift", result.drifted)):
                met = figures.peak_mb < 500
                print(f"  100,000 {label}: {figures.peak_mb:.0f} MB peak -> {'met' if met else 'NOT MET'}")


def main() -> int:
    """Run every size, print the table; exit 1 only when the benchmark itself cannot run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_ADMIN_URL, help=f"admin connection (default {DEFAULT_ADMIN_URL})")
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated model counts (default 1000,10000,100000)")
    parser.add_argument("--repeat", type=int, default=5, help="measured runs per command, after one warm-up (default 5)")
    parser.add_argument("--keep", type=Path, help="write the registries into this directory and keep them")
    args = parser.parse_args()
    try:
        sizes = [int(size.replace("_", "")) for size in args.sizes.split(",") if size.strip()]
    except ValueError:
        parser.error("--sizes takes comma-separated integers, e.g. 1000,10000")
    if not sizes or min(sizes) < 10 or args.repeat < 1:
        parser.error("every size must be at least 10 and --repeat at least 1")

    # SIGTERM (a CI job cancelled) unwinds like Ctrl-C, through the cleanup below.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="llm-registry-bench-"))
    try:
        scratch = ScratchDatabase(args.database_url)
        with scratch:
            scratch.migrate()
            print(f"scratch database {scratch.name}; {' '.join(command_prefix())}; sizes {', '.join(f'{s:,}' for s in sizes)}", flush=True)
            results = []
            for size in sizes:
                started = time.perf_counter()
                results.append(run_size(scratch, size, args.repeat, workdir))
                print(f"  {size:,} models done in {time.perf_counter() - started:.0f}s", file=sys.stderr, flush=True)
        print()
        print_table(results, args.repeat)
        if args.keep:
            print(f"\nregistries kept in {workdir}; profile one with e.g.\n  {' '.join(command_prefix())} plan "
                  f"{workdir}/registry-{sizes[-1]} --database-url URL  (python -m cProfile -s cumtime -m reconciler ...)")
        return 0
    except BenchError as error:
        print(f"bench/plan.py: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; the scratch database was dropped", file=sys.stderr)
        return 130
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
