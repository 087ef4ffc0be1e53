"""The registry page and the plan page as HTML: data-testids, escaping, no key, CSP (no browser)."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import replace
from datetime import datetime, timezone
from html.parser import HTMLParser
from typing import Any

import pytest

from reconciler.audit import StoredAuditEvent
from reconciler.page.data import build_registry_page, endpoint_parts
from reconciler.page.render import content_security_policy, render_plan_html, render_registry_html
from reconciler.render import plan_to_json_data
from reconciler.secrets import key_fingerprint
from reconciler.state import RegistryState
from tests.factories import CANARY_KEY, knowledge_base, stored_model
from tests.unit.test_render import mixed_plan

HOSTILE_NAME = '<img src=x onerror="alert(1)">'
FINGERPRINT = key_fingerprint(CANARY_KEY, "test-passphrase")
WHEN = datetime(2026, 11, 27, 17, 0, 5, tzinfo=timezone.utc)


class _TestIds(HTMLParser):
    """Text content of every element with a data-testid (first occurrence), and every tag with its attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: dict[str, str] = {}
        self.attributes: dict[str, dict[str, str | None]] = {}
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._open: list[tuple[str, str | None]] = []

    def _space(self, tag: str) -> None:
        # block and cell boundaries separate words, as a browser's layout does
        if tag in ("code", "span", "a", "strong", "b"):
            return
        for _, testid in self._open:
            if testid is not None:
                self.text[testid] += " "

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._space(tag)
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        testid = attributes.get("data-testid")
        if testid is not None:
            self.text.setdefault(testid, "")
            self.attributes[testid] = attributes
        if tag not in ("meta", "br", "input", "img", "link"):
            self._open.append((tag, testid))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            opened, _ = self._open.pop()
            if opened == tag:
                break
        self._space(tag)

    def handle_data(self, data: str) -> None:
        for _, testid in self._open:
            if testid is not None:
                self.text[testid] += data


def parse(html: str) -> _TestIds:
    parser = _TestIds()
    parser.feed(html)
    return parser


def detail_of(html: str, name: str) -> _TestIds:
    """The parsed detail section of one model (its testids repeat in every model's detail)."""
    start = html.index(f'data-testid="model-detail-{name}"')
    return parse(html[start : html.index("</section>", start)])


def words(text: str) -> str:
    return " ".join(text.split())


def event(event_id: int, event_type: str, model: str, details: dict[str, Any], run_id: str = "run-1") -> StoredAuditEvent:
    return StoredAuditEvent(event_id, WHEN, run_id, event_type, model, None, "alice", "0123456789abcdef", details)


@pytest.fixture
def registry_html() -> str:
    embed = stored_model("nomic-embed", is_default=True, description="Local <b>embeddings</b>")
    chat = stored_model(
        "gpt-4o-mini", type="generation", provider="openai", model_id="gpt-4o-mini",
        api_endpoint="https://user:hunter2@api.example.com:8443/v1?token=abc", api_key=FINGERPRINT,
        dimensions=None, normalize=None, distance_metric=None, batch_size=None, max_tokens=None,
        context_window=128000, max_output_tokens=4096, temperature=0.7, top_p=1.0,
    )  # fmt: skip
    hostile = stored_model(HOSTILE_NAME, managed_by=None, is_active=False, description="evil\u202eelif\x1b[31m")
    ner = stored_model("gliner", type="ner", model_id="gliner", dimensions=None, normalize=None, distance_metric=None)
    state = RegistryState(
        (chat, ner, embed, hostile),
        (knowledge_base("support-kb", embedding=embed, generation=chat), knowledge_base("legal-kb", embedding=embed)),
    )
    events = [
        event(1, "MODEL_CREATED", "nomic-embed", {"configuration": {"type": "embedding"}}),
        event(2, "MODEL_CONNECTION_TESTED", "nomic-embed", {"outcome": "success", "status": "ok", "latency_ms": 12, "message": "768-dimension vector"}),
        event(3, "MODEL_CONNECTION_TESTED", "gpt-4o-mini", {"outcome": "failure", "status": "authentication_error", "latency_ms": 40, "message": "the provider refused the key"}, "run-2"),
        event(4, "MODEL_UPDATED", "gpt-4o-mini", {"changes": {"temperature": {"before": 0.5, "after": 0.7}, "api_key": "changed"}}, "run-2"),
    ]  # fmt: skip
    page = build_registry_page(state, recent_events=events, model_events=events, database="postgresql://u:***@db/kb", generated_at=WHEN)
    return render_registry_html(page)


def test_the_story_test_ids(registry_html: str) -> None:
    found = parse(registry_html)
    assert "model-list-table" in found.text
    assert "model-type-tabs" in found.text
    for tab in ("all", "embedding", "generation", "ner"):
        assert f"model-type-tab-{tab}" in found.text
    assert words(found.text["model-type-tab-embedding"]) == "Embedding (2)"
    assert words(found.text["model-type-tab-all"]) == "All (4)"
    for name in ("nomic-embed", "gpt-4o-mini", "gliner", HOSTILE_NAME):
        assert f"model-row-{name}" in found.text
    assert found.text["model-status-badge-nomic-embed"] == "Active"
    assert found.text[f"model-status-badge-{HOSTILE_NAME}"] == "Inactive"
    assert found.text["model-default-mark-nomic-embed"] == "Default"
    assert "model-default-mark-gpt-4o-mini" not in found.text


def test_a_row_shows_type_provider_model_id_host_managed_and_kb_count(registry_html: str) -> None:
    found = parse(registry_html)
    assert words(found.text["model-row-gpt-4o-mini"]) == (
        "gpt-4o-mini generation openai gpt-4o-mini api.example.com:8443 Active managed 1 authentication_error 2026-11-27 17:00:05Z"
    )
    assert words(found.text[f"model-row-{HOSTILE_NAME}"]).endswith("Inactive by hand 0 none recorded")
    assert found.attributes["model-row-nomic-embed"]["data-model-type"] == "embedding"
    assert found.attributes["model-row-gpt-4o-mini"]["data-provider"] == "openai"


def test_a_model_used_by_kbs_lists_them_with_the_delete_warning(registry_html: str) -> None:
    detail = detail_of(registry_html, "nomic-embed")
    warning = words(detail.text["kb-dependency-warning"])
    assert warning.startswith("Used by 2 knowledge bases: deleting this model, or changing its provider, model_id,")
    assert warning.endswith("is blocked until they use another model.")
    assert detail.text["dependent-kb-list"].split() == ["legal-kb", "support-kb"]
    chat = detail_of(registry_html, "gpt-4o-mini")
    assert words(chat.text["kb-dependency-warning"]) == (
        "Used by 1 knowledge base: deleting this model is blocked until it uses another model."
    )
    assert chat.text["dependent-kb-list"].split() == ["support-kb"]
    unused = detail_of(registry_html, "gliner")
    assert "kb-dependency-warning" not in unused.text and "dependent-kb-list" not in unused.text
    assert unused.text["no-kb-dependency"] == "No knowledge base uses this model."


def test_detail_shows_parameters_tests_and_events(registry_html: str) -> None:
    detail = words(parse(registry_html).text["model-detail-gpt-4o-mini"])
    assert "768-dimension vector" in parse(registry_html).text["model-detail-nomic-embed"]
    assert "context_window 128000" in detail and "temperature 0.7" in detail
    assert "authentication_error" in detail and "the provider refused the key" in detail
    assert "MODEL_UPDATED" in detail and "temperature: 0.5 -> 0.7" in detail and "api_key: changed" in detail


def test_never_a_key_only_whether_one_is_set(registry_html: str) -> None:
    found = parse(registry_html)
    assert CANARY_KEY not in registry_html and FINGERPRINT not in registry_html
    assert FINGERPRINT[:16] not in registry_html
    assert found.text["model-api-key-gpt-4o-mini"].startswith("set")
    assert found.text["model-api-key-nomic-embed"] == "not set"


def test_endpoint_credentials_and_query_are_not_shown(registry_html: str) -> None:
    assert "hunter2" not in registry_html and "token=abc" not in registry_html
    assert "https://***@api.example.com:8443/v1?token=***" in registry_html
    assert endpoint_parts("https://user:pw@[::1]:11434/x?y=1") == ("https://***@[::1]:11434/x?y=1", "[::1]:11434")
    assert endpoint_parts("http://host:notaport/") == ("http://host:notaport/", None)
    assert endpoint_parts("/no/host") == ("/no/host", None)
    assert endpoint_parts(None) == (None, None)


def test_html_in_names_and_descriptions_is_text(registry_html: str) -> None:
    found = parse(registry_html)
    assert "<img" not in registry_html and "<b>embeddings" not in registry_html
    assert found.text[f"model-link-{HOSTILE_NAME}"] == HOSTILE_NAME
    assert words(found.text["model-detail-nomic-embed"]).count("Local <b>embeddings</b>") == 1
    assert not [tag for tag, _ in found.tags if tag in ("img", "b", "iframe", "link", "object")]
    # the detail link's fragment decodes to the detail's id
    href = found.attributes[f"model-link-{HOSTILE_NAME}"]["href"]
    assert href == "#model-%3Cimg%20src%3Dx%20onerror%3D%22alert%281%29%22%3E"


def test_control_and_bidi_characters_are_made_visible(registry_html: str) -> None:
    assert "\u202e" not in registry_html and "\x1b" not in registry_html
    assert "evil\\u202eelif\\x1b[31m" in registry_html


def test_data_cannot_start_a_workflow_command_when_the_page_is_printed_in_ci() -> None:
    model = stored_model("m", description="ok\n::error file=x::forged\n::add-mask::y")
    html = render_registry_html(build_registry_page(RegistryState((model,)), generated_at=WHEN))
    assert not [line for line in html.splitlines() if line.lstrip().startswith("::")]
    assert "ok\\n::error file=x::forged" in html


def test_no_inline_handlers_styles_or_external_resources(registry_html: str) -> None:
    found = parse(registry_html)
    for tag, attributes in found.tags:
        assert not [name for name in attributes if name.startswith("on") or name == "style"], tag
        assert "src" not in attributes, tag
        assert not (attributes.get("href") or "#").split("#")[0], (tag, attributes)
    assert [tag for tag, _ in found.tags].count("script") == 1
    assert [tag for tag, _ in found.tags].count("style") == 1


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_csp_allows_exactly_the_inline_script_and_style_by_hash(registry_html: str) -> None:
    script = re.search(r"<script>(.*?)</script>", registry_html, re.S).group(1)  # type: ignore[union-attr]
    style = re.search(r"<style>(.*?)</style>", registry_html, re.S).group(1)  # type: ignore[union-attr]
    policy = content_security_policy()
    assert f"script-src {_sha256(script)};" in policy and f"style-src {_sha256(style)};" in policy
    assert policy.startswith("default-src 'none';") and "unsafe" not in policy
    meta = [attrs for tag, attrs in parse(registry_html).tags if tag == "meta" and attrs.get("http-equiv")]
    assert meta == [{"http-equiv": "Content-Security-Policy", "content": policy}]
    assert content_security_policy(header=True) == policy + "; frame-ancestors 'none'"


def test_audit_runs_newest_first_with_actor_and_revision(registry_html: str) -> None:
    found = parse(registry_html)
    runs = [testid for testid in found.text if testid.startswith("audit-run-") and testid != "audit-run-meta"]
    assert runs == ["audit-run-run-2", "audit-run-run-1"]
    run = words(found.text["audit-run-run-1"])
    assert "started 2026-11-27 17:00:05Z by alice from revision 0123456789abcdef · 2 events" in run
    assert "MODEL_CONNECTION_TESTED nomic-embed" in run


def test_an_empty_registry() -> None:
    found = parse(render_registry_html(build_registry_page(RegistryState(), generated_at=WHEN)))
    assert found.text["model-list-empty"] == "No models registered."
    assert "hidden" not in found.attributes["model-list-empty"]
    assert "No audit events recorded yet." in found.text["audit-runs"]


def test_plan_page_blocked_first_with_kbs_and_before_after() -> None:
    html = render_plan_html(plan_to_json_data(mixed_plan()), source="definitions in registry.d")
    found = parse(html)
    assert words(found.text["plan-summary"]).startswith("Plan: 1 to create, 1 to update, 1 to delete, 1 blocked.")
    assert "plan-blocked-callout" in found.text
    actions = [testid for testid in found.text if testid.startswith("plan-action-")]
    assert actions == ["plan-action-used", "plan-action-unused", "plan-action-gpt", "plan-action-fresh"]
    assert found.text["plan-blocked-badge-used"] == "BLOCKED"
    assert found.text["plan-kb-list-used"].split() == ["support-kb"]
    assert words(found.text["plan-changes-gpt"]) == "Field Before -> after parameters.temperature 0.7 -> 0.2"
    assert "parameters.dimensions 768" in words(found.text["plan-changes-fresh"])
    assert "Not managed by llm-registry, left untouched: hand" in words(found.text["plan-unmanaged"])


def test_plan_page_shows_fields_it_does_not_know_and_marks_drift() -> None:
    document = plan_to_json_data(mixed_plan())
    document["environment"] = "prod<script>"
    document["actions"][0]["drift"] = {"fields": ["temperature"]}
    document["actions"][0]["target_note"] = "partial"
    found = parse(render_plan_html(document))
    assert words(found.text["plan-context"]) == "environment prod<script>"
    name = document["actions"][0]["name"]
    assert found.text[f"plan-drift-badge-{name}"] == "drift"
    assert 'drift: changed outside llm-registry: {"fields": ["temperature"]}' == words(found.text[f"plan-drift-{name}"])
    assert "target_note: partial" in words(found.text[f"plan-action-{name}"])


def test_plan_page_without_changes() -> None:
    found = parse(render_plan_html({"summary": {"has_changes": False}, "actions": []}))
    assert words(found.text["plan-summary"]).startswith("No changes.")


def test_a_models_events_show_the_short_revision_with_its_dirty_mark() -> None:
    embed = stored_model("nomic-embed", is_default=True)
    dirty = replace(event(1, "MODEL_CREATED", "nomic-embed", {}), source_revision="0123456789abcdef0123456789abcdef01234567-dirty")
    page = build_registry_page(RegistryState((embed,)), recent_events=[dirty], model_events=[dirty], generated_at=WHEN)
    detail = detail_of(render_registry_html(page), "nomic-embed")
    assert "<code>0123456789ab-dirty</code>" in render_registry_html(page)
    assert "0123456789abc" not in " ".join(detail.text.values())
