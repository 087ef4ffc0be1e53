"""Plain data -> one self-contained HTML page (inline CSS and JS, no network), Jinja2 autoescaped.

Two pages: the registry (`render_registry_html`, from `data.RegistryPage`) and a plan
(`render_plan_html`, from the plan's JSON document, `render.plan_to_json_data`).

Safe by construction: the environment autoescapes every value, and `finalize` passes
every value through `diagnostics.escape_text` (control, invisible and bidi-override
characters visible as `\\u202e`, newlines as `\\n`, no line can start a workflow
command when the page is printed in a CI log), so that a name or description made by
hand in the database renders as the text it is. The one inline
script and the one inline style are static files of this package; the
Content-Security-Policy allows exactly them, by hash, and nothing else.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from importlib import resources
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import quote

from reconciler import __version__
from reconciler.diagnostics import escape_text
from reconciler.gc_pause import collector_paused
from reconciler.target import short_revision

if TYPE_CHECKING:
    from jinja2 import Environment

    from reconciler.page.data import RegistryPage

TYPE_LABELS = {"embedding": "Embedding", "generation": "Generation", "ner": "NER"}
ACTION_MARKERS = {"create": "+", "update": "~", "delete": "-"}
# Fields of an action in the JSON plan that the plan template shows in their own place.
_ACTION_FIELDS = (
    "action", "name", "type", "provider", "previous_name", "adopt", "blocked", "blocked_reasons",
    "warnings", "knowledge_bases", "location", "changes", "drift",
)  # fmt: skip
# Top-level fields of the JSON plan shown in their own place, or not at all (fingerprints).
_PLAN_FIELDS = (
    "format_version", "llm_registry_version", "target", "summary", "actions", "refusals", "warnings",
    "unmanaged", "unchecked_keys", "state_fingerprint", "spec_fingerprint",
)  # fmt: skip


def _finalize(value: Any) -> Any:
    # Runs on every {{ expression }} before autoescaping; Markup (our own HTML) passes.
    if type(value) is str:  # noqa: E721 - exactly str: Markup is a str subclass and must pass
        return escape_text(value)
    return value


def _fragment(value: str) -> str:
    """A model name as a URL fragment (`#model-<fragment>`); the browser decodes it to the element's id."""
    return quote(escape_text(value), safe="")


@functools.lru_cache(maxsize=None)
def _asset(name: str) -> str:
    return resources.files("reconciler.page").joinpath("static", name).read_text(encoding="utf-8")


def _hash_source(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def page_style() -> str:
    """The page's stylesheet (inlined in every page)."""
    return _asset("page.css")


def page_script() -> str:
    """The page's only script: client-side filtering of the model table (inlined)."""
    return _asset("page.js")


def content_security_policy(*, header: bool = False) -> str:
    """The page's Content-Security-Policy: nothing but its own inline style and script, by hash.

    `header=True` adds what only an HTTP header can carry (`frame-ancestors`); the
    same policy without it goes into the page's <meta> tag, so that a saved file is as
    strict when opened from disk or a CI artifact.
    """
    directives = [
        "default-src 'none'",
        f"script-src {_hash_source(page_script())}",
        f"style-src {_hash_source(page_style())}",
        "img-src data:",
        "base-uri 'none'",
        "form-action 'none'",
    ]
    if header:
        directives.append("frame-ancestors 'none'")
    return "; ".join(directives)


@functools.lru_cache(maxsize=1)
def _environment() -> "Environment":
    # Imported here: `--help` and `validate` must not pay for Jinja2.
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    environment = Environment(
        loader=PackageLoader("reconciler.page", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["fragment"] = _fragment
    environment.filters["short_revision"] = short_revision
    return environment


def _render(template: str, **context: Any) -> str:
    from markupsafe import Markup

    script, style = page_script(), page_style()
    if "</" in script or "</" in style:  # a static asset that could close its own element
        raise ValueError("page assets must not contain '</'")
    return _environment().get_template(template).render(
        csp=content_security_policy(),
        version=__version__,
        # Our own static files, not data: inserted as they are, and allowed by their hash.
        script=Markup(script),
        style=Markup(style),
        **context,
    )


@collector_paused()  # a page of 10,000 models allocates millions of short-lived strings
def render_registry_html(page: "RegistryPage") -> str:
    """The registry page: model table with type tabs and provider filter, model details, audit runs."""
    return _render("registry.html.j2", page=page, type_labels=TYPE_LABELS)


def _plan_value(value: Any) -> str:
    """A before/after value exactly as the text plan shows it (`render.format_value`)."""
    from reconciler.render import format_value

    return format_value(value)


def _extra_lines(document: Mapping[str, Any], known: tuple[str, ...]) -> list[tuple[str, str]]:
    """(field, text) for every field of a JSON object that the template has no place for.

    Others add fields to the JSON plan (environment, target, drift, ...); they are shown
    as they are rather than dropped.
    """
    from reconciler.page.data import format_detail_value

    return [
        (str(key), format_detail_value(value))
        for key, value in document.items()
        if key not in known and value not in (None, "", [], {}, False)
    ]


def _target_lines(target: Any) -> list[tuple[str, str]]:
    """(label, text) of where the plan applies: database, environment, revision (`Target.as_json`)."""
    from reconciler.page.data import format_detail_value

    if not isinstance(target, Mapping):
        return []
    return [(str(key), format_detail_value(value)) for key, value in target.items() if value not in (None, "")]


def _review_order(action: Mapping[str, Any]) -> tuple[bool, int, str]:
    kinds = ("delete", "update", "create")
    kind = action.get("action")
    return (not action.get("blocked"), kinds.index(kind) if kind in kinds else len(kinds), str(action.get("name")))


@collector_paused()
def render_plan_html(plan: Mapping[str, Any], *, source: str | None = None) -> str:
    """A plan as a page: summary, blocked changes first with their KBs, each field `before -> after`.

    `plan` is the plan's JSON document (`reconciler.render.plan_to_json_data`, or the
    `plan` of a plan file); fields this renderer does not know are shown as they are.
    `source` says where the plan came from (a plan file's path and date).
    """
    from reconciler.page.data import format_detail_value

    actions = []
    for action in sorted(plan.get("actions", []), key=_review_order):
        view = {field: action.get(field) for field in _ACTION_FIELDS}
        for field in ("blocked_reasons", "warnings", "knowledge_bases", "changes"):
            view[field] = list(view[field] or [])
        view["extra"] = _extra_lines(action, _ACTION_FIELDS)
        actions.append(view)
    summary = {"has_changes": bool(actions), "is_blocked": False, "create": 0, "update": 0, "delete": 0, "blocked": 0}
    summary.update(plan.get("summary") or {})
    return _render(
        "plan.html.j2",
        plan={
            "llm_registry_version": plan.get("llm_registry_version", __version__),
            "refusals": list(plan.get("refusals") or []),
            "warnings": list(plan.get("warnings") or []),
            "unmanaged": list(plan.get("unmanaged") or []),
            "unchecked_keys": list(plan.get("unchecked_keys") or []),
        },
        summary=summary,
        target=_target_lines(plan.get("target")),
        actions=actions,
        extra=_extra_lines(plan, _PLAN_FIELDS),
        source=source,
        markers=ACTION_MARKERS,
        value=_plan_value,
        detail=format_detail_value,
    )
