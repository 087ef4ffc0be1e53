"""The three renderings of a diagnostic: gcc-style text, JSON, GitHub workflow commands."""

from __future__ import annotations

import json

from reconciler.diagnostics import Diagnostic, Location, error, format_github, format_json, format_text, has_errors, warning


def test_text_is_gcc_style() -> None:
    assert format_text(error("unknown-key", "unknown key 'x'", Location("registry.d/a.yaml", 3, 7))) == (
        "registry.d/a.yaml:3:7: error: unknown key 'x'"
    )
    assert format_text(warning("no-default", "no default", Location("a.yaml", 1, 1))) == "a.yaml:1:1: warning: no default"


def test_text_without_a_place() -> None:
    assert format_text(error("directory-missing", "registry directory x does not exist")) == (
        "error: registry directory x does not exist"
    )


def test_json_is_a_list_of_flat_objects() -> None:
    rows = json.loads(
        format_json([error("bad-value", "m", Location("a.yaml", 2, 3)), warning("no-files", "empty")])
    )
    assert rows == [
        {"file": "a.yaml", "line": 2, "column": 3, "severity": "error", "code": "bad-value", "message": "m"},
        {"file": None, "line": None, "column": None, "severity": "warning", "code": "no-files", "message": "empty"},
    ]
    assert json.loads(format_json([])) == []


def test_github_workflow_command() -> None:
    line = format_github(error("out-of-range", "parameters.top_p: must be between 0.0 and 1.0", Location("registry.d/a.yaml", 9, 14)))
    assert line == (
        "::error file=registry.d/a.yaml,line=9,col=14,title=llm-registry out-of-range::"
        "parameters.top_p: must be between 0.0 and 1.0"
    )
    assert format_github(warning("no-files", "empty")) == "::warning::empty"


def test_github_escapes_what_would_break_the_command() -> None:
    line = format_github(error("c", "50% done\nnext line", Location("dir,with:odd/a.yaml", 1, 2)))
    assert line.startswith("::error file=dir%2Cwith%3Aodd/a.yaml,line=1,col=2,")
    assert line.endswith("::50%25 done%0Anext line")
    assert "\n" not in line


def test_sort_key_orders_by_file_line_column() -> None:
    found = [
        error("c", "b", Location("b.yaml", 1, 1)),
        error("c", "z", Location("a.yaml", 10, 1)),
        error("c", "a", Location("a.yaml", 2, 5)),
        error("c", "a", Location("a.yaml", 2, 1)),
        error("c", "no place"),
    ]
    ordered = sorted(found, key=Diagnostic.sort_key)
    assert [(d.location.file, d.location.line, d.location.column) if d.location else None for d in ordered] == [
        None, ("a.yaml", 2, 1), ("a.yaml", 2, 5), ("a.yaml", 10, 1), ("b.yaml", 1, 1),
    ]


def test_only_errors_fail() -> None:
    assert has_errors([warning("w", "x"), error("e", "y")])
    assert not has_errors([warning("w", "x")])
    assert not has_errors([])
