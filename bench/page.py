"""Render time and size of the registry page at 100 / 1,000 / 10,000 models, against a floor.

The page's data is built in memory (no database: `report` and `serve` add one read of
the registry, which `bench/plan.py` measures). For each size, in alternating turns:

- floor: every value the page shows, `html.escape`d and joined into one string by
  hand (the least work any HTML renderer of the same content must do);
- page: `build_registry_page` + `render_registry_html` (Jinja2, autoescape, the
  escape_text finalize, detail panels).

Prints the median of each and the median of the per-round ratios page/floor, and the
page's size. Goal: linear growth, within 10x the hand-written floor (a template engine
with per-value escaping and visible-control-character checks).

    .venv/bin/python bench/page.py
    .venv/bin/python bench/page.py --sizes 1000 --rounds 9
"""

from __future__ import annotations

import argparse
import html
import statistics
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from reconciler import MANAGED_BY
from reconciler.audit import StoredAuditEvent
from reconciler.page.data import RegistryPage, build_registry_page
from reconciler.page.render import render_registry_html
from reconciler.spec import RECORD_FIELDS
from reconciler.state import KnowledgeBase, RegistryState, StoredModel

WHEN = datetime(2026, 11, 27, tzinfo=timezone.utc)


def make_state(size: int) -> tuple[RegistryState, list[StoredAuditEvent]]:
    """`size` models (embedding and generation alternating), a KB per 20 models, 3 events per model."""
    models = []
    for index in range(size):
        record: dict[str, Any] = {field: None for field in RECORD_FIELDS}
        if index % 2:
            record.update(type="generation", provider="openai", model_id=f"gpt-{index}", api_key="f" * 64,
                          context_window=128000, max_output_tokens=4096, temperature=0.7, top_p=1.0)  # fmt: skip
        else:
            record.update(type="embedding", provider="ollama", model_id=f"embed-{index}", api_endpoint="http://ollama.internal:11434",
                          dimensions=768, max_tokens=8192, normalize=True, distance_metric="cosine", batch_size=32)  # fmt: skip
        record.update(is_active=index % 7 != 0, is_default=index < 2, description=f"model number {index} <for KBs>")
        models.append(StoredModel(str(uuid.uuid4()), f"model-{index:05d}", MANAGED_BY, record))
    kbs = tuple(
        KnowledgeBase(str(uuid.uuid4()), f"kb-{index}", models[index].id, models[index + 1].id) for index in range(0, size - 1, 20)
    )
    events = []
    for index, model in enumerate(models):
        run = f"run-{index // 50}"
        events.append(StoredAuditEvent(3 * index, WHEN, run, "MODEL_CREATED", model.name, model.id, "ci", "abc123", {"configuration": {"type": model.record["type"]}}))
        events.append(StoredAuditEvent(3 * index + 1, WHEN, run, "MODEL_CONNECTION_TESTED", model.name, model.id, "ci", "abc123",
                                       {"outcome": "success", "status": "ok", "latency_ms": 12, "message": "completion returned"}))  # fmt: skip
        events.append(StoredAuditEvent(3 * index + 2, WHEN, run, "MODEL_UPDATED", model.name, model.id, "ci", "abc123",
                                       {"changes": {"temperature": {"before": 0.5, "after": 0.7}}}))  # fmt: skip
    return RegistryState(tuple(models), kbs), events


def floor(page: RegistryPage) -> str:
    """Every shown value escaped and joined by hand: the least an HTML renderer must do."""
    e = html.escape
    out = []
    for m in page.models:
        out.append(
            f"<tr><td>{e(m.name)}</td><td>{e(m.model_type)}</td><td>{e(m.provider)}</td><td>{e(m.model_id)}</td>"
            f"<td>{e(m.endpoint_host or '')}</td><td>{'Active' if m.active else 'Inactive'}</td></tr>"
        )
        out.append("".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in m.parameters))
        out.append("".join(f"<li>{e(kb)}</li>" for kb in m.knowledge_bases))
        out.append("".join(f"<tr><td>{e(t.occurred_at)}</td><td>{e(t.status)}</td><td>{e(t.message)}</td></tr>" for t in m.tests))
        for ev in m.events:
            out.append(f"<tr><td>{e(ev.occurred_at)}</td><td>{e(ev.event_type)}</td>" + "".join(f"{e(a)}: {e(b)}" for a, b in ev.details))
    for run in page.runs:
        for ev in run.events:
            out.append(f"<tr><td>{e(ev.model_name)}</td><td>{e(ev.event_type)}</td>" + "".join(f"{e(a)}: {e(b)}" for a, b in ev.details))
    return "".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    render_registry_html(build_registry_page(RegistryState()))  # warm-up: template compilation, imports
    print(f"{'models':>7}  {'floor ms':>9}  {'page ms':>8}  {'ratio':>6}  {'page size':>10}")
    for size in (int(s) for s in args.sizes.split(",")):
        state, events = make_state(size)
        floors, pages, ratios, length = [], [], [], 0
        for _ in range(args.rounds):
            started = time.perf_counter()
            page = build_registry_page(state, recent_events=events[-200:], model_events=events, generated_at=WHEN)
            floor(page)
            floor_s = time.perf_counter() - started
            started = time.perf_counter()
            document = render_registry_html(build_registry_page(state, recent_events=events[-200:], model_events=events, generated_at=WHEN))
            page_s = time.perf_counter() - started
            floors.append(floor_s)
            pages.append(page_s)
            ratios.append(page_s / floor_s)
            length = len(document.encode())
        print(
            f"{size:>7}  {1000 * statistics.median(floors):>9.1f}  {1000 * statistics.median(pages):>8.1f}  "
            f"{statistics.median(ratios):>5.2f}x  {length / 1e6:>8.2f} MB"
        )


if __name__ == "__main__":
    main()
