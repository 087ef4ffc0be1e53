"""reconciler.pgp on its own: round trips, wrong passphrases, damaged and hostile bytes (no database)."""

from __future__ import annotations

import hashlib
import zlib
from typing import Callable

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import pgp
from tests.factories import CANARY_KEY

PASSPHRASE = "correct horse battery staple"


def _packet(tag: int, body: bytes) -> bytes:
    return bytes([0xC0 | tag, 0xFF]) + len(body).to_bytes(4, "big") + body


def _literal(data: bytes) -> bytes:
    return _packet(11, b"t\x00" + bytes(4) + data)


def _old_packet(tag: int, body: bytes, kind: int) -> bytes:
    length = b"" if kind == 3 else len(body).to_bytes((1, 2, 4)[kind], "big")  # kind 3: to the end of the message
    return bytes([0x80 | tag << 2 | kind]) + length + body


def _simple_s2k_key(passphrase: str, hash_name: str = "sha1") -> bytes:
    """The AES-256 key of a simple S2K (RFC 4880 3.7.1.1), two hash contexts, by hand."""
    secret = passphrase.encode()
    return (hashlib.new(hash_name, secret).digest() + hashlib.new(hash_name, b"\0" + secret).digest())[:32]


def _cfb_encrypt(key: bytes, plain: bytes) -> bytes:
    """AES CFB from a zero IV, by hand (cryptography deprecates its own CFB)."""
    block = Cipher(algorithms.AES(key), modes.ECB()).encryptor().update
    sealed, previous = b"", bytes(16)
    for start in range(0, len(plain), 16):
        previous = bytes(a ^ b for a, b in zip(plain[start : start + 16], block(previous)))
        sealed += previous
    return sealed


def _message(inner: bytes, passphrase: str = PASSPHRASE, s2k_hash: tuple[int, str] = (2, "sha1")) -> bytes:
    # Any inner packets sealed as pgcrypto would (simple S2K, AES-256, SEIPD), built without
    # reconciler.pgp so that hostile contents reach its parser past the integrity check.
    hash_id, hash_name = s2k_hash
    plain = bytes(18) + inner + b"\xd3\x14"  # a zero block prefix, its last two octets repeated
    plain += hashlib.sha1(plain).digest()
    sealed = _cfb_encrypt(_simple_s2k_key(passphrase, hash_name), plain)
    return _packet(3, bytes([4, 9, 0, hash_id])) + _packet(18, b"\x01" + sealed)


@pytest.mark.parametrize("cipher", ["aes128", "aes192", "aes256", "3des", "cast5", "bf"])
def test_a_message_opens_with_its_passphrase_only(cipher: str) -> None:
    message = pgp.encrypt(CANARY_KEY, PASSPHRASE, cipher=cipher)
    assert pgp.decrypt(message, PASSPHRASE) == CANARY_KEY
    with pytest.raises(pgp.WrongPassphrase):
        pgp.decrypt(message, PASSPHRASE + "!")
    assert pgp.opens_with(message, PASSPHRASE) is True
    assert not pgp.opens_with(message, "")


def test_the_message_is_what_pgcrypto_writes_and_leaks_nothing() -> None:
    message = pgp.encrypt(CANARY_KEY, PASSPHRASE)
    # tag 3 (SKESK v4, AES-256, iterated+salted SHA-1 S2K), then tag 18 (SEIPD v1)
    assert message[:6] == bytes([0xC3, 13, 4, 9, 3, 2])
    assert message[14] == 0x60  # S2K count 65,536: the lowest of the range pgcrypto picks from
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
    # encrypt's one-octet length headers, and five-octet ones cut inside their length
    for message in (pgp.encrypt(CANARY_KEY, PASSPHRASE), _message(_literal(CANARY_KEY.encode()))):
        for length in range(len(message)):
            with pytest.raises(pgp.PgpError):
                pgp.decrypt(message[:length], PASSPHRASE)


@pytest.mark.parametrize(
    ("cipher", "algorithm_id"), [("3des", 2), ("cast5", 3), ("bf", 4), ("aes128", 7), ("aes192", 8), ("aes256", 9)]
)
def test_the_message_names_its_cipher_by_the_openpgp_id(cipher: str, algorithm_id: int) -> None:
    assert pgp.encrypt(CANARY_KEY, PASSPHRASE, cipher=cipher)[3] == algorithm_id  # RFC 4880 9.2: what pgcrypto reads


def test_packet_lengths_at_the_edges_of_each_header_form_round_trip() -> None:
    # the literal packet holds the text and 6 octets; the data packet that, the literal's header and 41 octets
    for length in [*range(135, 200), *range(8320, 8390)]:
        text = "k" * length
        assert pgp.decrypt(pgp.encrypt(text, PASSPHRASE), PASSPHRASE) == text


def test_an_unknown_cipher_is_refused() -> None:
    with pytest.raises(pgp.PgpError, match="unknown cipher"):
        pgp.encrypt(CANARY_KEY, PASSPHRASE, cipher="rot13")


def test_lengths_take_the_shortest_header_form() -> None:
    # one octet below 192, two up to 8383, five above (RFC 4880 4.2.2)
    medium = pgp.encrypt("x" * 1000, PASSPHRASE)
    assert medium[15] == 0xD2 and 192 <= medium[16] < 224 and medium[18] == 1
    large = pgp.encrypt("x" * 9000, PASSPHRASE)
    assert large[15:17] == bytes([0xD2, 0xFF]) and large[21] == 1


@pytest.mark.parametrize(
    ("position", "value", "error"),
    [(3, 99, "unsupported cipher algorithm 99"), (5, 4, "unsupported S2K hash algorithm 4")],
)
def test_an_unknown_algorithm_in_the_message_is_a_pgp_error(position: int, value: int, error: str) -> None:
    message = bytearray(pgp.encrypt(CANARY_KEY, PASSPHRASE))
    message[position] = value  # the SKESK's cipher (3) or S2K hash (5) id
    with pytest.raises(pgp.PgpError, match=error):
        pgp.decrypt(bytes(message), PASSPHRASE)


def test_a_legacy_cipher_the_installed_cryptography_lacks_is_a_pgp_error(monkeypatch: pytest.MonkeyPatch) -> None:
    message = pgp.encrypt(CANARY_KEY, PASSPHRASE, cipher="bf")
    monkeypatch.setitem(pgp._LEGACY_NAMES, "bf", "NoSuchCipher")  # as after cryptography drops Blowfish
    with pytest.raises(pgp.PgpError, match="cipher bf is not available"):
        pgp.decrypt(message, PASSPHRASE)
    assert not pgp.opens_with(message, PASSPHRASE)


def test_a_data_packet_too_short_to_hold_a_message_is_called_so() -> None:
    message = pgp.encrypt(CANARY_KEY, PASSPHRASE)
    skesk, seipd_body = message[:15], message[17:]  # both headers one-octet lengths here
    # version octet, block prefix and its two repeated octets, then less than the 22 of the MDC packet
    short_seipd = seipd_body[: 1 + 16 + 2 + 21]
    with pytest.raises(pgp.PgpError, match="integrity-protected packet too short"):
        pgp.decrypt(skesk + bytes([0xC0 | 18, len(short_seipd)]) + short_seipd, PASSPHRASE)
    # the old packet without integrity protection (tag 9), shorter than its block prefix
    with pytest.raises(pgp.PgpError, match="encrypted packet too short"):
        pgp.decrypt(skesk + bytes([0xC0 | 9, 10]) + seipd_body[1:11], PASSPHRASE)


def test_a_hand_sealed_message_opens() -> None:
    assert pgp.decrypt(_message(_literal(CANARY_KEY.encode())), PASSPHRASE) == CANARY_KEY
    assert pgp.decrypt(_message(_packet(10, b"PGP") + _literal(b"x")), PASSPHRASE) == "x"  # a marker packet is skipped


@pytest.mark.parametrize("inner", [_packet(10, b"PGP"), b""], ids=["marker-only", "empty"])
def test_a_message_without_literal_data_is_a_pgp_error(inner: bytes) -> None:
    with pytest.raises(pgp.PgpError, match="holds no literal data"):
        pgp.decrypt(_message(inner), PASSPHRASE)



def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-15)  # raw deflate: OpenPGP's ZIP
    return compressor.compress(data) + compressor.flush()


def test_an_empty_message_after_the_headers_opens_as_empty_text() -> None:
    assert pgp.decrypt(_message(_packet(11, b"t\x00" + bytes(4))), PASSPHRASE) == ""


@pytest.mark.parametrize(
    "compressed",
    [b"\x00" + _literal(CANARY_KEY.encode()), b"\x01" + _deflate(_literal(CANARY_KEY.encode())),
     b"\x02" + zlib.compress(_literal(CANARY_KEY.encode()))],
    ids=["uncompressed", "zip", "zlib"],
)
def test_a_compressed_literal_opens(compressed: bytes) -> None:
    assert pgp.decrypt(_message(_packet(8, compressed)), PASSPHRASE) == CANARY_KEY


@pytest.mark.parametrize(
    ("inner", "error"),
    [
        (_packet(8, b""), "empty compressed packet"),
        (_old_packet(8, b"", 0), "empty compressed packet"),  # its length octet the last of the message
        (_packet(8, b"\x03BZh91AY&SY"), "unsupported compression algorithm 3"),
        (_packet(8, b"\x01not deflate at all"), "the compressed data is damaged"),
        # a megabyte of text: its literal packet's header puts it just over the limit
        (_packet(8, b"\x02" + zlib.compress(_literal(bytes(1 << 20)))), "too large for an API key"),
        (_packet(8, b"\x00" + _packet(8, b"\x00" + _literal(b"x"))), r"unexpected OpenPGP packet \(tag 8\)"),
        (_packet(2, b"a signature"), r"unexpected OpenPGP packet \(tag 2\)"),
        (_packet(11, b"t\x00\x00\x00\x00"), "literal data packet too short"),
    ],
    ids=["empty", "empty-old-format", "bzip2", "damaged", "bomb", "nested", "signature", "short-literal"],
)
def test_hostile_inner_packets_are_pgp_errors(inner: bytes, error: str) -> None:
    with pytest.raises(pgp.PgpError, match=error):
        pgp.decrypt(_message(inner), PASSPHRASE)


@pytest.mark.parametrize(
    ("literal_format", "expected"), [(b"t", "a\nb"), (b"u", "a\nb"), (b"b", "a\r\nb")]
)
def test_text_literals_read_crlf_as_lf_and_binary_ones_keep_it(literal_format: bytes, expected: str) -> None:
    literal = _packet(11, literal_format + bytes([7]) + b"key.txt" + bytes(4) + b"a\r\nb")  # with a file name
    assert pgp.decrypt(_message(literal), PASSPHRASE) == expected


@pytest.mark.parametrize(
    "s2k_hash", [(1, "md5"), (2, "sha1"), (8, "sha256"), (9, "sha384"), (10, "sha512"), (11, "sha224")]
)
def test_every_s2k_hash_of_the_sha_family_and_md5_opens(s2k_hash: tuple[int, str]) -> None:
    # pgcrypto writes md5 or sha1; GnuPG (an admin page may use it) writes the SHA-2 family
    assert pgp.decrypt(_message(_literal(CANARY_KEY.encode()), s2k_hash=s2k_hash), PASSPHRASE) == CANARY_KEY



@pytest.mark.parametrize(
    ("skesk", "error"),
    [
        (bytes([4, 9, 3, 2]) + bytes(8), "truncated S2K specifier"),  # iterated, no count octet
        (bytes([4, 9, 1, 2]) + bytes(5), "truncated S2K specifier"),  # salted, a short salt
        (bytes([4, 9, 2, 2]), "unsupported S2K mode 2"),
        (bytes([5, 9, 3, 2]) + bytes(9), "unsupported symmetric-key packet version"),
        (bytes([4, 9, 0]), "unsupported symmetric-key packet version"),
    ],
    ids=["no-count", "short-salt", "mode-2", "version-5", "three-octets"],
)
def test_a_damaged_passphrase_packet_is_a_pgp_error(skesk: bytes, error: str) -> None:
    with pytest.raises(pgp.PgpError, match=error):
        pgp.decrypt(_packet(3, skesk) + _packet(18, b"\x01" + bytes(64)), PASSPHRASE)


@pytest.mark.parametrize("kind", [0, 1, 2, 3])
def test_old_format_packets_open(kind: int) -> None:
    # old-format headers hold tags below 16 only: here the literal data packet
    literal = _old_packet(11, b"t\x00" + bytes(4) + CANARY_KEY.encode(), kind)
    assert pgp.decrypt(_message(literal), PASSPHRASE) == CANARY_KEY


def test_partial_lengths_of_every_chunk_size_open() -> None:
    text = "k" * 600
    body = b"t\x00" + bytes(4) + text.encode()
    # the first chunk at least 512 octets (RFC 4880 4.2.2.4), then chunks of 1 and 2, then a definite length
    literal = bytes([0xC0 | 11, 0xE9]) + body[:512] + b"\xe0" + body[512:513] + b"\xe1" + body[513:515]
    literal += bytes([len(body) - 515]) + body[515:]
    assert pgp.decrypt(_message(literal), PASSPHRASE) == text


@pytest.mark.parametrize(
    "header",
    [
        lambda length: bytes([0x80 | 11 << 2 | 0, length]),
        lambda length: bytes([0x80 | 11 << 2 | 1]) + length.to_bytes(2, "big"),
        lambda length: bytes([0x80 | 11 << 2 | 2]) + length.to_bytes(4, "big"),
        lambda length: bytes([0xC0 | 11, 0xFF]) + length.to_bytes(4, "big"),
        lambda length: bytes([0xC0 | 11, 0xE9]),  # a partial length: a chunk of 512 octets, then more
    ],
    ids=["old-1", "old-2", "old-4", "new-5", "new-partial"],
)
def test_a_packet_claiming_more_than_the_message_holds_is_refused(header: Callable[[int], bytes]) -> None:
    body = b"t\x00" + bytes(4) + CANARY_KEY.encode()
    with pytest.raises(pgp.PgpError, match="truncated OpenPGP packet"):
        pgp.decrypt(_message(header(len(body) + 1) + body), PASSPHRASE)


@pytest.mark.parametrize("first", [0x00, 0x3F, 0x7F], ids=["zero", "old-format-bits", "new-format-bits"])
def test_a_message_that_does_not_start_with_a_packet_header_is_called_so(first: int) -> None:
    # RFC 4880 4.2: the first octet of every packet has its high bit set
    message = bytes([first]) + pgp.encrypt(CANARY_KEY, PASSPHRASE)[1:]
    with pytest.raises(pgp.PgpError, match=r"^not an OpenPGP message \(bad packet header\)$"):
        pgp.decrypt(message, PASSPHRASE)


@pytest.mark.parametrize(
    ("length", "error"),
    [(17, "encrypted packet too short"), (18, "the message holds no literal data")],
    ids=["block-plus-one", "prefix-only"],
)
def test_a_packet_without_integrity_protection_needs_its_whole_block_prefix(length: int, error: str) -> None:
    # Tag 9 (no MDC): a 16-octet block prefix and its last two octets repeated come first;
    # one octet less is too short, the prefix alone opens and holds nothing.
    prefix = _cfb_encrypt(_simple_s2k_key(PASSPHRASE), bytes(18))[:length]
    with pytest.raises(pgp.PgpError, match=f"^{error}$"):
        pgp.decrypt(_packet(3, bytes([4, 9, 0, 2])) + _packet(9, prefix), PASSPHRASE)
