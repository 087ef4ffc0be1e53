"""Read the registry directory into documents that remember where every value came from.

The loader is the only part that touches the files. It composes each file with
PyYAML (libyaml's C parser where available) into nodes, then builds plain Python
data itself so that it can:

- keep `file:line:column` for every key and value (`Document.positions`);
- refuse duplicate keys in one mapping (PyYAML silently keeps the last one);
- bound the work of alias expansion (a "billion laughs" file fails fast) and nesting;
- refuse binary content, invalid UTF-8, oversized files and symlinks that leave the
  registry directory, each with a clear message instead of a trace or a hang.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reconciler.diagnostics import Diagnostic, Location, error, warning

MAX_FILE_BYTES = 1024 * 1024
# Nodes built per file, counting every expansion of an alias: a 1 MiB file of plain
# YAML stays far below this, an alias bomb reaches it in milliseconds.
MAX_NODES = 500_000
MAX_DEPTH = 64
YAML_SUFFIXES = (".yaml", ".yml")

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Document:
    """One parsed file: its data and the location of every value and key in it.

    `positions[path]` is where the value at `path` starts (e.g. `("models", 0, "name")`);
    `key_positions[path]` is where its key is written (for "unknown key" messages).
    """

    file: str
    data: Any
    positions: dict[Path_, Location] = field(default_factory=dict)
    key_positions: dict[Path_, Location] = field(default_factory=dict)

    def location(self, path: Path_, *, key: bool = False) -> Location:
        """The best place to point at for `path`: itself, else its nearest ancestor."""
        table = self.key_positions if key else self.positions
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if prefix in table:
                return table[prefix]
            if prefix in self.positions:
                return self.positions[prefix]
        return Location(self.file, 1, 1)


class _LoadError(Exception):
    def __init__(self, code: str, message: str, location: Location) -> None:
        super().__init__(message)
        self.diagnostic = error(code, message, location)


def display_path(path: Path) -> str:
    """The path as a user would type it: relative to the working directory when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def discover_files(root: Path) -> tuple[list[Path], list[Diagnostic]]:
    """Every `*.yaml`/`*.yml` file under `root`, recursively, in sorted order.

    Hidden files and directories (editor lock files, `.git`) are skipped. A symlink
    is followed only when its target stays inside `root`; one that leaves it is an error.
    """
    if not root.exists():
        return [], [error("directory-missing", f"registry directory {display_path(root)} does not exist")]
    if root.is_file():
        return [root], []
    real_root = root.resolve()
    files: list[Path] = []
    diagnostics: list[Diagnostic] = []
    seen_dirs: set[Path] = set()

    def walk(directory: Path) -> None:
        real = directory.resolve()
        if real in seen_dirs:
            return
        seen_dirs.add(real)
        for entry in sorted(directory.iterdir(), key=lambda p: p.name):
            if entry.name.startswith("."):
                continue
            if entry.is_symlink():
                target = entry.resolve()
                if not target.is_relative_to(real_root):
                    if entry.is_dir() or entry.suffix in YAML_SUFFIXES:
                        diagnostics.append(
                            error(
                                "symlink-outside",
                                f"{display_path(entry)} is a symlink that points outside the registry "
                                f"directory; copy the file in instead",
                                Location(display_path(entry), 1, 1),
                            )
                        )
                    continue
            if entry.is_dir():
                walk(entry)
            elif entry.suffix in YAML_SUFFIXES and entry.is_file():
                files.append(entry)

    walk(root)
    return files, diagnostics


def _decode(path: Path, shown: str) -> str:
    with path.open("rb") as handle:
        raw = handle.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise _LoadError(
            "file-too-large",
            f"file is larger than {MAX_FILE_BYTES // 1024} KiB; split the models over several files",
            Location(shown, 1, 1),
        )
    nul = raw.find(b"\x00")
    if nul != -1:
        line = raw.count(b"\n", 0, nul) + 1
        raise _LoadError("binary-file", "file contains binary data (a NUL byte); expected YAML text", Location(shown, line, 1))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _LoadError(
            "invalid-utf8", f"invalid UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8", Location(shown, line, column)
        ) from None
    return text.removeprefix("\ufeff")


def _mark(shown: str, mark: Any) -> Location:
    return Location(shown, mark.line + 1, mark.column + 1)


class _Builder:
    """Turns composed YAML nodes into plain data, recording positions on the way."""

    def __init__(self, loader: Any, shown: str) -> None:
        self.loader = loader
        self.shown = shown
        self.positions: dict[Path_, Location] = {}
        self.key_positions: dict[Path_, Location] = {}
        self.nodes_built = 0
        # Problems that do not stop the file from being read (so later errors still show).
        self.problems: list[Diagnostic] = []

    def build(self, node: yaml.Node, path: Path_, depth: int = 0) -> Any:
        self.nodes_built += 1
        if self.nodes_built > MAX_NODES:
            raise _LoadError(
                "too-many-nodes",
                f"file expands to more than {MAX_NODES} values (an alias expansion bomb?); "
                "remove the repeated aliases",
                _mark(self.shown, node.start_mark),
            )
        if depth > MAX_DEPTH:
            raise _LoadError(
                "too-deep",
                f"values nested deeper than {MAX_DEPTH} levels (or an alias that contains itself)",
                _mark(self.shown, node.start_mark),
            )
        self.positions.setdefault(path, _mark(self.shown, node.start_mark))
        if isinstance(node, yaml.ScalarNode):
            return self.loader.construct_object(node)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (index,), depth + 1) for index, item in enumerate(node.value)]
        assert isinstance(node, yaml.MappingNode)
        return self._build_mapping(node, path, depth)

    def _build_mapping(self, node: yaml.MappingNode, path: Path_, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        first_seen: dict[Any, Location] = {}
        merged_from: list[yaml.MappingNode] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged_from.extend(self._merge_sources(value_node))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise _LoadError("bad-key", "a mapping key must be a plain value, not a list or mapping", _mark(self.shown, key_node.start_mark))
            key = self.loader.construct_object(key_node)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                key = str(key)
            key_location = _mark(self.shown, key_node.start_mark)
            if key in first_seen:
                self.problems.append(
                    error(
                        "duplicate-key",
                        f"duplicate key {key!r} in one mapping (first defined at line {first_seen[key].line}); "
                        "YAML would silently keep only the last one",
                        key_location,
                    )
                )
                continue
            first_seen[key] = key_location
            self.key_positions[path + (key,)] = key_location
            result[key] = self.build(value_node, path + (key,), depth + 1)
        # Explicit keys win over merged ones (YAML merge-key semantics).
        for source in merged_from:
            merged = self._build_mapping(source, path, depth + 1)
            for key, value in merged.items():
                result.setdefault(key, value)
        return result

    def _merge_sources(self, value_node: yaml.Node) -> list[yaml.MappingNode]:
        if isinstance(value_node, yaml.MappingNode):
            return [value_node]
        if isinstance(value_node, yaml.SequenceNode) and all(isinstance(n, yaml.MappingNode) for n in value_node.value):
            return list(value_node.value)
        raise _LoadError("bad-merge", "'<<' must merge a mapping or a list of mappings", _mark(self.shown, value_node.start_mark))


def load_file(path: Path, shown: str | None = None) -> tuple[Document | None, list[Diagnostic]]:
    """Parse one file into a located Document, or return the diagnostics that stop it."""
    shown = shown or display_path(path)
    loader = None
    try:
        text = _decode(path, shown)
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            raise _LoadError("empty-file", "file is empty; expected a mapping with 'version: 1' and 'models:'", Location(shown, 1, 1))
        builder = _Builder(loader, shown)
        data = builder.build(node, ())
        return Document(shown, data, builder.positions, builder.key_positions), builder.problems
    except _LoadError as exc:
        return None, [exc.diagnostic]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = _mark(shown, mark) if mark else Location(shown, 1, 1)
        problem = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        return None, [error("yaml-syntax", f"YAML syntax error: {problem}", location)]
    except yaml.YAMLError as exc:
        return None, [error("yaml-syntax", f"YAML error: {type(exc).__name__}", Location(shown, 1, 1))]
    except RecursionError:
        return None, [error("too-deep", f"values nested too deeply to read (more than {MAX_DEPTH} levels)", Location(shown, 1, 1))]
    except OSError as exc:
        return None, [error("unreadable", f"cannot read file: {exc.strerror or type(exc).__name__}", Location(shown, 1, 1))]
    finally:
        if loader is not None:
            loader.dispose()


def load_directory(root: Path) -> tuple[list[Document], list[Diagnostic]]:
    """Load every registry file under `root`; diagnostics for the ones that cannot be read."""
    files, diagnostics = discover_files(root)
    documents: list[Document] = []
    for path in files:
        document, problems = load_file(path)
        diagnostics.extend(problems)
        if document is not None:
            documents.append(document)
    if not files and not diagnostics:
        diagnostics.append(
            warning("no-files", f"no *.yaml or *.yml files under {display_path(root)}: the registry is empty")
        )
    return documents, diagnostics
