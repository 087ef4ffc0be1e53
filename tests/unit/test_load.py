"""The loader: positions, and hostile input that must end in a clear `file:line` error.

Never a hang, never a trace: the alias bomb runs in a subprocess under a timeout to
prove that it fails fast.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import load
from reconciler.diagnostics import Diagnostic, Location
from reconciler.load import Document, load_directory, load_file
from reconciler.validate import validate_directory, validate_documents
from tests.factories import embedding_model, generation_model, ner_model, write_registry_file, write_text_file

BILLION_LAUGHS = """\
version: 1
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
models: *i
"""


def load_one(tmp_path: Path, content: str | bytes, filename: str = "models.yaml") -> tuple[Document | None, list[Diagnostic]]:
    """Write `content` (text or raw bytes) and load that one file."""
    if isinstance(content, bytes):
        tmp_path.mkdir(parents=True, exist_ok=True)
        path = tmp_path / filename
        path.write_bytes(content)
    else:
        path = write_text_file(tmp_path, content, filename)
    return load_file(path)


def single_error(problems: list[Diagnostic], code: str) -> Diagnostic:
    assert [d.code for d in problems] == [code], [(d.code, d.message) for d in problems]
    assert problems[0].severity == "error"
    assert problems[0].location is not None
    return problems[0]


# --------------------------------------------------------------------------- positions


def test_positions_of_values_and_keys_are_one_based(tmp_path: Path) -> None:
    document, problems = load_one(tmp_path, "version: 1\nmodels:\n  - name: alpha\n    parameters:\n      top_p:   0.5\n")
    assert problems == []
    assert document is not None
    assert document.data == {"version": 1, "models": [{"name": "alpha", "parameters": {"top_p": 0.5}}]}
    assert document.location(("models", 0, "name")) == Location(document.file, 3, 11)
    assert document.location(("models", 0, "name"), key=True) == Location(document.file, 3, 5)
    assert document.location(("models", 0, "parameters", "top_p")) == Location(document.file, 5, 16)
    assert document.location(("models", 0)) == Location(document.file, 3, 5)


def test_location_of_an_absent_path_falls_back_to_its_nearest_ancestor(tmp_path: Path) -> None:
    document, _ = load_one(tmp_path, "version: 1\nmodels:\n  - name: alpha\n")
    assert document is not None
    assert document.location(("models", 0, "parameters", "dimensions")) == Location(document.file, 3, 5)
    assert document.location(("nowhere",)) == Location(document.file, 1, 1)


def test_the_cache_of_plain_scalar_tags_stays_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A hostile file of many distinct values must not grow the loader's cache without bound.
    monkeypatch.setattr(load._Loader, "_PLAIN_TAGS", {})
    monkeypatch.setattr(load._Loader, "_PLAIN_TAGS_LIMIT", 50)
    values = [f"value-{n}" for n in range(200)] + ["x" * 65, "true", "12"]
    document, problems = load_file(write_text_file(tmp_path, "items:\n" + "".join(f"  - {v}\n" for v in values)))
    assert not problems and document is not None
    assert document.data["items"][:2] == ["value-0", "value-1"] and document.data["items"][-3:] == ["x" * 65, True, 12]
    assert len(load._Loader._PLAIN_TAGS) == 50
    assert "x" * 65 not in load._Loader._PLAIN_TAGS  # long values are never kept


def test_file_is_shown_relative_to_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_registry_file(tmp_path / "registry.d", [ner_model()], "m.yaml")
    monkeypatch.chdir(tmp_path)
    documents, _ = load_directory(Path("registry.d"))
    assert [d.file for d in documents] == [os.path.join("registry.d", "m.yaml")]


def test_a_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    document, problems = load_one(tmp_path, "\ufeffversion: 1\nmodels: []\n".encode())
    assert problems == []
    assert document is not None and document.data == {"version": 1, "models": []}


# --------------------------------------------------------------------------- merge keys


def test_merge_keys_work_and_positions_point_where_values_are_written(tmp_path: Path) -> None:
    text = (
        "version: 1\n"
        "models:\n"
        "  - &ollama\n"
        "    name: first\n"
        "    type: ner\n"
        "    provider: ollama\n"
        "    model_id: gliner\n"
        "    api_endpoint: http://ollama:11434\n"
        "    default: true\n"
        "  - <<: *ollama\n"
        "    name: second\n"
        "    default: false\n"
        "    parameters:\n"
        "      batch_sise: 3\n"
    )
    path = write_text_file(tmp_path, text)
    document, problems = load_file(path)
    assert problems == []
    assert document is not None
    second = document.data["models"][1]
    assert second["name"] == "second" and second["default"] is False  # explicit keys win
    assert second["provider"] == "ollama"  # merged in
    assert document.location(("models", 1, "name")).line == 11
    assert document.location(("models", 1, "default"), key=True).line == 12
    assert document.location(("models", 1, "provider")).line == 6  # where the anchor writes it

    result = validate_directory(tmp_path)
    assert [(d.code, d.location.line if d.location else None) for d in result.errors] == [("unknown-key", 14)]
    assert "batch_sise" in result.errors[0].message and "did you mean 'batch_size'" in result.errors[0].message


def test_merging_a_list_of_mappings(tmp_path: Path) -> None:
    document, problems = load_one(tmp_path, "a: &a {x: 1}\nb: &b {x: 2, y: 2}\nc:\n  <<: [*a, *b]\n")
    assert problems == []
    assert document is not None and document.data["c"] == {"x": 1, "y": 2}


def test_merging_a_scalar_is_an_error(tmp_path: Path) -> None:
    _, problems = load_one(tmp_path, "a: &a 3\nb:\n  <<: *a\n")
    diagnostic = single_error(problems, "bad-merge")
    assert diagnostic.message == "'<<' must merge a mapping or a list of mappings (e.g. '<<: *defaults')"
    assert diagnostic.location is not None and diagnostic.location.line == 1


def test_duplicate_key_in_a_merged_mapping_is_reported_once(tmp_path: Path) -> None:
    _, problems = load_one(tmp_path, "a: &a\n  x: 1\n  x: 2\nb:\n  <<: *a\nc:\n  <<: *a\n")
    assert [(d.code, d.location.line if d.location else None) for d in problems] == [("duplicate-key", 3)]


# --------------------------------------------------------------------------- duplicate and odd keys


def test_duplicate_keys_are_reported_and_the_rest_still_loads(tmp_path: Path) -> None:
    document, problems = load_one(tmp_path, "version: 1\nversion: 1\nmodels: []\nmodels: []\n")
    assert document is not None and document.data == {"version": 1, "models": []}
    assert [(d.code, d.location.line if d.location else None) for d in problems] == [("duplicate-key", 2), ("duplicate-key", 4)]
    assert problems[0].message == (
        "duplicate key 'version' in one mapping (first defined at line 1); YAML would silently keep only the last one"
    )


@pytest.mark.parametrize(("text", "line"), [("? [a, b]\n: 1\n", 1), ("? {a: 1}\n: 1\n", 1), ("version: 1\n[x]: 1\n", 2)])
def test_non_scalar_keys_are_refused(tmp_path: Path, text: str, line: int) -> None:
    diagnostic = single_error(load_one(tmp_path, text)[1], "bad-key")
    assert diagnostic.message == "a mapping key must be a plain value, not a list or mapping"
    assert diagnostic.location is not None and diagnostic.location.line == line


# --------------------------------------------------------------------------- hostile input


def test_billion_laughs_fails_fast(tmp_path: Path) -> None:
    _, problems = load_one(tmp_path, BILLION_LAUGHS)
    diagnostic = single_error(problems, "too-many-nodes")
    assert "alias expansion bomb" in diagnostic.message
    assert diagnostic.message.startswith("this value expands through aliases to ")
    assert diagnostic.location is not None and diagnostic.location.line == 7  # f: 9**6 > the limit


def test_billion_laughs_does_not_hang_the_command(tmp_path: Path) -> None:
    write_text_file(tmp_path, BILLION_LAUGHS)
    completed = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", str(tmp_path)],
        capture_output=True, text=True, timeout=20,
    )
    assert completed.returncode == 1
    assert f"{tmp_path / 'models.yaml'}:7:4: error: this value expands through aliases" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_many_plain_values_below_the_limit_are_fine(tmp_path: Path) -> None:
    items = ", ".join(["1"] * 20_000)
    document, problems = load_one(tmp_path, f"version: 1\nmodels: []\nextra: [{items}]\n")
    assert problems == [] and document is not None


def test_aliases_used_a_few_times_are_fine(tmp_path: Path) -> None:
    document, problems = load_one(tmp_path, "a: &p {x: 1}\nb: [*p, *p, *p]\n")
    assert problems == [] and document is not None
    assert document.data["b"] == [{"x": 1}] * 3


@pytest.mark.parametrize("text", ["version: 1\nmodels: &x [*x]\n", "a: &m\n  b: *m\n", "a: &m\n  <<: *m\n"])
def test_self_referencing_alias(tmp_path: Path, text: str) -> None:
    diagnostic = single_error(load_one(tmp_path, text)[1], "alias-cycle")
    assert diagnostic.message.startswith("an alias refers to a value that contains that alias")


def test_deep_nesting(tmp_path: Path) -> None:
    depth = load.MAX_DEPTH + 10
    diagnostic = single_error(load_one(tmp_path, "version: 1\nmodels: " + "[" * depth + "]" * depth + "\n")[1], "too-deep")
    assert diagnostic.message == f"values nested deeper than {load.MAX_DEPTH} levels; a registry file needs only a few"
    assert diagnostic.location is not None and diagnostic.location.line == 2


@pytest.mark.parametrize(("nesting", "refused"), [(load.MAX_DEPTH, False), (load.MAX_DEPTH + 1, True)])
def test_a_scalar_in_a_mapping_counts_towards_the_depth_limit(tmp_path: Path, nesting: int, refused: bool) -> None:
    # `{a: {a: ... 1}}`: the innermost value sits at depth `nesting` (the file's mapping is at 0).
    document, problems = load_one(tmp_path, "{a: " * nesting + "1" + "}" * nesting + "\n")
    if not refused:
        assert problems == [] and document is not None
        return
    diagnostic = single_error(problems, "too-deep")
    assert diagnostic.location is not None and (diagnostic.location.line, diagnostic.location.column) == (1, 4 * nesting + 1)


def test_scalars_in_mappings_count_towards_the_node_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without anchors only the builder counts (the limit is a backstop for alias expansions).
    monkeypatch.setattr(load, "MAX_NODES", 5)
    diagnostic = single_error(load_one(tmp_path, "version: 1\nmodels: []\na: 1\nb: 2\nc: 3\nd: 4\n")[1], "too-many-nodes")
    assert diagnostic.location is not None and diagnostic.location.line == 5  # the sixth value


def test_very_deep_nesting_is_an_error_not_a_recursion_trace(tmp_path: Path) -> None:
    _, problems = load_one(tmp_path, "version: 1\nmodels: " + "[" * 50_000 + "]" * 50_000 + "\n")
    assert len(problems) == 1 and problems[0].code in ("too-deep", "yaml-syntax")
    assert problems[0].location is not None and problems[0].location.line == 2


def test_file_over_the_size_cap(tmp_path: Path) -> None:
    padding = ("# " + "x" * 78 + "\n") * (load.MAX_FILE_BYTES // 80 + 1)
    diagnostic = single_error(load_one(tmp_path, "version: 1\nmodels: []\n" + padding)[1], "file-too-large")
    assert diagnostic.message == "file is larger than 1024 KiB; split the models over several files"
    assert diagnostic.location == Location(diagnostic.location.file, 1, 1)


def test_file_just_under_the_size_cap_loads(tmp_path: Path) -> None:
    head = "version: 1\nmodels: []\n"
    document, problems = load_one(tmp_path, head + "#" * (load.MAX_FILE_BYTES - len(head) - 1) + "\n")
    assert problems == [] and document is not None


def test_binary_content(tmp_path: Path) -> None:
    diagnostic = single_error(load_one(tmp_path, b"version: 1\nmodels: []\n\x00\x01\x02")[1], "binary-file")
    assert diagnostic.message == "file contains binary data (a NUL byte); expected YAML text"
    assert diagnostic.location is not None and diagnostic.location.line == 3


def test_invalid_utf8_reports_line_and_column(tmp_path: Path) -> None:
    diagnostic = single_error(load_one(tmp_path, b"version: 1\nmodels: []\n# caf\xe9\n")[1], "invalid-utf8")
    assert diagnostic.message == "invalid UTF-8 (byte 0xe9); save the file as UTF-8"
    assert diagnostic.location is not None and (diagnostic.location.line, diagnostic.location.column) == (3, 6)


def test_utf16_is_named(tmp_path: Path) -> None:
    diagnostic = single_error(load_one(tmp_path, "version: 1\n".encode("utf-16"))[1], "not-utf8")
    assert diagnostic.message == "file is UTF-16 text; save it as UTF-8"


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    diagnostic = single_error(load_one(tmp_path, text)[1], "empty-file")
    assert diagnostic.message == "file has no YAML content; expected a mapping with 'version: 1' and 'models:'"


def test_multiple_documents_in_one_file(tmp_path: Path) -> None:
    diagnostic = single_error(load_one(tmp_path, "version: 1\nmodels: []\n---\nversion: 1\nmodels: []\n")[1], "multiple-documents")
    assert diagnostic.message.startswith("file holds more than one YAML document (a second '---')")
    assert diagnostic.location is not None and diagnostic.location.line == 3


def test_a_leading_document_marker_is_fine(tmp_path: Path) -> None:
    document, problems = load_one(tmp_path, "---\nversion: 1\nmodels: []\n")
    assert problems == [] and document is not None


@pytest.mark.parametrize(
    "text",
    [
        "version: 1\nmodels: !!python/object:os.system []\n",
        "version: !!binary aGk=\n",
        "version: !custom 1\n",
        "version: 1\n!!binary aGk=: 1\n",
        "version: 1\nmodels: !!set {a}\n",
        "version: 1\nmodels: !!omap [a: 1]\n",
        "version: 1\nx: &anchor !custom 1\nmodels: []\n",
    ],
)
def test_unsupported_tags_are_refused_not_constructed(tmp_path: Path, text: str) -> None:
    diagnostic = single_error(load_one(tmp_path, text)[1], "unsupported-tag")
    assert diagnostic.message.startswith("unsupported YAML tag ")


def test_an_ampersand_in_a_value_is_just_text(tmp_path: Path) -> None:
    document, problems = load_one(tmp_path, "version: 1\nmodels: []\nnote: 'R&D & ops'\n")
    assert problems == [] and document is not None and document.data["note"] == "R&D & ops"


@given(st.text(alphabet=st.sampled_from(list("0123456789.+-_eExoOyYnNtTfF~:<=!&* abc")), max_size=12), st.booleans())
def test_the_lean_resolver_answers_as_pyyaml_does(value: str, plain: bool) -> None:
    from reconciler.load import _BaseLoader, _Loader

    loader, reference = _Loader(""), _BaseLoader("")
    try:
        for kind in (yaml.ScalarNode, yaml.SequenceNode, yaml.MappingNode):
            assert loader.resolve(kind, value, (plain, not plain)) == reference.resolve(kind, value, (plain, not plain))
    finally:
        loader.dispose()
        reference.dispose()


@given(st.text(alphabet=st.sampled_from(list("0123456789_xob+-.:eE tTrRuUfFaAlLsS")), min_size=1, max_size=8))
def test_plain_numbers_and_booleans_read_as_the_constructor_reads_them(text: str) -> None:
    from reconciler.load import _Builder, _Loader

    loader = _Loader(f"v: {text}\n")
    try:
        node = loader.get_single_node()
    except yaml.YAMLError:
        return
    finally:
        loader.dispose()
    value_node = node.value[0][1]
    if not isinstance(value_node, yaml.ScalarNode) or value_node.tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:bool"):
        return
    if value_node.tag.endswith("bool") and text.lower() not in ("true", "false"):
        return  # YAML 1.1's yes/no/on/off stay strings (tested above)
    if ":" in text:
        return  # base 60 stays a string
    reference = yaml.SafeLoader("")
    try:
        expected = reference.construct_object(value_node)
    finally:
        reference.dispose()
    built = _Builder(_Loader(""), "f.yaml").scalar(value_node)
    assert built == expected and type(built) is type(expected)


def test_syntax_error_position(tmp_path: Path) -> None:
    diagnostic = single_error(load_one(tmp_path, "version: 1\nmodels:\n\t- name: x\n")[1], "yaml-syntax")
    assert diagnostic.message.startswith("YAML syntax error: ")
    assert diagnostic.location is not None and diagnostic.location.line == 3


# --------------------------------------------------------------------------- discovery and symlinks


def test_symlink_to_a_file_outside_the_directory_is_refused(tmp_path: Path) -> None:
    outside = write_registry_file(tmp_path / "elsewhere", [ner_model()], "secret.yaml")
    registry = tmp_path / "registry.d"
    write_registry_file(registry, [embedding_model(default=True)], "a.yaml")
    (registry / "linked.yaml").symlink_to(outside)
    documents, problems = load_directory(registry)
    diagnostic = single_error(problems, "symlink-outside")
    assert diagnostic.message.endswith(
        "linked.yaml is a symlink that points outside the registry directory; copy the file in instead"
    )
    assert [Path(d.file).name for d in documents] == ["a.yaml"]


def test_symlinked_directory_outside_is_refused(tmp_path: Path) -> None:
    write_registry_file(tmp_path / "elsewhere", [ner_model()], "m.yaml")
    registry = tmp_path / "registry.d"
    registry.mkdir()
    (registry / "more").symlink_to(tmp_path / "elsewhere")
    documents, problems = load_directory(registry)
    assert single_error(problems, "symlink-outside") and documents == []


def test_symlink_inside_the_directory_is_followed(tmp_path: Path) -> None:
    registry = tmp_path / "registry.d"
    write_registry_file(registry / "shared", [ner_model(name="shared-model")], "m.yaml")
    (registry / "alias.yaml").symlink_to(registry / "shared" / "m.yaml")
    documents, problems = load_directory(registry)
    assert problems == []
    assert sorted(Path(d.file).name for d in documents) == ["alias.yaml", "m.yaml"]


def test_broken_symlink_and_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "gone.yaml").symlink_to(tmp_path / "missing.yaml")
    (tmp_path / "a.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "a.yaml")
    documents, problems = load_directory(tmp_path)
    assert documents == []
    assert sorted((Path(d.location.file).name, d.code) for d in problems if d.location) == [
        ("a.yaml", "broken-symlink"),
        ("b.yaml", "broken-symlink"),
        ("gone.yaml", "broken-symlink"),
    ]


def test_only_yaml_files_are_read_and_hidden_ones_skipped(tmp_path: Path) -> None:
    write_registry_file(tmp_path, [ner_model()], "b.yml")
    write_registry_file(tmp_path, [generation_model()], "a.yaml")
    write_text_file(tmp_path, "\x00", "README.md")
    write_text_file(tmp_path, "\x00", ".#a.yaml")
    write_text_file(tmp_path / ".git", "\x00", "x.yaml")
    documents, problems = load_directory(tmp_path)
    assert problems == []
    assert [Path(d.file).name for d in documents] == ["a.yaml", "b.yml"]


# --------------------------------------------------------------------------- never a trace

YAML_PIECES = st.sampled_from(
    ["version: 1\n", "models:\n", "  - ", "name: a\n", "    type: ner\n", "&a ", "*a", "<<: ", "[", "]", "{", "}", ": ",
     "- ", "? ", "---\n", "!!str ", "'", '"', "\t", "#", "\n", "    ", "yes", "1e3", "2024-01-01", "~", "\x00", "\xe9"]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(YAML_PIECES, max_size=40))
def test_any_input_gives_diagnostics_never_an_exception(tmp_path: Path, pieces: list[str]) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_bytes("".join(pieces).encode("utf-8", "surrogateescape"))
    document, problems = load_file(path)
    assert document is not None or problems
    assert all(d.location is not None and d.location.line >= 1 for d in problems)
    validate_documents([document] if document else [])
