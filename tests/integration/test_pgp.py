"""reconciler.pgp against pgcrypto itself, both ways: what we write, pgp_sym_decrypt reads; what it writes, we read."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from reconciler import pgp
from tests.factories import CANARY_KEY

pytestmark = pytest.mark.db

PASSPHRASE = "pass phrase é"
# Longer than one partial-length chunk, multi-byte characters included.
LONG_TEXT = CANARY_KEY + " é€ " + "x" * 9000

# Options of pgp_sym_encrypt the KB application or the story's admin page may have used
# (pgcrypto's own defaults first). bf and cast5 need OpenSSL's legacy provider, which
# PostgreSQL servers built on OpenSSL 3 do not load, so no database holds such rows.
PGCRYPTO_OPTIONS = [
    "",
    "cipher-algo=aes256, compress-algo=0",
    "cipher-algo=aes192",
    "cipher-algo=3des",
    "compress-algo=1",
    "compress-algo=2, compress-level=9",
    "s2k-mode=0",
    "s2k-mode=1",
    "s2k-mode=3, s2k-count=1000000",
    "s2k-digest-algo=md5",
    "sess-key=1",
    "sess-key=1, s2k-cipher-algo=aes128, cipher-algo=aes256",
    "disable-mdc=1",
    "unicode-mode=1",
    "convert-crlf=1",
]


@pytest.mark.parametrize("cipher", ["aes128", "aes192", "aes256", "3des"])
@pytest.mark.parametrize("plaintext", [CANARY_KEY, LONG_TEXT])
def test_pgp_sym_decrypt_reads_what_we_write(connection: Connection, cipher: str, plaintext: str) -> None:
    message = pgp.encrypt(plaintext, PASSPHRASE, cipher=cipher)
    # The passphrase is a parameter here only because this test plays the KB application.
    decrypted = connection.execute(text("SELECT pgp_sym_decrypt(:m, :p)"), {"m": message, "p": PASSPHRASE}).scalar_one()
    assert decrypted == plaintext


def test_pgp_sym_decrypt_refuses_a_wrong_passphrase(connection: Connection) -> None:
    message = pgp.encrypt(CANARY_KEY, PASSPHRASE)
    with pytest.raises(Exception, match="Wrong key or corrupt data"):
        connection.execute(text("SELECT pgp_sym_decrypt(:m, 'not it')"), {"m": message})


@pytest.mark.parametrize("options", PGCRYPTO_OPTIONS)
@pytest.mark.parametrize("plaintext", [CANARY_KEY, LONG_TEXT])
def test_we_read_what_pgp_sym_encrypt_writes(connection: Connection, options: str, plaintext: str) -> None:
    message = connection.execute(
        text("SELECT pgp_sym_encrypt(:t, :p, :o)"), {"t": plaintext, "p": PASSPHRASE, "o": options}
    ).scalar_one()
    assert pgp.decrypt(bytes(message), PASSPHRASE) == plaintext
    with pytest.raises(pgp.WrongPassphrase):
        pgp.decrypt(bytes(message), "not it")


def test_we_read_pgp_sym_encrypt_bytea_too(connection: Connection) -> None:
    message = connection.execute(
        text("SELECT pgp_sym_encrypt_bytea(convert_to(:t, 'UTF8'), :p)"), {"t": CANARY_KEY, "p": PASSPHRASE}
    ).scalar_one()
    assert pgp.decrypt(bytes(message), PASSPHRASE) == CANARY_KEY
