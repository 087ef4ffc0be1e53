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

import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

from reconciler.diagnostics import Diagnostic, Location, error, warning

MAX_FILE_BYTES = 1024 * 1024
# Nodes built per file, counting every expansion of an alias: a 1 MiB file of plain
# YAML stays far below this, an alias bomb reaches it in milliseconds.
MAX_NODES = 500_000
MAX_DEPTH = 64
# Integers a registry holds fit in 32 bits; anything past this is refused at load.
MAX_INT_BITS = 256
YAML_SUFFIXES = (".yaml", ".yml")

_TAG = "tag:yaml.org,2002:"
_MERGE_TAG = _TAG + "merge"
_SEQ_TAG, _MAP_TAG = _TAG + "seq", _TAG + "map"
_BOOL_TAG, _INT_TAG, _FLOAT_TAG, _STR_TAG, _TIMESTAMP_TAG = (
    _TAG + "bool", _TAG + "int", _TAG + "float", _TAG + "str", _TAG + "timestamp",
)
# Scalar tags a registry file may use (implicitly or written out); anything else
# (!!binary, !!python/..., local !tags) is refused rather than half-understood.
_CONTAINER_TAGS = {yaml.SequenceNode: _SEQ_TAG, yaml.MappingNode: _MAP_TAG}
_SCALAR_TAGS = frozenset({_STR_TAG, _INT_TAG, _FLOAT_TAG, _BOOL_TAG, _TAG + "null", _TIMESTAMP_TAG, _MERGE_TAG})
# A YAML 1.2 number with an exponent and no dot ("1e-3"), which YAML 1.1 reads as a string.
_EXPONENT_NUMBER = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+")
# Only a plain scalar starting with one of these can match _EXPONENT_NUMBER.
_NUMBER_START = frozenset("-+.0123456789")
_BOOLEANS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """The safe loader with a leaner tag resolver (libyaml calls it once per node).

    Same answers as PyYAML's `BaseResolver.resolve` for the safe loader's implicit
    resolvers and no path resolvers (a registry registers none), without its
    per-call list building and path bookkeeping: a fifth of the loader's time.
    """

    _IMPLICIT = _BaseLoader.yaml_implicit_resolvers
    _WILDCARD = tuple(_BaseLoader.yaml_implicit_resolvers.get(None, ()))
    # Plain scalar -> its tag. A registry repeats the same keys and many of the same
    # values (`type: embedding`, `active: true`) in every model: each is matched against
    # the resolvers' regular expressions once. Bounded (short values, a few thousand of
    # them), so a hostile file cannot grow it.
    _PLAIN_TAGS: dict[str, str] = {}
    _PLAIN_TAGS_LIMIT = 4096

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode:
            if implicit[0]:
                tag = self._PLAIN_TAGS.get(value)
                if tag is None:
                    tag = self._resolve_plain(value)
                    if len(value) <= 64 and len(self._PLAIN_TAGS) < self._PLAIN_TAGS_LIMIT:
                        self._PLAIN_TAGS[value] = tag
                return tag
            return _STR_TAG
        return _SEQ_TAG if kind is yaml.SequenceNode else _MAP_TAG

    def _resolve_plain(self, value: str) -> str:
        for tag, regexp in self._IMPLICIT.get(value[:1], ()):
            if regexp.match(value):
                return tag
        for tag, regexp in self._WILDCARD:
            if regexp.match(value):
                return tag
        return _STR_TAG

    # No path resolvers, so nothing to track when the composer enters or leaves a node
    # (twice per node): C builtins that ignore their arguments, called without a
    # Python frame.
    descend_resolver = staticmethod(operator.is_)
    ascend_resolver = staticmethod(tuple)

Path_ = tuple[str | int, ...]


class Positions(Mapping[Path_, Location]):
    """Path -> Location in one file, kept as 0-based (line, column) pairs until asked for.

    A large registry has hundreds of thousands of positions and a valid one looks up
    a few per model, so each Location is made on lookup rather than up front (pairs of
    ints are also cheaper to keep than Location or parser Mark objects).
    """

    def __init__(self, file: str, marks: dict[Path_, tuple[int, int]]) -> None:
        self.file = file
        self._marks = marks

    def __getitem__(self, path: Path_) -> Location:
        line, column = self._marks[path]
        return Location(self.file, line + 1, column + 1)

    def __contains__(self, path: object) -> bool:
        return path in self._marks

    def get(self, path: Path_, default: Location | None = None) -> Location | None:  # type: ignore[override]
        """The Location at `path`, or `default`: one lookup (Mapping.get would make two calls)."""
        mark = self._marks.get(path)
        return default if mark is None else Location(self.file, mark[0] + 1, mark[1] + 1)

    def __iter__(self) -> Iterator[Path_]:
        return iter(self._marks)

    def __len__(self) -> int:
        return len(self._marks)


@dataclass(frozen=True)
class Document:
    """One parsed file: its data and the location of every value and key in it.

    `positions[path]` is where the value at `path` starts (e.g. `("models", 0, "name")`);
    `key_positions[path]` is where its key is written (for "unknown key" messages).
    """

    file: str
    data: Any
    positions: Mapping[Path_, Location] = field(default_factory=dict)
    key_positions: Mapping[Path_, Location] = field(default_factory=dict)

    def location(self, path: Path_, *, key: bool = False) -> Location:
        """The best place to point at for `path`: itself, else its nearest ancestor."""
        table = self.key_positions if key else self.positions
        found = table.get(path)  # nearly always there: no ancestor to look for
        if found is not None:
            return found
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            found = table.get(prefix)
            if found is None and key:
                found = self.positions.get(prefix)
            if found is not None:
                return found
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
        return [], [
            error(
                "directory-missing",
                f"registry directory {display_path(root)} does not exist; "
                # Said for every command that reads the files (validate, plan, apply, test, ...).
                "run from the repository root or pass the registry's directory as an argument",
            )
        ]
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
        try:
            entries = sorted(directory.iterdir(), key=lambda p: p.name)
        except OSError as exc:
            shown = display_path(directory)
            message = f"cannot read directory {shown}: {exc.strerror or type(exc).__name__}"
            diagnostics.append(error("unreadable", message, Location(shown, 1, 1)))
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_symlink():
                try:
                    target = entry.resolve()
                except (RuntimeError, OSError):  # a symlink loop (RuntimeError before 3.13)
                    if entry.suffix in YAML_SUFFIXES:
                        diagnostics.append(
                            error("broken-symlink", f"{display_path(entry)} is a symlink loop", Location(display_path(entry), 1, 1))
                        )
                    continue
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
                if not entry.exists() and entry.suffix in YAML_SUFFIXES:
                    diagnostics.append(
                        error(
                            "broken-symlink",
                            f"{display_path(entry)} is a symlink to a file that does not exist",
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
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _LoadError("not-utf8", "file is UTF-16 text; save it as UTF-8", Location(shown, 1, 1))
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


def _unsupported_tag(node: yaml.Node, shown: str) -> _LoadError:
    return _LoadError(
        "unsupported-tag",
        f"unsupported YAML tag {node.tag.replace(_TAG, '!!')!r}; write the plain value without a tag",
        _mark(shown, node.start_mark),
    )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_structure(node: yaml.Node, shown: str) -> None:
    """Bound the work before building anything: cycles, depth, tags and alias expansion.

    Run only on files with anchors; the builder checks tags and depth again itself.

    An alias makes the composer reuse one node object, so the expanded size of every
    node can be counted once per distinct node (memoised by identity): a "billion
    laughs" file is refused after a few hundred steps instead of after building
    MAX_NODES values, and an anchor that contains its own alias is named as such
    instead of recursing until the depth limit.
    """
    check = _StructureCheck(shown)
    total = check.size(node, 0)
    if total <= MAX_NODES:
        return
    # Point at the smallest value that alone expands past the limit: the bomb's fuse.
    culprit = node
    while True:
        bigger = [child for child in _children(culprit) if check.sizes.get(id(child), 0) > MAX_NODES]
        if not bigger:
            break
        culprit = bigger[0]
    raise _LoadError(
        "too-many-nodes",
        f"this value expands through aliases to {check.sizes[id(culprit)]:,} values (limit {MAX_NODES:,}): "
        "an alias expansion bomb? Write the values out or use fewer nested aliases",
        _mark(shown, culprit.start_mark),
    )


class _StructureCheck:
    """The walk of `_check_structure`: expanded sizes memoised by node identity.

    A class rather than nested functions: a recursive closure is a reference cycle,
    which would keep the memo alive until the garbage collector runs.
    """

    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.sizes: dict[int, int] = {}
        self.open_nodes: set[int] = set()

    def check_node(self, current: yaml.Node, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise _LoadError(
                "too-deep",
                f"values nested deeper than {MAX_DEPTH} levels; a registry file needs only a few",
                _mark(self.shown, current.start_mark),
            )
        expected = _CONTAINER_TAGS.get(type(current))
        if (current.tag != expected) if expected else (current.tag not in _SCALAR_TAGS):
            raise _unsupported_tag(current, self.shown)

    def size(self, current: yaml.Node, depth: int) -> int:
        key = id(current)
        if key in self.sizes:
            return self.sizes[key]
        if key in self.open_nodes:
            raise _LoadError(
                "alias-cycle",
                "an alias refers to a value that contains that alias (a self-referencing anchor); "
                "YAML cannot expand it",
                _mark(self.shown, current.start_mark),
            )
        self.check_node(current, depth)
        self.open_nodes.add(key)
        total = 1
        for child in _children(current):
            if isinstance(child, yaml.ScalarNode):
                # Most nodes are scalars: no children, so no memo and no cycle to look for.
                self.check_node(child, depth + 1)
                total += 1
            else:
                total += self.size(child, depth + 1)
        self.open_nodes.discard(key)
        self.sizes[key] = total
        return total


class _Builder:
    """Turns composed YAML nodes into plain data, recording positions on the way."""

    def __init__(self, loader: Any, shown: str) -> None:
        self.loader = loader
        self.shown = shown
        # (line, column) as the parser counts them (see Positions): where each value
        # starts, and where each key is written.
        self.marks: dict[Path_, tuple[int, int]] = {}
        self.key_marks: dict[Path_, tuple[int, int]] = {}
        self.nodes_built = 0
        # Problems that do not stop the file from being read (so later errors still show).
        self.problems: list[Diagnostic] = []

    def scalar(self, node: yaml.ScalarNode) -> Any:
        """The value of a scalar, read the way YAML 1.2 (and so the editor's schema check) reads it.

        PyYAML implements YAML 1.1, where plain `yes`, `no`, `on`, `off` are booleans,
        `2024-10-21` is a date and `1:30` is a base-60 number. Those stay strings here
        (so `api_version: 2024-10-21` is the string it looks like, and `default: yes`
        is reported instead of silently meaning true); `1e-3` is a number, as in 1.2.
        """
        tag = node.tag
        if tag == _STR_TAG:  # most scalars: keys, names, ids
            value = node.value
            if not node.style and value[:1] in _NUMBER_START and _EXPONENT_NUMBER.fullmatch(value):
                return float(value)
            return value  # what the constructor returns for a string, without its bookkeeping
        if not node.style:  # plain (None, or "" from libyaml): the type was guessed from the text
            text = node.value
            # The common plain numbers and booleans without the constructor's generic path.
            if tag == _INT_TAG and len(text) < 19 and text.isdigit() and text.isascii() and (text[0] != "0" or text == "0"):
                return int(text)  # decimal (a leading 0 is octal in YAML 1.1: left to the constructor)
            if tag == _BOOL_TAG and text in _BOOLEANS:
                return _BOOLEANS[text]
            if tag == _FLOAT_TAG and text.isascii() and text.replace(".", "", 1).isdigit():
                return float(text)  # 0.7, 12.5, .5: what the constructor makes of them
            if node.tag == _BOOL_TAG and text.lower() not in ("true", "false"):
                return text
            if node.tag == _TIMESTAMP_TAG or (node.tag in (_INT_TAG, _FLOAT_TAG) and ":" in text):
                return text
        if tag not in _SCALAR_TAGS:
            raise _unsupported_tag(node, self.shown)
        try:
            value = self.loader.construct_object(node)
        except yaml.YAMLError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the constructor raises on a hostile value
            # `!!int abc`, `!!bool maybe`, `!!timestamp 2024-13-45`, or an integer past
            # Python's digit limit for int(str): an error at its place, never a trace.
            if node.tag == _INT_TAG and len(node.value) > 100:
                raise _LoadError(
                    "number-too-large",
                    f"integer with {len(node.value)} digits is far beyond any value a registry takes",
                    _mark(self.shown, node.start_mark),
                ) from None
            raise _LoadError(
                "bad-scalar",
                f"cannot read this {node.tag.replace(_TAG, '')} value ({type(exc).__name__}); write a plain value",
                _mark(self.shown, node.start_mark),
            ) from None
        if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
            # 0x/0b numbers are not bound by Python's int(str) digit limit, but printing
            # them is: refuse any integer far beyond every range of the format.
            raise _LoadError(
                "number-too-large",
                f"integer with {value.bit_length()} bits is far beyond any value a registry takes",
                _mark(self.shown, node.start_mark),
            )
        return value

    def build(self, node: yaml.Node, path: Path_, depth: int = 0) -> Any:
        self.nodes_built += 1
        if self.nodes_built > MAX_NODES or depth > MAX_DEPTH:
            raise self._limit_error(node)
        if path not in self.marks:
            self.marks[path] = (node.start_mark.line, node.start_mark.column)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if node.tag != _CONTAINER_TAGS.get(type(node)):
            raise _unsupported_tag(node, self.shown)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (index,), depth + 1) for index, item in enumerate(node.value)]
        assert isinstance(node, yaml.MappingNode)
        return self._build_mapping(node, path, depth)

    def _limit_error(self, node: yaml.Node) -> _LoadError:
        if self.nodes_built > MAX_NODES:  # a backstop: _check_structure refuses these first
            return _LoadError(
                "too-many-nodes",
                f"file expands to more than {MAX_NODES:,} values (an alias expansion bomb?); "
                "remove the repeated aliases",
                _mark(self.shown, node.start_mark),
            )
        return _LoadError(
            "too-deep",
            f"values nested deeper than {MAX_DEPTH} levels; a registry file needs only a few",
            _mark(self.shown, node.start_mark),
        )

    def _build_mapping(self, node: yaml.MappingNode, path: Path_, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        first_seen: dict[Any, Any] = {}  # key -> its mark
        merged_from: list[yaml.MappingNode] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged_from.extend(self._merge_sources(value_node))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise _LoadError(
                    "bad-key",
                    "a mapping key must be a plain value, not a list or mapping",
                    _mark(self.shown, key_node.start_mark),
                )
            key = key_node.value
            if key_node.tag != _STR_TAG or key[:1] in _NUMBER_START:  # not a plain word: read it as any scalar
                key = self.scalar(key_node)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                key = str(key)
            if key in first_seen:
                self.problems.append(
                    error(
                        "duplicate-key",
                        f"duplicate key {key!r} in one mapping (first defined at line {first_seen[key].line + 1}); "
                        "YAML would silently keep only the last one",
                        _mark(self.shown, key_node.start_mark),
                    )
                )
                continue
            first_seen[key] = key_node.start_mark
            child = path + (key,)
            # A key written here wins over the same key merged in with `<<`.
            if child not in self.key_marks:
                self.key_marks[child] = (key_node.start_mark.line, key_node.start_mark.column)
            if type(value_node) is not yaml.ScalarNode:
                result[key] = self.build(value_node, child, depth + 1)
                continue
            # `build` for a scalar, inline: most values of a registry are scalars in a
            # mapping, and the call was a tenth of the loader's time.
            self.nodes_built += 1
            if self.nodes_built > MAX_NODES or depth >= MAX_DEPTH:
                raise self._limit_error(value_node)
            if child not in self.marks:
                start = value_node.start_mark
                self.marks[child] = (start.line, start.column)
            result[key] = self.scalar(value_node)
        # Explicit keys win over merged ones, and earlier merge sources over later ones.
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
        raise _LoadError(
            "bad-merge",
            "'<<' must merge a mapping or a list of mappings (e.g. '<<: *defaults')",
            _mark(self.shown, value_node.start_mark),
        )


def _unique(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    # A mapping merged into several models reports its own problems once, not once per merge.
    return list(dict.fromkeys(diagnostics))


def load_file(path: Path, shown: str | None = None) -> tuple[Document | None, list[Diagnostic]]:
    """Parse one file into a located Document, or return the diagnostics that stop it.

    Never raises for bad content: every problem becomes an error Diagnostic at
    `file:line:column`. Problems that do not stop the file being read (duplicate
    keys) come back alongside the Document.
    """
    shown = shown or display_path(path)
    loader = None
    try:
        text = _decode(path, shown)
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            raise _LoadError(
                "empty-file",
                "file has no YAML content; expected a mapping with 'version: 1' and 'models:'",
                Location(shown, 1, 1),
            )
        if "&" in text:
            # Only anchors let a file expand beyond its own size or refer to itself.
            # Without one (no "&" anywhere) the builder's own checks (tags, depth, node
            # count) are all there is to check, as it goes.
            _check_structure(node, shown)
        builder = _Builder(loader, shown)
        data = builder.build(node, ())
        positions, key_positions = Positions(shown, builder.marks), Positions(shown, builder.key_marks)
        return Document(shown, data, positions, key_positions), _unique(builder.problems)
    except _LoadError as exc:
        return None, [exc.diagnostic]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = _mark(shown, mark) if mark else Location(shown, 1, 1)
        if "expected a single document" in f"{exc.context} {exc.problem}":
            message = (
                "file holds more than one YAML document (a second '---'); "
                "keep one document per file, with all its models under one 'models:'"
            )
            return None, [error("multiple-documents", message, location)]
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
        diagnostics.append(no_files_warning(root))
    return documents, diagnostics


def no_files_warning(root: Path) -> Diagnostic:
    """The warning for a registry directory without any registry file."""
    return warning("no-files", f"no *.yaml or *.yml files under {display_path(root)}: the registry is empty")
