"""`llm-registry validate` as a user runs it: exit codes, the three formats, nothing extra."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.cli.conftest import RunCli
from tests.factories import CANARY_KEY, embedding_model, generation_model, ner_model, write_registry_file, write_text_file

ROOT = Path(__file__).resolve().parents[2]
GCC_LINE = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?P<column>\d+): (?P<severity>error|warning): (?P<message>.+)$")
NOISE = ("Traceback", "pydantic", "errors.pydantic.dev", "For further information visit", "validation error", "input_value")


def assert_no_noise(output: str) -> None:
    for word in NOISE:
        assert word not in output, f"{word!r} in output:\n{output}"


def bad_registry(directory: Path) -> Path:
    """Two files with errors: a typo (line known) and a syntax error; plus a valid file."""
    write_registry_file(directory, [generation_model(name="gen", default=True, parameters={"temprature": 0.5})], "a.yaml")
    write_text_file(directory, "version: 1\nmodels:\n  - name: x\n   type: ner\n", "b.yaml")
    write_registry_file(directory, [embedding_model(default=True), ner_model(default=True)], "c.yaml")
    return directory


def line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_valid_registry_exits_0_with_a_summary(run_cli: RunCli) -> None:
    result = run_cli("validate", str(ROOT / "registry.d"))
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r".*registry\.d: valid, \d+ models in 6 files\n", result.stdout)
    assert result.stderr == ""


def test_default_directory_is_registry_d_in_the_working_directory(run_cli: RunCli, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "registry.d", tmp_path / "registry.d")
    result = run_cli("validate", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("registry.d: valid, ")


def test_invalid_registry_exits_1_with_gcc_style_lines(run_cli: RunCli, tmp_path: Path) -> None:
    bad_registry(tmp_path / "registry.d")
    result = run_cli("validate", cwd=tmp_path)
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    typo = line_of(tmp_path / "registry.d" / "a.yaml", "temprature")
    assert f"registry.d/a.yaml:{typo}:5: error: unknown key 'temprature' in parameters (did you mean 'temperature'?)" in lines
    assert any(line.startswith("registry.d/b.yaml:4:") and ": error: YAML syntax error:" in line for line in lines)
    assert lines[-1] == "registry.d: invalid, 2 errors in 2 files"
    assert all(GCC_LINE.match(line) for line in lines[:-1]), lines
    assert_no_noise(result.output)


def test_warnings_alone_exit_0_and_are_counted(run_cli: RunCli, tmp_path: Path) -> None:
    write_registry_file(tmp_path, [generation_model(default=True, parameters={"top_k": 40})])
    result = run_cli("validate", str(tmp_path))
    assert result.exit_code == 0
    assert ": warning: openai does not offer top_k" in result.stderr
    assert result.stdout.endswith("valid, 1 model in 1 file, 1 warning\n")


def test_json_format(run_cli: RunCli, tmp_path: Path) -> None:
    bad_registry(tmp_path / "registry.d")
    result = run_cli("validate", "--format", "json", cwd=tmp_path)
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    assert isinstance(rows, list) and len(rows) == 2
    for row in rows:
        assert set(row) == {"file", "line", "column", "severity", "code", "message"}
        assert isinstance(row["line"], int) and isinstance(row["column"], int)
    typo = line_of(tmp_path / "registry.d" / "a.yaml", "temprature")
    assert {"file": "registry.d/a.yaml", "line": typo, "column": 5, "severity": "error", "code": "unknown-key",
            "message": "unknown key 'temprature' in parameters (did you mean 'temperature'?)"} in rows


def test_json_format_on_a_valid_registry_is_an_empty_list(run_cli: RunCli) -> None:
    result = run_cli("validate", "--format", "json", str(ROOT / "registry.d"))
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_github_format(run_cli: RunCli, tmp_path: Path) -> None:
    bad_registry(tmp_path / "registry.d")
    write_registry_file(tmp_path / "registry.d", [generation_model(provider="azure", api_endpoint="https://a.openai.azure.com",
                                                                   api_version="2024-10-21", parameters={"top_k": 5})], "d.yaml")
    result = run_cli("validate", "--format", "github", cwd=tmp_path)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    typo = line_of(tmp_path / "registry.d" / "a.yaml", "temprature")
    assert (
        f"::error file=registry.d/a.yaml,line={typo},col=5,title=llm-registry unknown-key::"
        "unknown key 'temprature' in parameters (did you mean 'temperature'?)"
    ) in lines
    assert any(line.startswith("::warning file=registry.d/d.yaml,line=") for line in lines)
    assert all(re.match(r"^::(error|warning) file=[^,]+,line=\d+,col=\d+,title=[^:]+::.+$", line) for line in lines), lines


def test_missing_directory(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("validate", cwd=tmp_path)
    assert result.exit_code == 1
    assert result.stderr == (
        "error: registry directory registry.d does not exist; "
        "run from the repository root or pass the registry's directory as an argument\n"
    )
    assert result.stdout == ""
    planned = run_cli("plan", cwd=tmp_path)  # no command is named: plan must not point to validate
    assert planned.exit_code == 1
    assert "error: registry directory registry.d does not exist; run from the repository root" in planned.stderr
    assert "validate" not in planned.stderr


def test_plaintext_key_never_printed_in_any_format(run_cli: RunCli, tmp_path: Path) -> None:
    write_registry_file(tmp_path, [generation_model(api_key=CANARY_KEY, default=True), ner_model(api_key=CANARY_KEY)])
    for output_format in ("text", "json", "github"):
        result = run_cli("validate", "--format", output_format, str(tmp_path))
        assert result.exit_code == 1
        assert "api_key holds a literal value" in result.output
        assert CANARY_KEY not in result.output
        assert CANARY_KEY[:10] not in result.output


def test_hostile_files_each_get_a_located_error_and_no_trace(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "binary.yaml").write_bytes(b"version: 1\x00\n")
    (tmp_path / "latin1.yaml").write_bytes(b"version: 1\nmodels: []\n# \xe9\n")
    write_text_file(tmp_path, "version: 1\nmodels: &m [*m]\n", "cycle.yaml")
    write_text_file(tmp_path, "", "empty.yaml")
    write_text_file(tmp_path, "version: 1\nmodels: []\n---\n{}\n", "two.yaml")
    write_text_file(tmp_path, "x" * (1024 * 1024 + 1), "huge.yaml")
    result = run_cli("validate", str(tmp_path))
    assert result.exit_code == 1
    located = {Path(m["file"]).name: int(m["line"]) for m in map(GCC_LINE.match, result.stderr.splitlines()) if m}
    assert located == {"binary.yaml": 1, "latin1.yaml": 3, "cycle.yaml": 2, "empty.yaml": 1, "two.yaml": 3, "huge.yaml": 1}
    assert_no_noise(result.output)


def test_unknown_format_is_a_usage_error(run_cli: RunCli) -> None:
    result = run_cli("validate", "--format", "xml", str(ROOT / "registry.d"))
    assert result.exit_code == 1
    assert "Invalid value for '--format'" in result.stderr
    assert_no_noise(result.output)


@pytest.mark.parametrize("args", [("validate", "--help"), ("--help",)])
def test_help_mentions_validate(run_cli: RunCli, args: tuple[str, ...]) -> None:
    result = run_cli(*args)
    assert result.exit_code == 0
    assert "validate" in result.stdout


def test_real_process_exit_codes(run_subprocess: RunCli, tmp_path: Path) -> None:
    assert run_subprocess("validate", str(ROOT / "registry.d")).exit_code == 0
    bad = run_subprocess("validate", str(bad_registry(tmp_path / "registry.d")))
    assert bad.exit_code == 1
    assert_no_noise(bad.output)


def test_validate_and_help_import_no_heavy_library(tmp_path: Path) -> None:
    import subprocess
    import sys

    probe = (
        "import sys, runpy\n"
        "sys.argv = ['llm-registry'] + sys.argv[1:]\n"
        "code = 0\n"
        "try:\n    runpy.run_module('reconciler', run_name='__main__')\n"
        "except SystemExit as exit:\n    code = exit.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'litellm', 'sqlalchemy', 'jinja2'})\n"
        "print(f'exit={code} heavy={heavy}', file=sys.stderr)\n"
    )
    for args, code in (
        (["--help"], 0), (["validate", str(ROOT / "registry.d")], 0), (["validate", str(tmp_path / "nope")], 1), (["schema"], 0),
        (["report", "--help"], 0), (["serve", "--help"], 0),
    ):
        completed = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=60)
        assert completed.stderr.splitlines()[-1] == f"exit={code} heavy=[]", (args, completed.stderr)


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_a_hostile_integer_is_an_error_at_its_line_never_an_internal_error(run_cli: RunCli, tmp_path: Path, command: str) -> None:
    text = (
        "version: 1\nmodels:\n  - name: e\n    type: embedding\n    provider: ollama\n    model_id: x\n"
        "    api_endpoint: http://h:1\n    default: true\n    parameters:\n      dimensions: " + "9" * 5000 + "\n"
    )
    path = write_text_file(tmp_path, text)
    args = [command, str(tmp_path)] + (["--database-url", "postgresql://nobody@127.0.0.1:1/none"] if command == "plan" else [])
    result = run_cli(*args)
    assert result.exit_code == 1
    assert f"{path}:10:19: error: integer with 5000 digits is far beyond any value a registry takes" in result.stderr
    assert "internal error" not in result.output
