"""The pure half of reconciler.secrets: references, passphrase, fingerprints (no database)."""

from __future__ import annotations

import pytest

from reconciler import secrets
from reconciler.errors import RegistryError
from tests.factories import CANARY_KEY


def test_resolve_reference() -> None:
    environ = {"OPENAI_API_KEY": CANARY_KEY, "EMPTY": ""}
    assert secrets.resolve_reference("${env:OPENAI_API_KEY}", environ) == CANARY_KEY
    assert secrets.resolve_reference("${env:MISSING}", environ) is None
    assert secrets.resolve_reference("${env:EMPTY}", environ) is None


def test_a_malformed_reference_is_refused_without_repeating_it() -> None:
    with pytest.raises(RegistryError) as caught:
        secrets.resolve_reference(CANARY_KEY, {})
    assert CANARY_KEY not in caught.value.message


def test_the_passphrase_is_needed_only_when_asked_for() -> None:
    assert secrets.encryption_passphrase({"LLM_REGISTRY_ENCRYPTION_KEY": "p"}) == "p"
    for environ in ({}, {"LLM_REGISTRY_ENCRYPTION_KEY": ""}):
        with pytest.raises(RegistryError, match="LLM_REGISTRY_ENCRYPTION_KEY is not set"):
            secrets.encryption_passphrase(environ)
    assert secrets.api_key_columns(None, None) == {"api_key": None, "api_key_fingerprint": None}


def test_the_fingerprint_changes_iff_the_key_changes() -> None:
    fingerprint = secrets.key_fingerprint(CANARY_KEY, "passphrase")
    assert fingerprint == secrets.key_fingerprint(CANARY_KEY, "passphrase")
    assert fingerprint != secrets.key_fingerprint(CANARY_KEY + "x", "passphrase")
    assert fingerprint != secrets.key_fingerprint(CANARY_KEY, "another passphrase")
    assert len(fingerprint) == 64 and int(fingerprint, 16) >= 0
    assert CANARY_KEY not in fingerprint


def test_the_fingerprint_is_keyed_with_a_derived_key() -> None:
    """Neither a plain hash of the key nor an HMAC under the raw passphrase (domain separation)."""
    import hashlib
    import hmac

    fingerprint = secrets.key_fingerprint(CANARY_KEY, "passphrase")
    assert fingerprint != hashlib.sha256(CANARY_KEY.encode()).hexdigest()
    assert fingerprint != hmac.new(b"passphrase", CANARY_KEY.encode(), hashlib.sha256).hexdigest()


def test_the_encrypt_expression_binds_key_and_passphrase() -> None:
    expression = secrets.encrypt_expression(CANARY_KEY, "passphrase")
    sql = str(expression.compile())
    assert CANARY_KEY not in sql and "passphrase" not in sql.replace("api_key_passphrase", "")
    assert "pgp_sym_encrypt" in sql and "compress-algo=0" in sql
    assert CANARY_KEY not in secrets.ENCRYPT_SQL
