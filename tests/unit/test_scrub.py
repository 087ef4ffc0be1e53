"""The scrubber removes a key in every form providers echo it, and leaves other text alone."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.scrub import REDACTED, scrub
from tests.factories import CANARY_KEY
from tests.fakes.provider import ECHO_FORMS, echoed

KEYS = [CANARY_KEY, "sk-proj-" + "Ab3_" * 12 + "wxyz", "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "k" * 8 + "/+=?&é"]


@pytest.mark.parametrize("form", sorted(ECHO_FORMS))
@pytest.mark.parametrize("key", KEYS)
def test_every_echoed_form_is_removed(key: str, form: str) -> None:
    said = f"Incorrect API key provided: {echoed(key, form)}. You can find your key at https://example.test/keys."
    scrubbed = scrub(said, [key])
    assert echoed(key, form) not in scrubbed
    assert REDACTED in scrubbed
    assert scrubbed.startswith("Incorrect API key provided: ")
    assert scrubbed.endswith("You can find your key at https://example.test/keys.")


_KEY_ALPHABET = string.ascii_letters + string.digits + "-_"


@settings(max_examples=200, deadline=None)
@given(
    key=st.text(alphabet=_KEY_ALPHABET, min_size=12, max_size=80),
    form=st.sampled_from(sorted(ECHO_FORMS)),
    before=st.text(alphabet=string.ascii_letters + " :=", max_size=20),
    after=st.text(alphabet=" .,;", max_size=5),
)
def test_no_form_survives_in_any_context(key: str, form: str, before: str, after: str) -> None:
    text = f"{before} {echoed(key, form)}{after}"
    assert echoed(key, form) not in scrub(text, [key])


def test_text_without_the_key_is_left_alone() -> None:
    text = "Loading... done. 3 * 4 = 12; see https://example.test/a...b and ****"
    assert scrub(text, [CANARY_KEY]) == text
    assert scrub("check the key k: k", ["k"]) == "check the key ***: ***"


def test_masked_forms_of_another_key_are_left_alone() -> None:
    other = "sk-other-0000000000000000000000000000zzzz"
    text = f"key {other[:8]}****{other[-4:]} refused"
    assert scrub(text, [CANARY_KEY]) == text
