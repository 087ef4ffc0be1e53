"""API keys at rest: pgcrypto ciphertext with bound parameters, a keyed fingerprint, clean errors."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.engine import Connection, Engine

from reconciler import secrets
from reconciler.errors import RegistryError
from reconciler.tables import llm_models
from tests.dbutil import TEST_PASSPHRASE, fetch_model_row, insert_model
from tests.factories import CANARY_KEY

pytestmark = pytest.mark.db

OTHER_KEY = "sk-other-00000000000000000000000000000000"


def test_the_stored_bytes_do_not_contain_the_key(connection: Connection) -> None:
    insert_model(connection, name="m", type="generation", provider="openai", api_key=CANARY_KEY)
    row = fetch_model_row(connection, "m")
    stored = bytes(row["api_key"])
    assert CANARY_KEY.encode() not in stored
    # nowhere in the row, in any column, in any encoding we can think of
    dump = connection.execute(text("SELECT row_to_json(m)::text FROM llm_models m")).scalar_one()
    assert CANARY_KEY not in dump
    assert CANARY_KEY.encode().hex() not in dump
    assert TEST_PASSPHRASE not in dump
    assert row["api_key_fingerprint"] == secrets.key_fingerprint(CANARY_KEY, TEST_PASSPHRASE)


def test_the_kb_application_reads_the_stored_key_with_pgp_sym_decrypt(connection: Connection) -> None:
    """The contract with the KB application: the column opens in SQL with the passphrase."""
    insert_model(connection, name="m", type="generation", provider="openai", api_key=CANARY_KEY)
    decrypted = connection.execute(
        text("SELECT pgp_sym_decrypt(api_key, :p) FROM llm_models WHERE name = 'm'"), {"p": TEST_PASSPHRASE}
    ).scalar_one()
    assert decrypted == CANARY_KEY


def test_keys_pgcrypto_stored_are_read_too(connection: Connection) -> None:
    """Rows the story's admin page wrote with pgp_sym_encrypt (any options) are read in the client."""
    model_id = insert_model(connection, name="admin-page", type="generation", provider="openai", api_key=CANARY_KEY)
    connection.execute(
        text("UPDATE llm_models SET api_key = pgp_sym_encrypt(:k, :p, 'compress-algo=1') WHERE id = :id"),
        {"k": CANARY_KEY, "p": TEST_PASSPHRASE, "id": model_id},
    )
    assert secrets.decrypt_api_keys(connection, [model_id], TEST_PASSPHRASE) == {model_id: CANARY_KEY}


def test_round_trip_through_the_sqlalchemy_helpers(connection: Connection) -> None:
    new_id = connection.execute(
        insert(llm_models)
        .values(name="m", model_type="ner", provider="openai", model_id="x", **secrets.api_key_columns(CANARY_KEY, TEST_PASSPHRASE))
        .returning(llm_models.c.id)
    ).scalar_one()
    keyless = insert_model(connection, name="keyless")
    keys = secrets.decrypt_api_keys(connection, [new_id, keyless], TEST_PASSPHRASE)
    assert keys == {new_id: CANARY_KEY}
    assert CANARY_KEY not in repr(keys) and CANARY_KEY not in str(keys)
    assert secrets.decrypt_api_keys(connection, [], TEST_PASSPHRASE) == {}


def test_store_api_key_replaces_and_clears(connection: Connection) -> None:
    model_id = insert_model(connection, name="m", type="generation", provider="openai", api_key=CANARY_KEY)
    first = fetch_model_row(connection, "m")["api_key_fingerprint"]
    secrets.store_api_key(connection, model_id, OTHER_KEY, TEST_PASSPHRASE)
    assert secrets.decrypt_api_keys(connection, [model_id], TEST_PASSPHRASE) == {model_id: OTHER_KEY}
    assert fetch_model_row(connection, "m")["api_key_fingerprint"] != first
    secrets.store_api_key(connection, model_id, None, None)
    row = fetch_model_row(connection, "m")
    assert row["api_key"] is None and row["api_key_fingerprint"] is None


def test_each_encryption_is_salted(connection: Connection) -> None:
    insert_model(connection, name="a", api_key=CANARY_KEY)
    insert_model(connection, name="b", api_key=CANARY_KEY)
    a, b = fetch_model_row(connection, "a"), fetch_model_row(connection, "b")
    assert bytes(a["api_key"]) != bytes(b["api_key"])
    assert a["api_key_fingerprint"] == b["api_key_fingerprint"]


def test_a_wrong_passphrase_is_a_clear_error_and_the_transaction_survives(connection: Connection) -> None:
    good = insert_model(connection, name="good-model", api_key=CANARY_KEY)
    with pytest.raises(RegistryError) as caught:
        secrets.decrypt_api_keys(connection, [good], "not-the-passphrase")
    message = caught.value.message
    assert "good-model" in message and "LLM_REGISTRY_ENCRYPTION_KEY" in message
    assert CANARY_KEY not in message and "not-the-passphrase" not in message
    assert caught.value.__cause__ is None and (caught.value.__context__ is None or caught.value.__suppress_context__)
    # the caller's transaction is still usable
    assert connection.execute(select(llm_models.c.name)).scalar_one() == "good-model"


def test_only_the_undecryptable_models_are_named(connection: Connection) -> None:
    first = insert_model(connection, name="under-a", api_key=CANARY_KEY, passphrase="passphrase-a")
    second = insert_model(connection, name="under-b", api_key=OTHER_KEY, passphrase="passphrase-b")
    with pytest.raises(RegistryError, match="under-b") as caught:
        secrets.decrypt_api_keys(connection, [first, second], "passphrase-a")
    assert "under-a" not in caught.value.message


def test_the_engine_keeps_keys_out_of_database_errors(engine: Engine) -> None:
    """A statement that fails with a key bound in it does not repeat the key."""
    from sqlalchemy.exc import DBAPIError

    with engine.connect() as connection:
        with pytest.raises(DBAPIError) as caught:
            connection.execute(
                insert(llm_models).values(
                    name="bad", model_type="nonsense", provider="openai", model_id="x",
                    **secrets.api_key_columns(CANARY_KEY, TEST_PASSPHRASE),
                )
            )
    assert CANARY_KEY not in str(caught.value)
    assert TEST_PASSPHRASE not in str(caught.value)


def test_without_a_passphrase_check_a_managed_key_is_the_probe_before_a_hand_made_one(connection: Connection) -> None:
    # A hand-made row under another passphrase sorts first by name; the managed rows were
    # written by llm-registry under the registry's passphrase.
    insert_model(connection, name="aaa-hand", api_key=CANARY_KEY, passphrase="another-passphrase", managed_by=None)
    insert_model(connection, name="managed", api_key=CANARY_KEY, managed_by="llm-registry")
    connection.execute(text("DELETE FROM llm_registry_encryption"))
    probe = secrets.read_passphrase_probe(connection)
    assert probe is not None and probe.model == "managed"
    with pytest.raises(RegistryError, match="does not open the stored API key of managed"):
        secrets.verify_passphrase(probe, "another-passphrase")  # it would have re-encrypted every managed key
    secrets.verify_passphrase(probe, TEST_PASSPHRASE)
