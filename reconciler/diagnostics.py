"""Diagnostics: an error or warning at `file:line:column`, and its three renderings.

Text is gcc-style (`path:line:col: error: message`) so that terminals and editors
make it clickable; JSON is for tools; `github` emits workflow commands so that the
errors show on the pull request's diff.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Iterable, Literal

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
    prefix = f"{diagnostic.location}: " if diagnostic.location else ""
    return f"{prefix}{diagnostic.severity}: {diagnostic.message}"


def format_json(diagnostics: Iterable[Diagnostic]) -> str:
    """A JSON list of {file, line, column, severity, code, message}."""
    rows = []
    for d in diagnostics:
        loc = asdict(d.location) if d.location else {"file": None, "line": None, "column": None}
        rows.append({**loc, "severity": d.severity, "code": d.code, "message": d.message})
    return json.dumps(rows, indent=2)


def escape_github_data(value: str) -> str:
    """Escape a workflow command's message (%, CR, LF)."""
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
