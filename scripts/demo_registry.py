"""Demo helpers: the fake provider's arguments for a registry, and a copy pointed at it.

    python scripts/demo_registry.py flags SOURCE_DIR
        prints `--dimensions=MODEL_ID=N` for each embedding model
    python scripts/demo_registry.py copy SOURCE_DIR TARGET_DIR FAKE_URL
        writes a copy of the registry with every api_endpoint set to FAKE_URL

The demo never reaches a real provider.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any, Iterator

import yaml


def _documents(source: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(source.rglob("*.y*ml")):
        yield path, yaml.safe_load(path.read_text())


def flags(source: Path) -> str:
    """The fake provider's --dimensions arguments for every embedding model."""
    return " ".join(
        f"--dimensions={model['model_id']}={model['parameters']['dimensions']}"
        for _, document in _documents(source)
        for model in document.get("models") or []
        if model["type"] == "embedding"
    )


def copy(source: Path, target: Path, fake_url: str) -> None:
    """Write the copy of `source` under `target`, every endpoint set to `fake_url`."""
    if target.exists():
        shutil.rmtree(target)
    for path, document in _documents(source):
        for model in document.get("models") or []:
            model["api_endpoint"] = fake_url
        out = target / path.relative_to(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        header = f"# Demo copy of {path}: every endpoint points at the local fake provider.\n"
        out.write_text(header + yaml.safe_dump(document, sort_keys=False))


if __name__ == "__main__":
    if sys.argv[1:2] == ["flags"]:
        print(flags(Path(sys.argv[2])))
    elif sys.argv[1:2] == ["copy"]:
        copy(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(__doc__)
