"""Time `export`'s exporter (rows -> registry files) against dumping the same documents with PyYAML's C emitter.

    .venv/bin/python -m bench.export                 # 10,000 rows, 7 rounds
    .venv/bin/python -m bench.export --rows 50000 --rounds 3

In process, no database: the rows are `StoredModel`s as `read_state` returns them
(a third hand-made, a third with NULL parameters, keys on the hosted providers).
Floor: `yaml.dump` of each finished document with the C emitter (one call per model,
as a file with a comment above some models needs), the least any exporter writing
YAML does. (One `yaml.dump` of the whole list is slower: PyYAML's representer keeps
every object it has seen to find aliases.) Floor and exporter run in turns; the ratio is the
median of the per-round ratios. Goal: within 1.5x of the floor.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402

from reconciler.export import ExportModel, export_registry, key_variables, model_document  # noqa: E402
from tests.factories import stored_model  # noqa: E402

GOAL = 1.5


def make_models(count: int) -> list[ExportModel]:
    """`count` rows over the three types, some hand-made, some with NULL parameters, some with keys."""
    rows = []
    for i in range(count):
        kind = ("embedding", "generation", "ner")[i % 3]
        nulls = {"normalize": None, "distance_metric": None} if kind == "embedding" and i % 2 else {}
        columns = {"type": kind, "description": f"model {i}", **nulls}
        if kind == "generation":
            columns.update(provider="openai", model_id="gpt-4o-mini", api_endpoint=None, api_key="fp", context_window=128000,
                           dimensions=None, max_tokens=None, normalize=None, distance_metric=None, batch_size=None,
                           temperature=0.2, top_p=1.0)  # fmt: skip
        if kind == "ner":
            columns.update(dimensions=None, normalize=None, distance_metric=None, max_tokens=512, batch_size=16)
        rows.append(stored_model(f"m{i}", managed_by=None if i % 3 == 1 else "llm-registry", **columns))
    variables = key_variables([r.name for r in rows if r.record["api_key"]])
    return [ExportModel(r.name, r.record, variables.get(r.name), r.managed) for r in rows]


def main() -> int:
    """Print floor, exporter and their ratio; exit 1 when the ratio is above the goal."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    models = make_models(args.rows)
    documents = [model_document(m)[0] for m in models]
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    floors, exports, ratios = [], [], []
    for _ in range(args.rounds):
        gc.collect()
        started = time.perf_counter()
        for document in documents:
            yaml.dump([document], Dumper=dumper, sort_keys=False, allow_unicode=True)
        floor = time.perf_counter() - started
        gc.collect()
        started = time.perf_counter()
        export_registry(models)
        exported = time.perf_counter() - started
        floors.append(floor)
        exports.append(exported)
        ratios.append(exported / floor)
    ratio = statistics.median(ratios)
    print(
        f"{args.rows} rows: floor {statistics.median(floors):.3f} s, export {statistics.median(exports):.3f} s, "
        f"ratio {ratio:.2f}x (goal <= {GOAL}x)"
    )
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    raise SystemExit(main())
