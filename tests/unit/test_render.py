"""Plan renderings: what a reviewer reads on a terminal, in a PR comment, in a tool."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from reconciler.pipeline import plan_registry
from reconciler.plan import KEY_UNKNOWN, compute_plan
from reconciler.policy import apply_policies
from reconciler.render import (
    MARKDOWN_PART_SEPARATOR,
    _md_escape,
    json_document,
    plan_to_json_data,
    render_github,
    render_json,
    render_markdown,
    render_markdown_parts,
    render_text,
    summary_line,
)
from reconciler.state import RegistryState
from reconciler.target import short_revision
from tests.factories import embedding_model, generation_model, knowledge_base, registry, stored_from, stored_model


def mixed_plan():  # noqa: ANN201 - test helper
    """One create, one update, one delete, one blocked delete."""
    changed = generation_model(name="gpt", parameters={"temperature": 0.2})
    new = embedding_model(name="fresh", default=True)
    used = stored_model("used")
    state = RegistryState(
        (stored_from(generation_model(name="gpt"), fingerprint="fp"), stored_model("unused"), used, stored_model("hand", managed_by=None)),
        (knowledge_base("support-kb", embedding=used),),
    )
    return apply_policies(compute_plan(registry(changed, new), state, {"gpt": "fp"}), state)


def test_summary_line_counts_blocked_separately() -> None:
    assert summary_line(mixed_plan()) == "Plan: 1 to create, 1 to update, 1 to delete, 1 blocked."


def test_text_shows_markers_fields_and_blocked_reasons() -> None:
    text = render_text(mixed_plan())
    assert "  # fresh will be created  (models.yaml:1:1)" in text
    assert "   + fresh  (embedding, ollama)" in text
    assert '      + parameters.dimensions      = 768' in text
    assert "  # gpt will be updated in place" in text
    assert "      ~ parameters.temperature = 0.7 -> 0.2" in text
    assert "   - unused  (embedding, ollama)" in text
    assert "  # used BLOCKED: delete refused" in text
    assert "blocked: used by 1 knowledge base: support-kb" in text
    assert "Not managed by llm-registry, left untouched: hand" in text
    assert text.rstrip().endswith("Apply will refuse this plan until the blocked changes are resolved.")
    assert "\x1b[" not in text


def test_text_without_changes() -> None:
    model = embedding_model(name="e", default=True)
    state = RegistryState((stored_from(model),))
    text = render_text(apply_policies(compute_plan(registry(model), state, {}), state))
    assert text == "No changes. The registry in the database matches the definitions."


def test_key_known_at_apply_is_shown_as_such() -> None:
    plan = compute_plan(registry(generation_model(name="g")), RegistryState(), {"g": KEY_UNKNOWN})
    assert "+ api_key                      = ${env:OPENAI_API_KEY} (known at apply)" in render_text(plan)


def test_json_is_versioned_with_separate_counts() -> None:
    data = json.loads(render_json(mixed_plan()))
    assert data["format_version"] == 1
    assert data["summary"] == {
        "create": 1, "update": 1, "delete": 1, "blocked": 1, "unchanged": 0, "has_changes": True, "is_blocked": True, "drift": 0,
    }
    by_name = {a["name"]: a for a in data["actions"]}
    assert by_name["gpt"]["changes"] == [{"field": "parameters.temperature", "before": 0.7, "after": 0.2}]
    assert by_name["used"]["blocked"] and by_name["used"]["knowledge_bases"] == ["support-kb"]
    assert data["unmanaged"] == ["hand"]
    assert "fp" not in json.dumps(data["actions"])


def test_json_is_the_plan_data_with_one_action_per_line() -> None:
    plan = mixed_plan()
    text = render_json(plan)
    assert json.loads(text) == json.loads(json.dumps(plan_to_json_data(plan), default=str))
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}"
    action_lines = [line for line in lines if line.startswith('    {"action": ')]
    assert len(action_lines) == len(plan.actions) == 4
    assert all(json.loads(line.rstrip(","))["name"] for line in action_lines)


def test_a_plan_computed_without_fingerprints_is_refused_as_a_json_document() -> None:
    shown_only = compute_plan(registry(embedding_model(name="e")), RegistryState(), {}, fingerprints=False)
    with pytest.raises(ValueError, match="without fingerprints"):
        plan_to_json_data(shown_only)
    assert len(json.loads(render_json(mixed_plan()))["state_fingerprint"]) == 64


def test_json_document_keeps_order_or_sorts_and_handles_empty_lists() -> None:
    data = {"b": [], "a": [1, {"z": 1, "y": "é<"}], "c": {"k": None}}
    assert json_document(data) == '{\n  "b": [],\n  "a": [\n    1,\n    {"z": 1, "y": "\\u00e9<"}\n  ],\n  "c": {"k": null}\n}'
    assert list(json.loads(json_document(data, sort_keys=True))) == ["a", "b", "c"]
    assert json.loads(json_document(data, sort_keys=True)) == data


def test_markdown_puts_blocked_changes_first_with_collapsible_details() -> None:
    (part,) = render_markdown_parts(mixed_plan())
    assert part.startswith("### llm-registry plan")
    assert "> [!CAUTION]" in part
    rows = [line for line in part.splitlines() if line.startswith("| ")][1:]
    assert rows[0].startswith("| ⛔ | <code>used</code> |")
    assert "<details><summary><code>~ gpt</code> — update</summary>" in part
    assert "~ parameters.temperature = 0.7 -> 0.2" in part


def test_markdown_splits_below_the_comment_limit_and_repeats_the_table_header() -> None:
    models = [embedding_model(name=f"model-{i:04d}", description="x" * 50) for i in range(400)]
    plan = compute_plan(registry(*models), RegistryState(), {})
    parts = render_markdown_parts(plan, limit=20_000)
    assert len(parts) > 2
    assert all(len(part) < 20_000 for part in parts)
    assert parts[0].startswith("_Part 1 of ")
    joined = "".join(parts)
    assert all(f"<code>model-{i:04d}</code>" in joined for i in range(400))
    table_parts = [p for p in parts if "| " in p]
    assert all("| | Model | Type | Provider | Action | Notes |" in p for p in table_parts)
    assert render_markdown(plan).count(MARKDOWN_PART_SEPARATOR) == len(render_markdown_parts(plan)) - 1


def test_markdown_default_limit_fits_a_github_comment() -> None:
    models = [embedding_model(name=f"m-{i:05d}") for i in range(1500)]
    parts = render_markdown_parts(compute_plan(registry(*models), RegistryState(), {}))
    assert len(parts) > 1 and max(map(len, parts)) < 65_536


def test_a_plan_too_long_for_its_parts_says_what_it_left_out() -> None:
    models = [embedding_model(name=f"model-{i:04d}", description="x" * 50) for i in range(400)]
    plan = compute_plan(registry(*models), RegistryState(), {})
    parts = render_markdown_parts(plan, limit=5_000, max_parts=2)
    assert len(parts) == 2 and parts[1].startswith("_Part 2 of 2_") and all(len(part) < 5_000 for part in parts)
    shown = sum(f"<code>model-{i:04d}</code> |" in "".join(parts) for i in range(400))
    assert 0 < shown < 400 and all(f"<code>model-{i:04d}</code> |" in "".join(parts) for i in range(shown))  # in order
    assert f"**… the rest is too long for PR comments ({400 - shown} more table rows, 400 more blocks of the plan):**" in parts[1]
    assert render_markdown_parts(plan, limit=5_000, max_parts=1000) == render_markdown_parts(plan, limit=5_000)


def test_a_long_head_splits_and_lists_at_most_fifty_unmanaged_names() -> None:
    rows = tuple(stored_model(f"hand-made-{i:04d}", managed_by=None) for i in range(4000))
    references = [embedding_model(name=f"e-{i:04d}", api_endpoint="${env:OLLAMA_URL}") for i in range(1500)]
    spec = registry(*references)
    spec = replace(spec, references=tuple(replace(r, value="http://ollama.internal:11434") for r in spec.references))
    plan = apply_policies(compute_plan(spec, RegistryState(rows), {}), RegistryState(rows))
    plan = replace(plan, resolved_references=spec.references)
    parts = render_markdown_parts(plan, limit=20_000)
    assert all(len(part) < 20_000 for part in parts)  # 1,500 resolved references: the head splits too
    joined = "".join(parts)
    assert "hand-made-0049, and 3950 more" not in joined and "hand-made-0049 and 3950 more" in joined
    assert "hand-made-0050" not in joined


def test_github_annotations_point_blocked_changes_at_their_file() -> None:
    keep = embedding_model(name="keep", default=True, parameters={"dimensions": 1024})
    row = stored_from(embedding_model(name="keep", default=True))
    state = RegistryState((row,), (knowledge_base("kb-1", embedding=row),))
    out = render_github(apply_policies(compute_plan(registry(keep), state, {}), state))
    assert out.splitlines()[0].startswith("::error file=models.yaml,line=1,col=1,title=llm-registry blocked::update of keep blocked: used by 1 knowledge base: kb-1")
    assert out.splitlines()[-1] == "::notice title=llm-registry plan::Plan: 0 to create, 0 to update, 0 to delete, 1 blocked."


def test_github_annotations_carry_each_models_warnings_at_its_file() -> None:
    row = stored_from(embedding_model(name="old", default=True))
    off = embedding_model(name="old", active=False, default=False)
    state = RegistryState((row,), (knowledge_base("kb-1", embedding=row),))
    out = render_github(apply_policies(compute_plan(registry(off), state, {}), state))
    assert "::warning file=models.yaml,line=1,col=1,title=llm-registry::old: deactivates a model used by 1 knowledge base: kb-1" in out.splitlines()


def test_every_format_names_the_target() -> None:
    from reconciler.render import plan_to_json_data
    from reconciler.target import Target

    target = Target("ci@db.internal:5432/kb", "production", "0123456789abcdef0123456789abcdef01234567", "7/kb")
    plan = mixed_plan()
    assert render_text(plan, target=target).splitlines()[0] == (
        "Target: database ci@db.internal:5432/kb, environment production, revision 0123456789ab"
    )
    assert (
        "Database <code>ci&#64;db.internal:5432/kb</code> · environment <code>production</code> · revision <code>0123456789ab</code>"
    ) in render_markdown_parts(plan, target=target)[0]
    assert plan_to_json_data(plan, target)["target"] == {
        "database": "ci@db.internal:5432/kb", "environment": "production", "revision": "0123456789abcdef0123456789abcdef01234567",
    }  # fmt: skip
    assert "7/kb" not in json.dumps(plan_to_json_data(plan, target))  # the identity stays in plan files
    assert render_text(plan, target=Target("x@y/z")).splitlines()[0] == "Target: database x@y/z, environment (none), revision (unknown)"
    dirty = Target("x@y/z", revision="0123456789abcdef0123456789abcdef01234567-dirty")
    assert render_text(plan, target=dirty).splitlines()[0].endswith("revision 0123456789ab-dirty")


@pytest.mark.parametrize(
    ("revision", "shown"),
    [
        ("0123456789abcdef0123456789abcdef01234567", "0123456789ab"),
        ("0123456789ABCDEF0123456789ABCDEF01234567-dirty", "0123456789AB-dirty"),  # the mark kept
        ("release-2026-11-28", "release-2026-11-28"),  # not a commit id: whole
        ("0123456789abcdef0123-dirty", "0123456789abcdef0123-dirty"),  # too short for one: whole
        ("", None),
        (None, None),
    ],
)
def test_short_revision(revision: str | None, shown: str | None) -> None:
    assert short_revision(revision) == shown


HOSTILE = "x\n::error::injected\x1b[2J\r##[add-mask]y`|<b>"


def hostile_plan():  # noqa: ANN201 - test helper
    """Names made by hand in the database: a deleted row, a KB using another, an unmanaged row."""
    used = stored_model(HOSTILE + "-used", provider="ollama\n::warning::p")
    state = RegistryState(
        (stored_model(HOSTILE + "-gone"), used, stored_model(HOSTILE + "-hand", managed_by=None)),
        (knowledge_base(HOSTILE + "-kb", embedding=used),),
    )
    return apply_policies(compute_plan(registry(embedding_model(name="fresh", default=True)), state, {}), state)


def _lines_starting_a_command(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.lstrip().startswith("::") or "##[" in line]


def test_no_renderer_lets_data_drive_a_terminal_or_start_a_workflow_command() -> None:
    plan = hostile_plan()
    for output in (render_text(plan), render_markdown(plan), render_json(plan)):
        assert "\x1b" not in output and "\r" not in output
        assert _lines_starting_a_command(output) == []
        assert "injected" in output  # shown, as text
    github = render_github(plan)
    assert "\x1b" not in github and "\r" not in github
    # Only the commands the renderer writes: one per line, each with its data escaped.
    assert all(line.split("::")[1].split(" ")[0] in ("error", "warning", "notice") for line in github.splitlines())
    per_model = sum(len(action.warnings) for action in plan.actions)
    assert len(github.splitlines()) == len(plan.blocked) + len(plan.refusals) + per_model + len(plan.warnings) + 1


def test_text_shows_escaped_names_on_one_line() -> None:
    text = render_text(hostile_plan())
    assert "  # x\\n::error::injected\\x1b[2J\\r##\\[add-mask]y`|<b>-gone BLOCKED: delete refused" in text


def test_markdown_cannot_close_a_code_span_or_a_fence() -> None:
    markdown = render_markdown(hostile_plan())
    # Every character that could make markup is a character reference (shown as itself).
    assert "| <code>x&#92;n::error::injected&#92;x1b&#91;2J&#92;r&#35;&#35;&#92;&#91;add-mask&#93;y&#96;&#124;&#60;b&#62;-gone</code> |" in markdown
    assert "<summary><code>- x&#92;n::error::injected&#92;x1b&#91;2J&#92;r&#35;&#35;&#92;&#91;add-mask&#93;y&#96;&#124;&#60;b&#62;-gone</code>" in markdown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("kb ![i](https://evil.example/x.png)", "kb &#33;&#91;i&#93;&#40;https&#58;//evil.example/x.png&#41;"),
        ("[click](http://e.example) @octocat #12", "&#91;click&#93;&#40;http&#58;//e.example&#41; &#64;octocat &#35;12"),
        ("**bold** _it_ ~~s~~ www.evil.example", "&#42;&#42;bold&#42;&#42; &#95;it&#95; &#126;&#126;s&#126;&#126; www&#46;evil.example"),
        ("a|b <b>&amp;</b> `c`", "a&#124;b &#60;b&#62;&#38;amp;&#60;/b&#62; &#96;c&#96;"),
        ("plain-name.v2: ok", "plain-name.v2: ok"),
        ("snake_case_name _start end_", "snake_case_name &#95;start end&#95;"),  # only an edge _ can emphasise
    ],
)
def test_markdown_data_forms_no_link_image_mention_or_emphasis(text: str, shown: str) -> None:
    assert _md_escape(text) == shown


def test_api_key_shows_the_variable_it_comes_from() -> None:
    plan = compute_plan(registry(generation_model(name="g", api_key="${env:OPENAI_API_KEY}")), RegistryState(), {"g": "fp"})
    assert "+ api_key                      = ${env:OPENAI_API_KEY} (set)" in render_text(plan)
    change = next(c for c in json.loads(render_json(plan))["actions"][0]["changes"] if c["field"] == "api_key")
    assert change == {"field": "api_key", "before": None, "after": "(set)", "reference": "${env:OPENAI_API_KEY}"}
    assert "${env:OPENAI_API_KEY} (set)" in render_markdown(plan)


def test_a_key_whose_variable_is_unset_says_so() -> None:
    from dataclasses import replace

    plan = compute_plan(registry(generation_model(name="g")), RegistryState(), {"g": KEY_UNKNOWN})
    unset = replace(plan, unset_key_variables=("OPENAI_API_KEY",))
    assert "+ api_key                      = ${env:OPENAI_API_KEY} (not set: known at apply)" in render_text(unset)
    assert "${env:OPENAI_API_KEY} (not set: known at apply)" in render_markdown(unset)
    # Set, but the passphrase is not: the fingerprint is still unknown.
    assert "= ${env:OPENAI_API_KEY} (known at apply)" in render_text(plan)


@pytest.mark.parametrize("environ", [{}, {"OPENAI_API_KEY": ""}], ids=["unset", "empty"])
def test_an_empty_key_variable_is_as_unset_as_a_missing_one(environ: dict[str, str]) -> None:
    spec = registry(generation_model(name="chat", default=True), embedding_model(name="emb", default=True))
    plan = plan_registry(spec, RegistryState(), environ).plan
    assert plan.unset_key_variables == ("OPENAI_API_KEY",)
    assert "= ${env:OPENAI_API_KEY} (not set: known at apply)" in render_text(plan)
    assert plan_registry(spec, RegistryState(), {"OPENAI_API_KEY": "sk-x"}).plan.unset_key_variables == ()
