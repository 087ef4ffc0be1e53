"""OpenPGP symmetric messages, as pgcrypto's `pgp_sym_encrypt` writes and `pgp_sym_decrypt` reads them.

Why in the client: an API key or the passphrase sent to PostgreSQL as a statement
parameter (`pgp_sym_encrypt($1, $2)`) ends up in the server log of any database with
`log_statement = 'mod'`/`'all'` or pgaudit. So the registry makes and reads the
ciphertext here and sends PostgreSQL only bytes that are already encrypted; the KB
application keeps reading the same column with `pgp_sym_decrypt(api_key, passphrase)`.

What `encrypt` writes (RFC 4880), matching what `pgp_sym_encrypt(data, psw,
'cipher-algo=aes256, compress-algo=0')` writes:

* a Symmetric-Key Encrypted Session Key packet (tag 3, version 4) with an iterated and
  salted S2K (SHA-1, a fresh 8-byte salt per message), no encrypted session key: the
  S2K output is the message key (pgcrypto's `sess-key=0`);
* a Symmetrically Encrypted Integrity Protected Data packet (tag 18, version 1): a
  random block prefix, a literal data packet (format `t`, no file name, date 0, so
  `pgp_sym_decrypt` accepts it as text) and a Modification Detection Code packet
  (tag 19, SHA-1), all in OpenPGP CFB mode with a zero IV. No compression: compressing
  before encrypting leaks information through length.

`decrypt` reads everything pgcrypto can write with any of its options:
`cipher-algo` (aes128/192/256, and 3des/cast5/bf where the installed `cryptography`
still offers them), `compress-algo` 0/1/2 (none, ZIP, ZLIB), `s2k-mode` 0/1/3,
`s2k-digest-algo` md5/sha1 (and the SHA-2 family), `sess-key=1` (an encrypted session
key, possibly with its own `s2k-cipher-algo`), `disable-mdc=1` (the old packet 9 with
CFB resynchronisation), `unicode-mode=1`, and old-format or partial-length packets.

Why a small module and not an OpenPGP library: PGPy (last release 2022) imports cipher
classes that `cryptography` has since moved or removed and warns on every import;
pysequoia and the GnuPG wrappers need native builds or a `gpg` binary. What pgcrypto
needs is two packet types and one mode, built here on `cryptography`'s AES (ECB only,
the one primitive that is not moving; OpenPGP's CFB variant is written out below) and
`hashlib`, and checked against pgcrypto itself by tests/integration/test_pgp.py.

Errors (`PgpError`, `WrongPassphrase`) say what is wrong with the message, never
anything about its content or the passphrase.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Callable

# OpenPGP symmetric algorithm ids (RFC 4880 9.2) -> (name, key bytes, block bytes)
_CIPHERS: dict[int, tuple[str, int, int]] = {
    2: ("3des", 24, 8),
    3: ("cast5", 16, 8),
    4: ("bf", 16, 8),
    7: ("aes128", 16, 16),
    8: ("aes192", 24, 16),
    9: ("aes256", 32, 16),
}
CIPHER_IDS: dict[str, int] = {name: algo for algo, (name, _k, _b) in _CIPHERS.items()}

# OpenPGP hash algorithm ids (RFC 4880 9.4) -> hashlib name
_HASHES: dict[int, str] = {1: "md5", 2: "sha1", 3: "ripemd160", 8: "sha256", 9: "sha384", 10: "sha512", 11: "sha224"}

# Packet tags
_TAG_SKESK = 3
_TAG_COMPRESSED = 8
_TAG_SED = 9
_TAG_LITERAL = 11
_TAG_SEIPD = 18
_TAG_MDC = 19
_TAG_MARKER = 10

DEFAULT_CIPHER = "aes256"
# S2K iteration count byte: (16 + (c & 15)) << ((c >> 4) + 6). 0x60 -> 65,536 bytes hashed,
# the lowest of the range pgcrypto itself picks from (65,536..253,952).
DEFAULT_S2K_COUNT_BYTE = 0x60

_MAX_DECOMPRESSED = 1 << 20  # an API key is short; refuse a "zip bomb" in a hand-made row


class PgpError(ValueError):
    """The bytes are not a symmetric OpenPGP message this module can read, or are damaged."""


class WrongPassphrase(PgpError):
    """The message does not open with this passphrase (or its first block is damaged)."""


# ----------------------------------------------------------------------------- primitives


def _block_encryptor(cipher: str, key: bytes) -> Any:
    """A raw block encryptor (ECB) for `cipher`: OpenPGP's CFB is built on it below."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    if cipher.startswith("aes"):
        algorithm: Any = algorithms.AES(key)
    else:
        algorithm = _legacy_algorithm(cipher, key)
    return Cipher(algorithm, modes.ECB()).encryptor()


_LEGACY_NAMES = {"3des": "TripleDES", "cast5": "CAST5", "bf": "Blowfish"}


def _legacy_algorithm(cipher: str, key: bytes) -> Any:
    """3DES, CAST5 or Blowfish from `cryptography`'s decrepit module, where it still has them."""
    try:
        from cryptography.hazmat.decrepit.ciphers import algorithms as decrepit
    except ImportError:  # cryptography < 43
        from cryptography.hazmat.primitives.ciphers import algorithms as decrepit  # type: ignore[no-redef]
    import warnings

    with warnings.catch_warnings():
        # cryptography < 43 still has them in the main module, deprecated: reading them is the point.
        warnings.simplefilter("ignore")
        factory: Callable[[bytes], Any] | None = getattr(decrepit, _LEGACY_NAMES[cipher], None)
    if factory is None:
        raise PgpError(f"cipher {cipher} is not available in the installed cryptography package")
    return factory(key)


def _cfb_encrypt(cipher: str, key: bytes, iv: bytes, data: bytes) -> bytes:
    """CFB with full-block feedback: C_i = P_i XOR E(C_{i-1}), C_{-1} = iv."""
    block = len(iv)
    encrypt = _block_encryptor(cipher, key).update
    out = bytearray()
    previous = iv
    for start in range(0, len(data), block):
        chunk = data[start : start + block]
        stream = encrypt(previous)
        previous = bytes(a ^ b for a, b in zip(chunk, stream))
        out += previous
    return bytes(out)


def _cfb_decrypt(cipher: str, key: bytes, iv: bytes, data: bytes) -> bytes:
    """Inverse of `_cfb_encrypt`; the keystream of every block in one call (it needs only ciphertext)."""
    if not data:
        return b""
    block = len(iv)
    feedback = iv + data[: (len(data) - 1) // block * block]
    stream = _block_encryptor(cipher, key).update(feedback)
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream[: len(data)], "big")).to_bytes(len(data), "big")


def _s2k_count(count_byte: int) -> int:
    return (16 + (count_byte & 15)) << ((count_byte >> 4) + 6)


def _s2k(passphrase: bytes, key_size: int, hash_algo: int, salt: bytes | None, count: int | None) -> bytes:
    """RFC 4880 3.7.1: simple (no salt), salted, or iterated and salted string-to-key."""
    name = _HASHES.get(hash_algo)
    if name is None:
        raise PgpError(f"unsupported S2K hash algorithm {hash_algo}")
    data = (salt or b"") + passphrase
    if count is not None and count > len(data):
        whole, rest = divmod(count, len(data))
        data = data * whole + data[:rest]
    out = b""
    preload = 0
    while len(out) < key_size:
        try:
            digest = hashlib.new(name)
        except ValueError:
            raise PgpError(f"S2K hash {name} is not available here") from None
        digest.update(b"\0" * preload + data)
        out += digest.digest()
        preload += 1
    return out[:key_size]


def _header(tag: int, length: int) -> bytes:
    """A new-format packet header with a definite length."""
    if length < 192:
        return bytes([0xC0 | tag, length])
    if length < 8384:
        length -= 192
        return bytes([0xC0 | tag, (length >> 8) + 192, length & 0xFF])
    return bytes([0xC0 | tag, 0xFF]) + struct.pack(">I", length)


# ----------------------------------------------------------------------------- encrypt


def encrypt(plaintext: str, passphrase: str, *, cipher: str = DEFAULT_CIPHER, s2k_count_byte: int = DEFAULT_S2K_COUNT_BYTE) -> bytes:
    """A message `pgp_sym_decrypt(message, passphrase)` turns back into `plaintext` (see the module docstring)."""
    algo = CIPHER_IDS.get(cipher)
    if algo is None:
        raise PgpError(f"unknown cipher {cipher!r}")
    _name, key_size, block = _CIPHERS[algo]
    salt = os.urandom(8)
    key = _s2k(passphrase.encode("utf-8"), key_size, 2, salt, _s2k_count(s2k_count_byte))
    skesk = bytes([4, algo, 3, 2]) + salt + bytes([s2k_count_byte])

    data = plaintext.encode("utf-8")
    literal_body = b"t\x00\x00\x00\x00\x00" + data  # format, empty file name, date 0
    prefix = os.urandom(block)
    prefix += prefix[-2:]
    inner = prefix + _header(_TAG_LITERAL, len(literal_body)) + literal_body + b"\xd3\x14"
    inner += hashlib.sha1(inner).digest()
    body = b"\x01" + _cfb_encrypt(cipher, key, b"\0" * block, inner)
    return _header(_TAG_SKESK, len(skesk)) + skesk + _header(_TAG_SEIPD, len(body)) + body


# ----------------------------------------------------------------------------- decrypt


@dataclass(frozen=True)
class _Packet:
    tag: int
    body: bytes


def _packets(data: bytes) -> list[_Packet]:
    """Split a packet sequence (old or new format headers, partial lengths joined)."""
    packets = []
    pos = 0
    end = len(data)
    while pos < end:
        first = data[pos]
        pos += 1
        if not first & 0x80:
            raise PgpError("not an OpenPGP message (bad packet header)")
        if first & 0x40:  # new format
            tag = first & 0x3F
            body = bytearray()
            while True:
                if pos >= end:
                    raise PgpError("truncated OpenPGP packet")
                octet = data[pos]
                if octet < 192:
                    length, pos = octet, pos + 1
                elif octet < 224:
                    if pos + 1 >= end:
                        raise PgpError("truncated OpenPGP packet")
                    length, pos = ((octet - 192) << 8) + data[pos + 1] + 192, pos + 2
                elif octet == 255:
                    if pos + 5 > end:
                        raise PgpError("truncated OpenPGP packet")
                    length, pos = struct.unpack(">I", data[pos + 1 : pos + 5])[0], pos + 5
                else:  # partial body length: a chunk, then another length
                    chunk = 1 << (octet & 0x1F)
                    if pos + 1 + chunk > end:
                        raise PgpError("truncated OpenPGP packet")
                    body += data[pos + 1 : pos + 1 + chunk]
                    pos += 1 + chunk
                    continue
                if pos + length > end:
                    raise PgpError("truncated OpenPGP packet")
                body += data[pos : pos + length]
                pos += length
                break
            packets.append(_Packet(tag, bytes(body)))
        else:  # old format
            tag = (first >> 2) & 0x0F
            kind = first & 3
            if kind == 3:
                length = end - pos
            else:
                size = (1, 2, 4)[kind]
                if pos + size > end:
                    raise PgpError("truncated OpenPGP packet")
                length = int.from_bytes(data[pos : pos + size], "big")
                pos += size
            if pos + length > end:
                raise PgpError("truncated OpenPGP packet")
            packets.append(_Packet(tag, data[pos : pos + length]))
            pos += length
    return packets


def _message_key(skesk: bytes, passphrase: bytes) -> tuple[str, bytes]:
    """(cipher name, key) of the data packet, from a version-4 SKESK body."""
    if len(skesk) < 4 or skesk[0] != 4:
        raise PgpError("unsupported symmetric-key packet version")
    algo = skesk[1]
    if algo not in _CIPHERS:
        raise PgpError(f"unsupported cipher algorithm {algo}")
    cipher, key_size, block = _CIPHERS[algo]
    mode, hash_algo = skesk[2], skesk[3]
    pos = 4
    salt: bytes | None = None
    count: int | None = None
    if mode in (1, 3):
        salt = skesk[pos : pos + 8]
        if len(salt) != 8:
            raise PgpError("truncated S2K specifier")
        pos += 8
    if mode == 3:
        if pos >= len(skesk):
            raise PgpError("truncated S2K specifier")
        count = _s2k_count(skesk[pos])
        pos += 1
    elif mode not in (0, 1):
        raise PgpError(f"unsupported S2K mode {mode}")
    key = _s2k(passphrase, key_size, hash_algo, salt, count)
    encrypted_session_key = skesk[pos:]
    if not encrypted_session_key:
        return cipher, key
    # sess-key=1: the S2K key encrypts (algorithm, session key) in CFB with a zero IV.
    session = _cfb_decrypt(cipher, key, b"\0" * block, encrypted_session_key)
    inner_algo = session[0]
    if inner_algo not in _CIPHERS or len(session) - 1 != _CIPHERS[inner_algo][1]:
        raise WrongPassphrase("the message does not open with this passphrase")
    return _CIPHERS[inner_algo][0], session[1:]


def _open_seipd(cipher: str, key: bytes, body: bytes) -> bytes:
    """Decrypt a tag-18 body and check its quick-check bytes and MDC; the inner packets."""
    if not body or body[0] != 1:
        raise PgpError("unsupported integrity-protected packet version")
    block = _block_size(cipher)
    plain = _cfb_decrypt(cipher, key, b"\0" * block, body[1:])
    if len(plain) < block + 2 + 22:
        raise PgpError("integrity-protected packet too short")
    if plain[block - 2 : block] != plain[block : block + 2]:
        raise WrongPassphrase("the message does not open with this passphrase")
    if plain[-22:-20] != b"\xd3\x14" or hashlib.sha1(plain[:-20]).digest() != plain[-20:]:
        raise PgpError("the message fails its integrity check (damaged or tampered with)")
    return plain[block + 2 : -22]


def _open_sed(cipher: str, key: bytes, body: bytes) -> bytes:
    """Decrypt a tag-9 body (no MDC): OpenPGP CFB with the resynchronisation step."""
    block = _block_size(cipher)
    if len(body) < block + 2:
        raise PgpError("encrypted packet too short")
    prefix = _cfb_decrypt(cipher, key, b"\0" * block, body[: block + 2])
    if prefix[block - 2 : block] != prefix[block : block + 2]:
        raise WrongPassphrase("the message does not open with this passphrase")
    return _cfb_decrypt(cipher, key, body[2 : block + 2], body[block + 2 :])


def _block_size(cipher: str) -> int:
    return _CIPHERS[CIPHER_IDS[cipher]][2]


def _literal(packets: list[_Packet], depth: int = 0) -> bytes:
    """The data of the literal packet, through at most one level of compression."""
    for packet in packets:
        if packet.tag == _TAG_MARKER:
            continue
        if packet.tag == _TAG_LITERAL:
            body = packet.body
            if len(body) < 6:
                raise PgpError("literal data packet too short")
            name_length = body[1]
            data = body[2 + name_length + 4 :]
            if body[0:1] in (b"t", b"u"):
                # pgcrypto's convert-crlf=1 writes CRLF; an API key has no line breaks either way.
                data = data.replace(b"\r\n", b"\n")
            return data
        if packet.tag == _TAG_COMPRESSED and depth == 0:
            return _literal(_packets(_decompress(packet.body)), depth + 1)
        raise PgpError(f"unexpected OpenPGP packet (tag {packet.tag}) in the message")
    raise PgpError("the message holds no literal data")


def _decompress(body: bytes) -> bytes:
    if not body:
        raise PgpError("empty compressed packet")
    algo = body[0]
    if algo == 0:
        return body[1:]
    if algo not in (1, 2):
        raise PgpError(f"unsupported compression algorithm {algo}")
    inflater = zlib.decompressobj(-15 if algo == 1 else 15)
    try:
        out = inflater.decompress(body[1:], _MAX_DECOMPRESSED)
    except zlib.error:
        raise PgpError("the compressed data is damaged") from None
    if inflater.unconsumed_tail:
        raise PgpError("the compressed data is too large for an API key")
    return out


def decrypt(message: bytes, passphrase: str) -> str:
    """The text of a symmetric OpenPGP message (pgcrypto's or `encrypt`'s), as `pgp_sym_decrypt` returns it.

    Raises WrongPassphrase when the passphrase does not open it, PgpError when the
    bytes are not such a message or fail the integrity check.
    """
    packets = [p for p in _packets(bytes(message)) if p.tag != _TAG_MARKER]
    if len(packets) != 2 or packets[0].tag != _TAG_SKESK or packets[1].tag not in (_TAG_SEIPD, _TAG_SED):
        raise PgpError("not a symmetric OpenPGP message (expected a passphrase packet and one data packet)")
    cipher, key = _message_key(packets[0].body, passphrase.encode("utf-8"))
    if packets[1].tag == _TAG_SEIPD:
        inner = _open_seipd(cipher, key, packets[1].body)
    else:
        inner = _open_sed(cipher, key, packets[1].body)
    data = _literal(_packets(inner))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise PgpError("the decrypted data is not UTF-8 text") from None


def opens_with(message: bytes, passphrase: str) -> bool:
    """True when `message` decrypts under `passphrase` (and passes its integrity check)."""
    try:
        decrypt(message, passphrase)
    except PgpError:
        return False
    return True
