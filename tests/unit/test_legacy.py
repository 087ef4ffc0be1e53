"""How `db upgrade` names what is wrong with the admin page's rows: values are data, keys never shown."""

from __future__ import annotations

from reconciler.legacy import Problem, StoryTableRefused, show


def test_values_are_shown_quoted_with_control_characters_escaped() -> None:
    assert show("nomic-embed") == '"nomic-embed"'
    assert show("evil\x1b[31m\nnext") == '"evil\\u001b[31m\\nnext"'
    assert show("modèle") == '"modèle"'
    assert (show(None), show(True), show(0), show(2.5), show(float("nan"))) == ("NULL", "true", "0", "2.5", "NaN")


def test_ciphertext_is_never_shown_not_even_encoded() -> None:
    assert show(b"\xc3\r\x04\x07secret") == "(encrypted)"
    assert show(memoryview(b"\x01")) == "(encrypted)"


def test_the_refusal_lists_every_problem_and_says_nothing_changed() -> None:
    refused = StoryTableRefused(
        [
            Problem(("a", "b"), "2 default embedding models: at most one default per type"),
            Problem((), "column dimensions is text, which llm-registry cannot convert to INTEGER in place; convert it first"),
        ]
    )
    assert refused.message.splitlines() == [
        "the existing llm_models table (made by the story's admin page, it seems) breaks rules llm-registry enforces, "
        "so it was not taken over; nothing was changed:",
        '  - "a", "b": 2 default embedding models: at most one default per type',
        "  - column dimensions is text, which llm-registry cannot convert to INTEGER in place; convert it first",
        "fix these rows (with SQL, or the admin page), then run `llm-registry db upgrade` again",
    ]
    assert refused.exit_code == 1
