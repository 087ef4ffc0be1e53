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


# --------------------------------------------------------------------------- escaping

from reconciler.diagnostics import escape_github_data, escape_github_property, escape_text  # noqa: E402


def test_escape_text_makes_control_characters_visible() -> None:
    assert escape_text("a\nb\rc\td") == "a\\nb\\rc\\td"
    assert escape_text("\x1b[2J\x1b]0;title\x07") == "\\x1b[2J\\x1b]0;title\\x07"
    assert escape_text("x\x7f\x9by") == "x\\x7f\\x9by"  # DEL and the C1 CSI
    assert escape_text("evil\u202etxt.exe\u2028next\u200b") == "evil\\u202etxt.exe\\u2028next\\u200b"
    assert escape_text("café ✓ 模型") == "café ✓ 模型"  # printable text is left alone
    assert escape_text(42) == "42"


def test_escape_text_cannot_start_a_workflow_command() -> None:
    assert escape_text("::error::pwned") == "\\::error::pwned"
    assert escape_text("  \u00a0::add-mask::x") == "  \u00a0\\::add-mask::x"  # the runner trims Unicode spaces
    assert escape_text("name\n::set-output name=x::y") == "name\\n::set-output name=x::y"
    assert escape_text("see ##[error]boom") == "see ##\\[error]boom"
    assert escape_text("http://[::1]:11434") == "http://[::1]:11434"


def test_github_data_keeps_its_own_rules_and_escapes_the_rest() -> None:
    assert escape_github_data("100%\r\nnext") == "100%25%0D%0Anext"
    assert escape_github_data("\x1b[31mred") == "\\x1b[31mred"
    assert escape_github_property("a:b,\x1bc") == "a%3Ab%2C\\x1bc"


def test_text_diagnostic_escapes_path_and_message() -> None:
    line = format_text(error("c", "bad\n::error::injected", Location("::warning::x.yaml", 1, 1)))
    assert "\n" not in line
    assert line.startswith("\\::warning::x.yaml:1:1: error: bad\\n::error::injected")
