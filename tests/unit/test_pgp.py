"""reconciler.pgp on its own: round trips, wrong passphrases, damaged and hostile bytes (no database)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import pgp
from tests.factories import CANARY_KEY

PASSPHRASE = "correct horse battery staple"


@pytest.mark.parametrize("cipher", ["aes128", "aes192", "aes256", "3des", "cast5", "bf"])
def test_a_message_opens_with_its_passphrase_only(cipher: str) -> None:
    message = pgp.encrypt(CANARY_KEY, PASSPHRASE, cipher=cipher)
    assert pgp.decrypt(message, PASSPHRASE) == CANARY_KEY
    with pytest.raises(pgp.WrongPassphrase):
        pgp.decrypt(message, PASSPHRASE + "!")
    assert not pgp.opens_with(message, "")


def test_the_message_is_what_pgcrypto_writes_and_leaks_nothing() -> None:
    message = pgp.encrypt(CANARY_KEY, PASSPHRASE)
    # tag 3 (SKESK v4, AES-256, iterated+salted SHA-1 S2K), then tag 18 (SEIPD v1)
    assert message[:6] == bytes([0xC3, 13, 4, 9, 3, 2])
    assert message[15] == 0xD2 and message[17] == 1
    assert CANARY_KEY.encode() not in message and PASSPHRASE.encode() not in message
    # a fresh salt and prefix every time: equal keys give different messages
    assert pgp.encrypt(CANARY_KEY, PASSPHRASE) != message


@given(st.text(max_size=9000), st.text(min_size=1, max_size=40))
@settings(max_examples=40, deadline=None)
def test_any_text_round_trips_through_every_length_encoding(text: str, passphrase: str) -> None:
    text = text.replace("\r\n", "\n")  # text mode reads CRLF as LF, as pgcrypto's convert-crlf does
    assert pgp.decrypt(pgp.encrypt(text, passphrase), passphrase) == text


def test_a_changed_byte_is_refused() -> None:
    message = pgp.encrypt(CANARY_KEY, PASSPHRASE)
    for position in range(len(message)):
        damaged = bytearray(message)
        damaged[position] ^= 0x01
        with pytest.raises(pgp.PgpError) as caught:
            pgp.decrypt(bytes(damaged), PASSPHRASE)
        assert CANARY_KEY not in str(caught.value) and PASSPHRASE not in str(caught.value)


@given(st.binary(max_size=400))
@settings(max_examples=300, deadline=None)
def test_hostile_bytes_are_a_pgp_error_never_a_crash(data: bytes) -> None:
    with pytest.raises(pgp.PgpError):
        pgp.decrypt(data, PASSPHRASE)


def test_truncated_messages_are_refused() -> None:
    message = pgp.encrypt(CANARY_KEY, PASSPHRASE)
    for length in range(len(message)):
        with pytest.raises(pgp.PgpError):
            pgp.decrypt(message[:length], PASSPHRASE)


def test_an_unknown_cipher_is_refused() -> None:
    with pytest.raises(pgp.PgpError, match="unknown cipher"):
        pgp.encrypt(CANARY_KEY, PASSPHRASE, cipher="rot13")
