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


def test_keys_are_stored_as_messages_made_here() -> None:
    from reconciler import pgp

    columns = secrets.api_key_columns(CANARY_KEY, "passphrase")
    assert isinstance(columns["api_key"], bytes) and CANARY_KEY.encode() not in columns["api_key"]
    assert pgp.decrypt(columns["api_key"], "passphrase") == CANARY_KEY
    assert columns["api_key_fingerprint"] == secrets.key_fingerprint(CANARY_KEY, "passphrase")


def test_each_distinct_key_is_encrypted_once() -> None:
    stored = secrets.stored_keys({"a": CANARY_KEY, "b": CANARY_KEY, "c": "sk-other"}, "passphrase")
    assert stored["a"] is stored["b"] and stored["a"].ciphertext != stored["c"].ciphertext
    assert CANARY_KEY not in repr(stored)
    assert secrets.stored_keys({}, None) == {}
    with pytest.raises(RegistryError, match="LLM_REGISTRY_ENCRYPTION_KEY"):
        secrets.stored_keys({"a": CANARY_KEY}, None)


def test_the_passphrase_check_refuses_a_wrong_passphrase_naming_the_variable() -> None:
    from reconciler import pgp

    check = secrets.PassphraseProbe(pgp.encrypt(secrets.PASSPHRASE_CHECK_TEXT, "right"))
    secrets.verify_passphrase(check, "right")
    secrets.verify_passphrase(check, None)  # nothing to compare
    secrets.verify_passphrase(None, "anything")  # nothing stored yet
    with pytest.raises(RegistryError) as caught:
        secrets.verify_passphrase(check, "wrong-passphrase-xyz")
    assert "LLM_REGISTRY_ENCRYPTION_KEY is not the passphrase" in caught.value.message
    assert "passphrase check" in caught.value.message and "wrong-passphrase-xyz" not in caught.value.message
    row_probe = secrets.PassphraseProbe(pgp.encrypt(CANARY_KEY, "right"), model="gpt-4o")
    with pytest.raises(RegistryError, match="does not open the stored API key of gpt-4o") as caught:
        secrets.verify_passphrase(row_probe, "wrong")
    assert CANARY_KEY not in caught.value.message and CANARY_KEY not in repr(row_probe)
    # a check of another text (not ours) is refused too
    with pytest.raises(RegistryError):
        secrets.verify_passphrase(secrets.PassphraseProbe(pgp.encrypt("something else", "right")), "right")


@pytest.mark.parametrize("passphrase", [None, ""], ids=["unset", "empty"])
def test_a_key_is_never_stored_without_a_passphrase(passphrase: str | None) -> None:
    """An empty passphrase would encrypt (anyone could open it): refused, naming the variable, for one key or many."""
    with pytest.raises(RegistryError) as caught:
        secrets.api_key_columns(CANARY_KEY, passphrase)
    assert caught.value.message == "LLM_REGISTRY_ENCRYPTION_KEY is needed to store an API key"
    with pytest.raises(RegistryError) as caught:
        secrets.stored_keys({"gpt-4o": CANARY_KEY}, passphrase)
    assert caught.value.message == "LLM_REGISTRY_ENCRYPTION_KEY is needed to store an API key"


def test_the_right_passphrase_opens_a_stored_key_as_probe() -> None:
    """A registry with stored keys but no passphrase check yet (keys the admin page wrote): the key is the probe."""
    from reconciler import pgp

    row_probe = secrets.PassphraseProbe(pgp.encrypt(CANARY_KEY, "right"), model="gpt-4o")
    secrets.verify_passphrase(row_probe, "right")  # a key is not the check's text, and need not be
    secrets.verify_passphrase(row_probe, None)
