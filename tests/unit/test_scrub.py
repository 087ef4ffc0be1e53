"""The scrubber removes a key in every form providers echo it, and leaves other text alone."""

from __future__ import annotations

import base64
import json
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


def test_an_eight_character_key_is_found_in_its_encodings() -> None:
    key = "abcd1234"  # SHORT_SECRET characters: the shortest key whose encoded forms are searched
    basic = "Basic " + base64.b64encode(b"u:" + key.encode()).decode("ascii")
    assert REDACTED in scrub(f"refused {basic}", [key])
    assert basic not in scrub(f"refused {basic}", [key])
    assert scrub(f"refused {key.encode().hex()}.", [key]) == "refused ***."
    assert scrub(f"x{key}y", [key]) == "x***y"
    assert scrub(f"key {key[:3]}...{key[-4:]} refused", [key]) == "key *** refused"


def test_short_keys_have_no_encoded_or_masked_forms() -> None:
    # "a" is the base64 of "k" at offset 0 and "6b" its hex: innocent words, not the key
    assert scrub("a 6b k", ["k"]) == "a 6b ***"
    assert scrub("ranges ab..12 and ab**12", ["ab12"]) == "ranges ab..12 and ab**12"


def test_a_masked_form_needs_two_characters_of_the_key() -> None:
    assert scrub(f"key ****{CANARY_KEY[-2:]} refused", [CANARY_KEY]) == "key *** refused"
    assert scrub(f"key {CANARY_KEY[:1]}...{CANARY_KEY[-1:]} refused", [CANARY_KEY]) == "key *** refused"
    assert scrub(f"key ****{CANARY_KEY[-1:]} refused", [CANARY_KEY]) == f"key ****{CANARY_KEY[-1:]} refused"
    assert scrub(f"key {CANARY_KEY[:1]}... refused", [CANARY_KEY]) == f"key {CANARY_KEY[:1]}... refused"


def test_a_masked_form_showing_one_end_keeps_the_text_around_it() -> None:
    assert scrub(f"key {CANARY_KEY[:10]}... refused", [CANARY_KEY]) == "key *** refused"
    assert scrub(f"key ...{CANARY_KEY[-4:]} refused", [CANARY_KEY]) == "key *** refused"


def test_a_key_holding_mask_characters_is_replaced_once() -> None:
    key = "hunter2..final-key-9"
    assert scrub("key hun****2..final-key-9 refused", [key]) == "key *** refused"


def test_masked_forms_back_to_back_are_each_replaced() -> None:
    text = f"keys {CANARY_KEY[:3]}...{CANARY_KEY[-4:]}****{CANARY_KEY[-4:]} refused"
    assert scrub(text, [CANARY_KEY]) == "keys ****** refused"


@pytest.mark.parametrize("length", [40, 41, 42])  # two, one and no "=" of padding
@pytest.mark.parametrize("urlsafe", [False, True])
def test_a_whole_base64_encoding_is_replaced_padding_included(length: int, urlsafe: bool) -> None:
    key = CANARY_KEY[:length]
    raw = key.encode()
    encoded = (base64.urlsafe_b64encode(raw) if urlsafe else base64.b64encode(raw)).decode("ascii")
    assert scrub(f"token {encoded} refused", [key]) == "token *** refused"


@pytest.mark.parametrize("key", [CANARY_KEY + "é", 'sk-"quoted"-' + CANARY_KEY[10:], CANARY_KEY + "\\"])
def test_a_json_escaped_key_is_replaced_whole(key: str) -> None:
    assert scrub(f'{{"api_key": {json.dumps(key)}}}', [key]) == '{"api_key": "***"}'


@pytest.mark.parametrize("prefix", [b":", b"u:", b"api:"])
@pytest.mark.parametrize("length", [40, 41, 42])
def test_base64_around_the_key_keeps_only_characters_holding_other_bits(prefix: bytes, length: int) -> None:
    key = CANARY_KEY[:length]
    encoded = base64.b64encode(prefix + key.encode()).decode("ascii")
    # a base64 character holds 6 bits: those holding any bit of the prefix stay, as do a
    # last one that mixes in the zero bits before the padding, and the padding itself
    first = -(-len(prefix) * 8 // 6)
    last = (len(prefix) + length) * 8 // 6
    assert scrub(f"Basic {encoded}", [key]) == f"Basic {encoded[:first]}***{encoded[last:]}"


def test_a_masked_form_is_found_among_every_kind_of_mask_character() -> None:
    text = f"key {CANARY_KEY[:4]}••••{CANARY_KEY[-4:]} refused… see **docs**."
    assert scrub(text, [CANARY_KEY]) == "key *** refused… see **docs**."


def test_an_ellipsis_after_a_masked_form_stays_when_the_key_starts_as_it_ends() -> None:
    key = "wxyz" + CANARY_KEY[3:] + "wxyz"
    # the "wxyz" before the second "..." is the end of the masked form, already replaced, not a new start
    assert scrub(f"key {key[:4]}...{key[-4:]}... refused", [key]) == "key ***... refused"


def test_a_masked_form_hiding_a_single_character_is_replaced_whole() -> None:
    assert scrub(f"key {CANARY_KEY[:-1]}* refused", [CANARY_KEY]) == "key *** refused"
    assert scrub(f"key *{CANARY_KEY[1:]} refused", [CANARY_KEY]) == "key *** refused"


@pytest.mark.parametrize(
    "said",
    [
        CANARY_KEY[:-1],  # cut one character short
        CANARY_KEY[:14],  # cut in the middle
        f"key starting {CANARY_KEY[:8]}",  # its first eight characters
        CANARY_KEY[:8] + "x" * (len(CANARY_KEY) - 12) + CANARY_KEY[-4:],  # masked with x, not *
        CANARY_KEY.upper(),
        CANARY_KEY[:17] + "\n" + CANARY_KEY[17:],  # broken across lines
        " ".join([CANARY_KEY[:17], CANARY_KEY[17:]]),  # ... and the lines joined (provider_detail)
    ],
    ids=["cut-short", "cut-mid", "first-8", "x-masked", "upper", "newline", "joined"],
)
def test_no_eight_consecutive_characters_of_the_key_survive(said: str) -> None:
    scrubbed = scrub(f"Incorrect API key provided: {said}. Check it.", [CANARY_KEY])
    assert scrubbed.startswith("Incorrect API key provided: ") and scrubbed.endswith(". Check it.") and REDACTED in scrubbed
    for i in range(len(CANARY_KEY) - 7):
        assert CANARY_KEY[i : i + 8].lower() not in scrubbed.lower()


def test_a_character_that_lower_case_lengthens_does_not_shift_what_is_removed() -> None:
    # "İ".lower() is two characters: a lowered copy of the text would be misaligned.
    scrubbed = scrub(f"İİİİ refused {CANARY_KEY[:12]} end", [CANARY_KEY])
    assert scrubbed == "İİİİ refused *** end"


def test_fragments_at_the_text_and_key_ends_are_removed_and_what_lies_between_is_kept() -> None:
    head, tail = CANARY_KEY[:9], CANARY_KEY[-8:]  # the key's first piece and its very last one
    assert scrub(f"key {head} ... and {tail}", [CANARY_KEY]) == "key *** ... and ***"  # the text ends on a fragment
    assert scrub(f"{tail}", [CANARY_KEY]) == "***"


def test_an_eight_character_key_is_removed_in_any_letter_case() -> None:
    assert scrub("refused: ABCD1234 and abcd1234", ["abcd1234"]) == "refused: *** and ***"
