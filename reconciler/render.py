"""Plan -> text for a terminal, JSON for tools, markdown for a PR comment, GitHub annotations.

Pure functions of the plan. Nothing secret can reach them: the plan holds key
references and display tokens ("(set)", "changed"), never a key or a fingerprint.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Collection, Iterable, Mapping

from reconciler import __version__
from reconciler.diagnostics import escape_github_data, escape_github_property, escape_text, json_text
from reconciler.references import redact_endpoint
from reconciler.plan import KEY_CHANGED, KEY_NONE, KEY_SET, KEY_UNKNOWN, Action, FieldChange, Plan
from reconciler.spec import env_reference_name, yaml_field_name
from reconciler.target import Target, short_revision

# Version of the JSON plan document (docs/plan-format.md); bump on incompatible change.
PLAN_JSON_VERSION = 1
# GitHub refuses comments over 65,536 characters; leave room for a header it may add.
MARKDOWN_PART_LIMIT = 60_000

_KEY_TOKENS = {KEY_NONE, KEY_SET, KEY_CHANGED, KEY_UNKNOWN}
_MARKERS = {"create": "+", "update": "~", "delete": "-"}
_VERBS = {"create": "will be created", "update": "will be updated in place", "delete": "will be deleted"}
_COLOURS = {"create": "green", "update": "yellow", "delete": "red", "blocked": "red", "warning": "yellow"}

Style = Callable[..., str]


def _plain(text: str, **_: Any) -> str:
    return text


def format_value(value: Any) -> str:
    """A field value as a reviewer reads it: strings quoted, None as (none), key tokens bare."""
    if isinstance(value, str) and value in _KEY_TOKENS:
        return value
    if value is None:
        return KEY_NONE
    return json.dumps(value)


def summary_line(plan: Plan) -> str:
    """`Plan: 2 to create, 1 to update, 1 to delete, 1 blocked.` or the no-changes sentence."""
    if not plan.has_changes:
        return "No changes. The registry in the database matches the definitions."
    return (
        f"Plan: {plan.count('create')} to create, {plan.count('update')} to update, "
        f"{plan.count('delete')} to delete, {len(plan.blocked)} blocked."
    )


def _title(action: Action) -> str:
    rename = f" (renamed from {escape_text(action.previous_name)})" if action.previous_name else ""
    return f"{escape_text(action.name)}{rename}"


def _shown(change: FieldChange, value: Any) -> Any:
    """A value as a plan may show it: an endpoint from the database without its credentials."""
    return redact_endpoint(value) if change.field == "api_endpoint" else value


def key_reference(action: Action) -> str | None:
    """The `${env:NAME}` an action's API key comes from (None without one): a reviewer sees which variable goes where."""
    reference = action.desired.get("api_key") if action.desired else None
    return reference if isinstance(reference, str) else None


def _after_value(action: Action, change: FieldChange, unset: Collection[str] = ()) -> str:
    """The new value; for the API key, the variable it is read from and a token, never the value."""
    reference = key_reference(action) if change.field == "api_key" else None
    if reference is None or change.after not in _KEY_TOKENS:
        return format_value(_shown(change, change.after))
    token = change.after if change.after.startswith("(") else f"({change.after})"
    if change.after == KEY_UNKNOWN and env_reference_name(reference) in unset:
        token = f"(not set: {KEY_UNKNOWN[1:]}"
    return f"{escape_text(reference)} {token}"


def _change_lines(action: Action, unset: Collection[str] = ()) -> list[tuple[str, str]]:
    """(marker, text) per changed field, names as written in YAML; `unset`: key variables unset now."""
    width = max((len(yaml_field_name(c.field)) for c in action.changes), default=0)
    lines = []
    for change in action.changes:
        label = yaml_field_name(change.field).ljust(width)
        if action.kind == "create":
            lines.append(("+", f"{label} = {_after_value(action, change, unset)}"))
        else:
            drift = f"   {DRIFT_MARK}" if change.field in action.drift_fields else ""
            lines.append(("~", f"{label} = {format_value(_shown(change, change.before))} -> {_after_value(action, change, unset)}{drift}"))
    return lines


DRIFT_MARK = "(drift: changed outside llm-registry)"


def partial_line(plan: Plan) -> str:
    """The loud line of a --target plan: what is in it and what was left out."""
    extras = f" (and what they need: {', '.join(plan.target_extras)})" if plan.target_extras else ""
    left = len(plan.left_out)
    left_out = f"{left} other change{'s' * (left != 1)} left out: {', '.join(plan.left_out)}" if left else "no other changes left out"
    return f"PARTIAL PLAN: only --target {', '.join(plan.targets)}{extras}; {left_out}."


def drift_note(action: Action) -> str:
    """What a reviewer should know about a drifted row (its changes are not all from git)."""
    if action.kind == "delete":
        return "changed outside llm-registry since the last apply, and no longer in git"
    if action.drift_fields:
        fields = ", ".join(yaml_field_name(name) for name in action.drift_fields)
        return f"{fields} changed outside llm-registry since the last apply; applying sets git's values back"
    return "changed outside llm-registry since the last apply (which fields cannot be told); applying sets git's values"


def drift_lines(plan: Plan) -> list[str]:
    """The drift section, apart from the changes git proposes: drifted rows, new hand-made rows."""
    lines = []
    drifted = [action for action in plan.actions if action.drift]
    if drifted:
        lines.append(f"Drift: {len(drifted)} model{'s' * (len(drifted) != 1)} changed outside llm-registry since the last apply:")
        lines += [f"  - {escape_text(action.name)}: {escape_text(drift_note(action))}" for action in drifted]
    if plan.new_unmanaged:
        lines.append(
            "New rows made by hand since the last apply (not managed, left untouched): "
            + ", ".join(map(escape_text, plan.new_unmanaged))
        )
    return lines


def target_line(target: Target) -> str:
    """`Target: database ..., environment ..., revision ...` (text plans and apply's prompt)."""
    return f"Target: {escape_text(target.summary())}"


def render_text(plan: Plan, *, style: Style = _plain, target: Target | None = None) -> str:
    """The Terraform-like plan: the target, one block per model, one line per changed field, a summary."""
    out: list[str] = [style(target_line(target), bold=True), ""] if target is not None else []
    if plan.partial:
        out += [style(escape_text(partial_line(plan)), fg="yellow", bold=True), ""]
    if plan.has_changes:
        out += ["llm-registry will perform the following actions:", ""]
    for action in plan.actions:
        marker = _MARKERS[action.kind]
        colour = _COLOURS["blocked" if action.is_blocked else action.kind]
        where = f"  ({escape_text(action.location)})" if action.location else ""
        verdict = f"BLOCKED: {action.kind} refused" if action.is_blocked else _VERBS[action.kind]
        drifted = " [DRIFT]" if action.drift else ""
        out.append(style(f"  # {escape_text(action.name)} {verdict}{drifted}{where}", bold=True))
        kind = f"({escape_text(action.model_type)}, {escape_text(action.provider)})"
        out.append(style(f"  {'!' if action.is_blocked else ' '}{marker} {_title(action)}  {kind}", fg=colour))
        for change_marker, text in _change_lines(action, plan.unset_key_variables):
            out.append(style(f"      {change_marker} {text}", fg=_COLOURS["update" if change_marker == "~" else "create"]))
        if action.kind == "delete" and action.knowledge_bases and not action.is_blocked:
            out.append(f"      used by: {', '.join(map(escape_text, action.knowledge_bases))}")
        for reason in action.blocked:
            out.append(style(f"      blocked: {escape_text(reason)}", fg=_COLOURS["blocked"], bold=True))
        for note in action.warnings:
            out.append(style(f"      warning: {escape_text(note)}", fg=_COLOURS["warning"]))
        if action.drift:
            out.append(style(f"      drift: {escape_text(drift_note(action))}", fg=_COLOURS["warning"], bold=True))
        out.append("")
    if plan.refusals:
        out += [style(f"Refused: {escape_text(reason)}", fg="red", bold=True) for reason in plan.refusals] + [""]
    if plan.warnings:
        out += ["Warnings:"] + [style(f"  - {escape_text(w)}", fg=_COLOURS["warning"]) for w in plan.warnings] + [""]
    if plan.unmanaged:
        out += [f"Not managed by llm-registry, left untouched: {', '.join(map(escape_text, plan.unmanaged))}", ""]
    if plan.resolved_references:
        out += ["Resolved from the environment:"] + [f"  {line}" for line in _reference_lines(plan)] + [""]
    if drift_lines(plan):
        out += [style(line, fg=_COLOURS["warning"]) for line in drift_lines(plan)] + [""]
    out.append(style(summary_line(plan), bold=True))
    if plan.partial:
        out.append(style(escape_text(partial_line(plan)), fg="yellow", bold=True))
    if plan.is_blocked:
        out.append(style("Apply will refuse this plan until the blocked changes are resolved.", fg="red"))
    return "\n".join(out)


def _reference_lines(plan: Plan) -> list[str]:
    """`ollama-embed api_endpoint = "http://..." (${env:OLLAMA_URL})` per resolved reference, escaped."""
    return [
        escape_text(f"{ref.model} {ref.field} = {format_value(ref.value)} (${{env:{ref.variable}}})")
        for ref in plan.resolved_references
    ]


def _change_json(action: Action, change: FieldChange) -> dict[str, Any]:
    data = {"field": yaml_field_name(change.field), "before": _shown(change, change.before), "after": _shown(change, change.after)}
    if action.drift:  # only on a drifted row: which of its changes undo a hand edit
        data["drift"] = change.field in action.drift_fields
    if change.field == "api_key":
        data["reference"] = key_reference(action)
    return data


def plan_to_json_data(plan: Plan, target: Target | None = None) -> dict[str, Any]:
    """The plan as the documented, versioned JSON document (docs/plan-format.md).

    The plan must carry its fingerprints (`compute_plan(..., fingerprints=True)`).
    """
    if not (plan.state_fingerprint and plan.spec_fingerprint):
        raise ValueError("a plan computed without fingerprints cannot be a JSON plan document")
    return {
        "format_version": PLAN_JSON_VERSION,
        "llm_registry_version": __version__,
        "target": target.as_json() if target is not None else None,
        "summary": {
            "create": plan.count("create"),
            "update": plan.count("update"),
            "delete": plan.count("delete"),
            "blocked": len(plan.blocked),
            "unchanged": len(plan.unchanged),
            "has_changes": plan.has_changes,
            "is_blocked": plan.is_blocked,
            "drift": sum(1 for action in plan.actions if action.drift),
        },
        "actions": [
            {
                "action": action.kind,
                "name": action.name,
                "type": action.model_type,
                "provider": action.provider,
                "previous_name": action.previous_name,
                "adopt": action.adopt,
                "blocked": action.is_blocked,
                "blocked_reasons": list(action.blocked),
                "warnings": list(action.warnings),
                "knowledge_bases": list(action.knowledge_bases),
                "drift": action.drift,
                "drift_fields": [yaml_field_name(name) for name in action.drift_fields],
                "location": (
                    {"file": action.location.file, "line": action.location.line, "column": action.location.column}
                    if action.location
                    else None
                ),
                "changes": [_change_json(action, change) for change in action.changes],
            }
            for action in plan.actions
        ],
        "refusals": list(plan.refusals),
        "warnings": list(plan.warnings),
        "unmanaged": list(plan.unmanaged),
        "new_unmanaged": list(plan.new_unmanaged),
        "unchecked_keys": list(plan.unchecked_keys),
        "partial": plan.partial,
        "targets": list(plan.targets),
        "target_extras": list(plan.target_extras),
        "left_out": list(plan.left_out),
        "resolved_references": [
            {"model": ref.model, "field": ref.field, "variable": ref.variable, "value": ref.value}
            for ref in plan.resolved_references
        ],
        "state_fingerprint": plan.state_fingerprint,
        "spec_fingerprint": plan.spec_fingerprint,
    }


def json_document(data: Mapping[str, Any], sort_keys: bool = False) -> str:
    """`data` as JSON text for people and machines: one top-level key per line and one
    list element per line, each value encoded by the json module's C encoder.

    `indent=2` would send every value through the pure-Python encoder (about a
    second at 10,000 actions); this keeps the output readable and diff-friendly at
    the C encoder's speed. Parsing it gives exactly `data`.
    """
    encode = json.JSONEncoder(separators=(", ", ": "), sort_keys=sort_keys, default=str).encode
    keys = sorted(data) if sort_keys else list(data)
    lines = ["{"]
    for index, key in enumerate(keys):
        comma = "," if index < len(keys) - 1 else ""
        value = data[key]
        if isinstance(value, (list, tuple)) and value:
            lines.append(f"  {encode(key)}: [")
            lines.append(",\n".join(["    " + encode(element) for element in value]))
            lines.append(f"  ]{comma}")
        else:
            lines.append(f"  {encode(key)}: {encode(value)}{comma}")
    lines.append("}")
    # As diagnostics.json_text: `##[` as the same JSON string `##\u005b`, so that no
    # line of the output is a legacy workflow command.
    return "\n".join(lines).replace("##[", "##\\u005b")


def render_json(plan: Plan, target: Target | None = None) -> str:
    """The JSON document (docs/plan-format.md), one action per line."""
    return json_document(plan_to_json_data(plan, target))


# Characters that could start markup in GitHub's markdown (emphasis, links, images, tables,
# HTML, code spans, @mentions, #references), written as character references: they show
# as themselves, in text and inside <code> alike, and form nothing.
_MD_REFERENCES = {c: f"&#{ord(c)};" for c in "&\\`*_{}[]()!|<>~@#"}
# An underscore between two letters or digits (snake_case) cannot start emphasis: kept.
_INTRAWORD_UNDERSCORE = re.compile(r"(?<=[A-Za-z0-9])&#95;(?=[A-Za-z0-9])")


def _md_escape(text: str) -> str:
    """Text from files or the database for GitHub markdown: terminal-safe, no markup, no autolink."""
    escaped = "".join(_MD_REFERENCES.get(c, c) for c in escape_text(text))
    escaped = _INTRAWORD_UNDERSCORE.sub("_", escaped)
    # GitHub links bare URLs and www. names too.
    return escaped.replace("://", "&#58;//").replace("www.", "www&#46;")


def _md_notes(action: Action) -> str:
    if action.is_blocked:
        return "⛔ " + _md_escape("; ".join(action.blocked))
    notes = list(action.warnings)
    if action.drift:
        notes.insert(0, "drift: " + drift_note(action))
    if action.previous_name:
        notes.insert(0, f"renamed from {action.previous_name}")  # escaped below, with the rest
    if action.kind == "delete" and action.knowledge_bases:
        notes.append("used by " + ", ".join(action.knowledge_bases))
    return _md_escape("; ".join(notes))


def _md_details(action: Action, unset: Collection[str] = ()) -> str:
    lines = [f"{marker} {text}" for marker, text in _change_lines(action, unset)]
    lines += [f"! blocked: {escape_text(reason)}" for reason in action.blocked]
    # Inside a fence only a line of backticks could end it: the fence is made longer than any run in the body.
    body = "\n".join(lines) or f"- {escape_text(action.name)}"
    flags = (" (blocked)" if action.is_blocked else "") + (" (drift)" if action.drift else "")
    summary = f"<code>{_MARKERS[action.kind]} {_md_escape(action.name)}</code> — {action.kind}{flags}"
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall("`+", body)), default=0))
    return f"<details><summary>{summary}</summary>\n\n{fence}diff\n{body}\n{fence}\n\n</details>"


def _ordered_for_review(plan: Plan) -> list[Action]:
    return sorted(plan.actions, key=lambda a: (not a.is_blocked, ("delete", "update", "create").index(a.kind), a.name))


def _md_target(target: Target) -> str:
    def code(text: str) -> str:
        return f"<code>{_md_escape(text)}</code>"  # not a code span: references show there as written

    return (
        f"Database {code(target.database)} · environment {code(target.environment or '(none)')} · "
        f"revision {code(short_revision(target.revision) or '(unknown)')}"
    )


# Names listed in the markdown's "not managed" line; the rest are counted.
MARKDOWN_LISTED_NAMES = 50


def render_markdown_parts(
    plan: Plan, *, limit: int = MARKDOWN_PART_LIMIT, target: Target | None = None, max_parts: int | None = None
) -> list[str]:
    """The plan as one or more PR comments, each under `limit` characters.

    Blocked changes come first; a summary table, then a collapsible diff per model.
    When split, every part says which part it is and repeats the table header. With
    `max_parts`, at most that many: the last one then says how much was left out.
    """
    icon = {"create": "➕", "update": "🔄", "delete": "➖"}
    head = ["### llm-registry plan", ""]
    if target is not None:
        head += [_md_target(target), ""]
    head += [f"**{summary_line(plan)}**", ""]
    if plan.is_blocked:
        head += ["> [!CAUTION]", "> This plan holds blocked changes; `apply` will refuse it."]
        head += [f"> {_md_escape(r)}" for r in plan.refusals] + [""]
    if plan.warnings:
        head += ["**Warnings**", ""] + [f"- {_md_escape(w)}" for w in plan.warnings] + [""]
    if plan.unmanaged:
        listed = ", ".join(plan.unmanaged[:MARKDOWN_LISTED_NAMES])
        more = len(plan.unmanaged) - MARKDOWN_LISTED_NAMES
        head += [f"Not managed by llm-registry, left untouched: {_md_escape(listed)}" + (f" and {more} more" if more > 0 else ""), ""]
    if plan.partial:
        head += ["> [!IMPORTANT]", f"> {_md_escape(partial_line(plan))}", ""]
    if drift_lines(plan):
        head += ["> [!WARNING]"] + [f"> {_md_escape(line)}" for line in drift_lines(plan)] + [""]
    if plan.resolved_references:
        head += ["Resolved from the environment:", ""] + [f"- {_md_escape(line)}" for line in _reference_lines(plan)] + [""]
    table_header = "| | Model | Type | Provider | Action | Notes |\n|---|---|---|---|---|---|"
    actions = _ordered_for_review(plan)
    rows = [
        f"| {'⛔' if a.is_blocked else icon[a.kind]} | <code>{_md_escape(a.name)}</code> | {_md_escape(a.model_type)} | {_md_escape(a.provider)} | {a.kind} | {_md_notes(a)} |"
        for a in actions
    ]
    # Line by line: a head of 10,000 resolved references must split like the rest.
    blocks: list[tuple[str, str]] = [("text", line) for line in head]
    blocks += [("row", row) for row in rows]
    blocks += [("text", _md_details(a, plan.unset_key_variables)) for a in actions]
    return _pack(blocks, table_header, limit, max_parts)


def _pack(blocks: Iterable[tuple[str, str]], table_header: str, limit: int, max_parts: int | None = None) -> list[str]:
    parts: list[list[str]] = [[]]
    sizes = [0]
    in_table = [False]
    left_out = {"row": 0, "text": 0}
    budget = limit - 200  # room for the part line and the sticky marker
    for kind, text in blocks:
        full = max_parts is not None and len(parts) >= max_parts and sizes[-1] + len(text) + 1 > budget - 300
        if full or left_out["row"] or left_out["text"]:  # once full, the rest stays out, in order
            left_out[kind] += 1
            continue
        if len(text) > budget - len(table_header) - 1:  # one block longer than a part: cut, never refused
            text = text[: budget - len(table_header) - 80] + "\n… (cut: too long for a comment)"
        addition = text
        if kind == "row" and not in_table[-1]:
            addition = f"{table_header}\n{text}"
        elif kind == "text" and in_table[-1]:
            addition = f"\n{text}"
        if sizes[-1] + len(addition) + 1 > limit - 200 and parts[-1]:
            parts.append([])
            sizes.append(0)
            in_table.append(False)
            addition = f"{table_header}\n{text}" if kind == "row" else text
        parts[-1].append(addition)
        sizes[-1] += len(addition) + 1
        in_table[-1] = kind == "row"
    if left_out["row"] or left_out["text"]:
        parts[-1].append(
            f"\n**… the rest is too long for PR comments ({left_out['row']} more table rows, {left_out['text']} "
            "more blocks of the plan):** the whole plan is in the job's log; run `llm-registry plan` to see it."
        )
    rendered = ["\n".join(part).rstrip() + "\n" for part in parts]
    if len(rendered) > 1:
        rendered = [f"_Part {i} of {len(rendered)}_\n\n{text}" for i, text in enumerate(rendered, 1)]
    return rendered


MARKDOWN_PART_SEPARATOR = "\n<!-- llm-registry: next part -->\n"


def render_markdown(plan: Plan, target: Target | None = None) -> str:
    """All markdown parts, joined by MARKDOWN_PART_SEPARATOR (split on it to post them)."""
    return MARKDOWN_PART_SEPARATOR.join(render_markdown_parts(plan, target=target))


def render_github(plan: Plan) -> str:
    """GitHub workflow commands: an error per blocked change at its file:line, each model's warnings there, the plan's warnings, a notice."""
    lines = []
    for action in plan.blocked:
        where = ""
        if action.location:
            loc = action.location
            where = f" file={escape_github_property(loc.file)},line={loc.line},col={loc.column}"
        message = f"{action.kind} of {action.name} blocked: " + "; ".join(action.blocked)
        lines.append(f"::error{where},title=llm-registry blocked::{escape_github_data(message)}" if where else f"::error title=llm-registry blocked::{escape_github_data(message)}")
    for reason in plan.refusals:
        lines.append(f"::error title=llm-registry refused::{escape_github_data(reason)}")
    for action in plan.actions:
        for note in action.warnings:
            where = ""
            if action.location:
                loc = action.location
                where = f" file={escape_github_property(loc.file)},line={loc.line},col={loc.column},"
            lines.append(f"::warning{where or ' '}title=llm-registry::{escape_github_data(f'{action.name}: {note}')}")
    for note in plan.warnings:
        lines.append(f"::warning title=llm-registry::{escape_github_data(note)}")
    for line in drift_lines(plan) + ([partial_line(plan)] if plan.partial else []):
        lines.append(f"::warning title=llm-registry::{escape_github_data(line)}")
    lines.append(f"::notice title=llm-registry plan::{escape_github_data(summary_line(plan))}")
    return "\n".join(lines)
