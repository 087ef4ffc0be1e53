"""`llm-registry rotate-encryption-key` and the passphrase guard of plan and apply (issue 9, item 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from reconciler import pgp, secrets
from reconciler.state import applied_fingerprint, read_state
from tests.cli.applyutil import APPLY_ENV, audit_events, models_by_name, snapshot, write_story_registry
from tests.dbutil import TEST_PASSPHRASE, insert_model
from tests.factories import CANARY_KEY

pytestmark = pytest.mark.db

NEW_PASSPHRASE = "new-passphrase-9876543210"
HAND_KEY = "sk-hand-made-000000000000000000000000000000"
WRONG = {secrets.ENCRYPTION_KEY_ENV: "wrong-passphrase-0000"}


@pytest.fixture
def applied(run_cli: Any, tmp_path: Path, fake_provider: Any, database_url: str, engine: Any) -> Path:
    """The story's registry applied (the canary is gpt-4o-mini's key), plus a hand-made row with a key."""
    directory = write_story_registry(tmp_path / "registry.d", fake_provider)
    result = run_cli("apply", str(directory), "--database-url", database_url, "--auto-approve", env=APPLY_ENV)
    assert result.exit_code == 0, result.output
    with engine.begin() as connection:
        insert_model(connection, name="hand-made", type="generation", provider="openai", model_id="gpt-4o", managed_by=None, api_key=HAND_KEY)
    return directory


def rotate(run_cli: Any, url: str, *args: str, env: dict[str, str] | None = None) -> Any:
    environment = {**APPLY_ENV, "LLM_REGISTRY_NEW_ENCRYPTION_KEY": NEW_PASSPHRASE, **(env or {})}
    return run_cli("rotate-encryption-key", "--database-url", url, "--actor", "carol", *args, env=environment)


def decrypt_in_sql(engine: Any, name: str, passphrase: str) -> str:
    """What the KB application reads: pgp_sym_decrypt(api_key, passphrase) in SQL."""
    with engine.connect() as connection:
        return str(connection.execute(
            text("SELECT pgp_sym_decrypt(api_key, :p) FROM llm_models WHERE name = :n"), {"p": passphrase, "n": name}
        ).scalar_one())


# ----------------------------------------------------------------------------- the guard


def test_plan_refuses_a_wrong_passphrase_instead_of_showing_every_key_changed(run_cli: Any, applied: Path, database_url: str) -> None:
    result = run_cli("plan", str(applied), "--database-url", database_url, env={**APPLY_ENV, **WRONG})
    assert result.exit_code == 1
    assert "error: LLM_REGISTRY_ENCRYPTION_KEY is not the passphrase this registry's API keys are encrypted with" in result.stderr
    assert "changed" not in result.stdout
    assert "wrong-passphrase-0000" not in result.output and CANARY_KEY not in result.output


def test_apply_refuses_a_wrong_passphrase_and_writes_nothing(run_cli: Any, applied: Path, database_url: str, engine: Any) -> None:
    before = snapshot(engine)
    result = run_cli("apply", str(applied), "--database-url", database_url, "--auto-approve", env={**APPLY_ENV, **WRONG})
    assert result.exit_code == 1
    assert "LLM_REGISTRY_ENCRYPTION_KEY is not the passphrase" in result.stderr
    assert snapshot(engine) == before


def test_apply_stores_a_passphrase_check_that_sql_can_open(applied: Path, engine: Any) -> None:
    with engine.connect() as connection:
        check = connection.execute(text("SELECT pgp_sym_decrypt(passphrase_check, :p) FROM llm_registry_encryption"), {"p": TEST_PASSPHRASE}).scalar_one()
    assert check == secrets.PASSPHRASE_CHECK_TEXT


def test_without_a_check_a_hand_made_key_is_the_probe(run_cli: Any, tmp_path: Path, database_url: str, engine: Any, fake_provider: Any) -> None:
    """A table the story's admin page filled (no check yet): its keys still catch a wrong passphrase."""
    with engine.begin() as connection:
        insert_model(connection, name="admin-page-row", type="generation", provider="openai", model_id="gpt-4o", managed_by=None, api_key=HAND_KEY)
    directory = write_story_registry(tmp_path / "registry.d", fake_provider)
    before = snapshot(engine)
    for command in (["plan"], ["apply", "--auto-approve"]):
        result = run_cli(command[0], str(directory), "--database-url", database_url, *command[1:], env={**APPLY_ENV, **WRONG})
        assert result.exit_code == 1, result.output
        assert "it does not open the stored API key of admin-page-row" in result.stderr
    assert snapshot(engine) == before
    # the right passphrase goes through, and apply then stores the check
    assert run_cli("apply", str(directory), "--database-url", database_url, "--auto-approve", env=APPLY_ENV).exit_code == 0
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM llm_registry_encryption")).scalar_one() == 1


# ----------------------------------------------------------------------------- rotation


def test_rotation_re_encrypts_every_key_managed_or_not(run_cli: Any, applied: Path, database_url: str, engine: Any) -> None:
    before = models_by_name(engine)
    result = rotate(run_cli, database_url)
    assert result.exit_code == 0, result.output
    assert "Rotated: 2 API keys (1 in rows made by hand) re-encrypted under the new passphrase" in result.stdout
    assert NEW_PASSPHRASE not in result.output and TEST_PASSPHRASE not in result.output and CANARY_KEY not in result.output
    # the KB application's SQL reads the keys with the new passphrase, and no longer with the old
    assert decrypt_in_sql(engine, "gpt-4o-mini", NEW_PASSPHRASE) == CANARY_KEY
    assert decrypt_in_sql(engine, "hand-made", NEW_PASSPHRASE) == HAND_KEY
    with pytest.raises(Exception, match="Wrong key or corrupt data"):
        decrypt_in_sql(engine, "gpt-4o-mini", TEST_PASSPHRASE)
    after = models_by_name(engine)
    assert after["gpt-4o-mini"]["api_key_fingerprint"] == secrets.key_fingerprint(CANARY_KEY, NEW_PASSPHRASE)
    assert after["hand-made"]["api_key_fingerprint"] == secrets.key_fingerprint(HAND_KEY, NEW_PASSPHRASE)
    assert after["nomic-embed"] == before["nomic-embed"]  # no key, untouched
    # the drift digest follows the new fingerprint where it was current
    with engine.connect() as connection:
        row = next(m for m in read_state(connection).models if m.name == "gpt-4o-mini")
    assert after["gpt-4o-mini"]["applied_fingerprint"] == applied_fingerprint(row.name, row.record)
    assert after["hand-made"]["applied_fingerprint"] is None


def test_after_rotation_the_new_passphrase_plans_no_changes_and_the_old_is_refused(run_cli: Any, applied: Path, database_url: str) -> None:
    assert rotate(run_cli, database_url).exit_code == 0
    new_env = {**APPLY_ENV, secrets.ENCRYPTION_KEY_ENV: NEW_PASSPHRASE}
    plan = run_cli("plan", str(applied), "--database-url", database_url, "--detailed-exitcode", env=new_env)
    assert plan.exit_code == 0, plan.output
    assert "No changes" in plan.stdout
    old = run_cli("plan", str(applied), "--database-url", database_url, env=APPLY_ENV)
    assert old.exit_code == 1 and "LLM_REGISTRY_ENCRYPTION_KEY is not the passphrase" in old.stderr


def test_rotation_is_audited_per_model_without_values(run_cli: Any, applied: Path, database_url: str, engine: Any) -> None:
    result = rotate(run_cli, database_url)
    events = [e for e in audit_events(engine) if e["event_type"] == "ENCRYPTION_KEY_ROTATED"]
    assert sorted(e["model_name"] for e in events) == ["gpt-4o-mini", "hand-made"]
    assert {e["actor"] for e in events} == {"carol"} and len({e["run_id"] for e in events}) == 1
    assert f"Run {events[0]['run_id']} by carol" in result.stdout
    by_name = {e["model_name"]: e for e in events}
    assert by_name["hand-made"]["details"] == {"api_key": "unchanged", "re_encrypted": True, "managed": False}
    dump = str(events)
    assert CANARY_KEY not in dump and HAND_KEY not in dump and NEW_PASSPHRASE not in dump


def test_a_key_that_does_not_open_stops_the_whole_rotation(run_cli: Any, applied: Path, database_url: str, engine: Any) -> None:
    with engine.begin() as connection:
        insert_model(connection, name="other-passphrase", type="generation", provider="openai", model_id="x", managed_by=None, api_key=HAND_KEY, passphrase="some-other-passphrase")
    before = snapshot(engine)
    result = rotate(run_cli, database_url)
    assert result.exit_code == 1
    assert "cannot decrypt the stored API key of other-passphrase" in result.stderr
    assert "nothing was changed" in result.stderr
    assert snapshot(engine) == before


def test_rotation_refuses_a_wrong_current_passphrase(run_cli: Any, applied: Path, database_url: str, engine: Any) -> None:
    before = snapshot(engine)
    result = rotate(run_cli, database_url, env=WRONG)
    assert result.exit_code == 1 and "LLM_REGISTRY_ENCRYPTION_KEY is not the passphrase" in result.stderr
    assert snapshot(engine) == before


def test_the_new_passphrase_is_never_an_argument(run_cli: Any, applied: Path, database_url: str, engine: Any) -> None:
    before = snapshot(engine)
    result = run_cli("rotate-encryption-key", "--database-url", database_url, env=APPLY_ENV)
    assert result.exit_code == 1
    assert "LLM_REGISTRY_NEW_ENCRYPTION_KEY is not set" in result.stderr
    same = rotate(run_cli, database_url, env={"LLM_REGISTRY_NEW_ENCRYPTION_KEY": TEST_PASSPHRASE})
    assert same.exit_code == 1 and "the new passphrase is the current one" in same.stderr
    assert run_cli("rotate-encryption-key", NEW_PASSPHRASE, "--database-url", database_url, env=APPLY_ENV).exit_code == 1
    assert snapshot(engine) == before


def test_a_dry_run_changes_nothing(run_cli: Any, applied: Path, database_url: str, engine: Any) -> None:
    before = snapshot(engine)
    result = rotate(run_cli, database_url, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "DRY RUN: 2 API keys (1 in rows made by hand) open with the current passphrase" in result.stdout
    assert snapshot(engine) == before


def test_the_stored_check_is_rotated_too(run_cli: Any, applied: Path, database_url: str, engine: Any) -> None:
    assert rotate(run_cli, database_url).exit_code == 0
    with engine.connect() as connection:
        check = bytes(connection.execute(text("SELECT passphrase_check FROM llm_registry_encryption")).scalar_one())
    assert pgp.decrypt(check, NEW_PASSPHRASE) == secrets.PASSPHRASE_CHECK_TEXT
    assert not pgp.opens_with(check, TEST_PASSPHRASE)
