"""Diagnostics: an error or warning at `file:line:column`, and its three renderings.

Text is gcc-style (`path:line:col: error: message`) so that terminals and editors
make it clickable; JSON is for tools; `github` emits workflow commands so that the
errors show on the pull request's diff.

This module is also the one home of output escaping (`escape_text`,
`escape_github_data`, `escape_github_property`): every renderer passes text that
comes from files, the database or a provider through them, so that data can neither
drive a terminal (escape sequences, carriage returns) nor start a GitHub workflow
command (`::error::`, `::add-mask::`, `##[...]`) that the renderer did not write.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Location:
    """A place in a registry file; line and column are 1-based."""

    file: str
    line: int = 1
    column: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Diagnostic:
    """One finding. `code` is stable (for tools and docs); `message` is for people."""

    severity: Severity
    code: str
    message: str
    location: Location | None = None

    def sort_key(self) -> tuple[str, int, int, str]:
        """Order by file, line, column, then message, so output is stable."""
        loc = self.location or Location("", 0, 0)
        return (loc.file, loc.line, loc.column, self.message)


def error(code: str, message: str, location: Location | None = None) -> Diagnostic:
    """An error: validation fails."""
    return Diagnostic("error", code, message, location)


def warning(code: str, message: str, location: Location | None = None) -> Diagnostic:
    """A warning: reported, but validation passes."""
    return Diagnostic("warning", code, message, location)


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    """True when any diagnostic is an error."""
    return any(d.severity == "error" for d in diagnostics)


def format_text(diagnostic: Diagnostic) -> str:
    """`path:line:col: severity: message` (or `severity: message` without a place)."""
    prefix = f"{escape_text(str(diagnostic.location))}: " if diagnostic.location else ""
    return f"{prefix}{diagnostic.severity}: {escape_text(diagnostic.message)}"


def format_json(diagnostics: Iterable[Diagnostic]) -> str:
    """A JSON list of {file, line, column, severity, code, message}."""
    rows = []
    for d in diagnostics:
        loc = asdict(d.location) if d.location else {"file": None, "line": None, "column": None}
        rows.append({**loc, "severity": d.severity, "code": d.code, "message": d.message})
    return json_text(rows, indent=2)


# Escapes a reader recognises; other invisible characters become \xNN / \uNNNN.
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Unicode categories that are not printed as themselves: controls (C0, DEL, C1),
# format characters (bidi overrides that reorder a line, zero-width characters),
# line and paragraph separators, unassigned and surrogate code points.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cn", "Cs", "Co"})
# A workflow command: `::name ...::` at the start of a line (the runner trims leading
# whitespace first) or the legacy `##[name]` anywhere in a line.
_LEGACY_COMMAND = "##["


def _visible(char: str) -> str:
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else (f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")


def _is_invisible(char: str) -> bool:
    return unicodedata.category(char) in _INVISIBLE_CATEGORIES


_ASCII_SAFE = re.compile(r"[ -~]*")  # printable ASCII only: nothing to escape but commands


def escape_text(value: object, *, keep: str = "") -> str:
    """Data (from a file, the database, a provider) made safe to print as part of a line.

    Control and invisible characters become visible escapes (a newline `\\n`, ESC
    `\\x1b`, a bidi override `\\u202e`), so data can never add a line, move the
    cursor or recolour a terminal; a leading `::` becomes `\\::` and `##[` becomes
    `##\\[`, so no line that holds data can start a GitHub workflow command. Characters
    in `keep` are left alone (the GitHub escaping keeps CR and LF for its own rules).
    """
    text = value if isinstance(value, str) else str(value)
    if not _ASCII_SAFE.fullmatch(text):
        text = "".join(_visible(c) if c not in keep and _is_invisible(c) else c for c in text)
    if _LEGACY_COMMAND in text:
        text = text.replace(_LEGACY_COMMAND, "##\\[")
    # The runner trims every Unicode space (as .NET's TrimStart does) before looking.
    stripped = text.lstrip()
    if stripped.startswith("::"):
        text = text[: len(text) - len(stripped)] + "\\" + stripped
    return text


def json_text(data: Any, **options: Any) -> str:
    """`json.dumps` for output: ASCII-only (control characters escaped by JSON itself), and
    `##[` written as `##\\u005b`, the same JSON string, so no line can hold a legacy workflow command."""
    return json.dumps(data, ensure_ascii=True, **options).replace(_LEGACY_COMMAND, "##\\u005b")


def escape_github_data(value: str) -> str:
    """Escape a workflow command's message: invisible characters as in `escape_text`, then %, CR, LF.

    CR and LF become %0D/%0A (GitHub's own rule: the annotation shows the line break),
    so the message stays on the command's line.
    """
    value = escape_text(value, keep="\r\n")
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_github_property(value: str) -> str:
    """Escape a workflow command's property value (also ':' and ',')."""
    return escape_github_data(value).replace(":", "%3A").replace(",", "%2C")


def format_github(diagnostic: Diagnostic) -> str:
    """A GitHub Actions workflow command (`::error file=..,line=..,col=..::message`)."""
    properties = ""
    if diagnostic.location:
        loc = diagnostic.location
        properties = (
            f" file={escape_github_property(loc.file)},line={loc.line},col={loc.column}"
            f",title={escape_github_property('llm-registry ' + diagnostic.code)}"
        )
    return f"::{diagnostic.severity}{properties}::{escape_github_data(diagnostic.message)}"
