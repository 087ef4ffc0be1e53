"""Plan files cannot be forged: any edit is refused by `apply PLANFILE`, and `--out`
never replaces a special file. Real PostgreSQL, the fake provider on loopback."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.cli.applyutil import APPLY_ENV, models_by_name, snapshot


@pytest.fixture
def planfile(run_cli: Any, registry_dir: Path, database_url: str, tmp_path: Path) -> Path:
    path = tmp_path / "registry.plan"
    result = run_cli("plan", str(registry_dir), "--database-url", database_url, "--out", str(path), env=APPLY_ENV)
    assert result.exit_code == 0, result.output
    return path


def _edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document, indent=2, sort_keys=True))


def _endpoint_everywhere(document: dict[str, Any]) -> None:
    """The consistent forgery: the endpoint moved in the definitions and in the plan's actions."""
    for entry in document["definitions"]:
        if entry["definition"]["name"] == "gpt-4o-mini":
            entry["definition"]["api_endpoint"] = "http://attacker.invalid/"
    for action in document["plan"]["actions"]:
        for change in action["changes"]:
            if action["name"] == "gpt-4o-mini" and change["field"] == "api_endpoint":
                change["after"] = "http://attacker.invalid/"


def _key_reference_everywhere(document: dict[str, Any]) -> None:
    for entry in document["definitions"]:
        if entry["definition"].get("api_key"):
            entry["definition"]["api_key"] = "${env:OTHER_KEY}"


def _spec_fingerprint_recomputed(document: dict[str, Any]) -> None:
    from reconciler.plan import spec_fingerprint
    from reconciler.spec import MODEL_ADAPTER, RegistrySpec

    _endpoint_everywhere(document)
    models = sorted((MODEL_ADAPTER.validate_python(e["definition"]) for e in document["definitions"]), key=lambda m: m.name)
    document["spec_fingerprint"] = spec_fingerprint(RegistrySpec(tuple(models)))
    document["plan"]["spec_fingerprint"] = document["spec_fingerprint"]


@pytest.mark.parametrize(
    "change",
    [
        _endpoint_everywhere,
        _key_reference_everywhere,
        _spec_fingerprint_recomputed,
        lambda d: d.update(allow_delete_all=True),
        lambda d: d.pop("mac"),
        lambda d: d.update(mac="0" * 64),
        lambda d: d["plan"]["actions"].pop(),
    ],
    ids=["endpoint-consistently", "key-reference", "spec-fingerprint-recomputed", "allow-delete-all", "mac-removed", "mac-zeroed", "action-dropped"],
)
def test_any_edit_of_a_plan_file_is_refused(run_cli: Any, planfile: Path, database_url: str, engine: Any, fake_provider: Any, change: Any) -> None:
    _edit(planfile, change)
    before = snapshot(engine)
    result = run_cli("apply", str(planfile), "--database-url", database_url, env=APPLY_ENV)
    assert result.exit_code == 1, result.output
    assert f"error: {planfile} was changed after plan wrote it, or signed under another LLM_REGISTRY_ENCRYPTION_KEY" in result.stderr
    assert snapshot(engine) == before
    assert fake_provider.request_count() == 0  # nothing was even tested


def test_a_plan_file_signed_under_another_passphrase_is_refused(run_cli: Any, planfile: Path, database_url: str, engine: Any) -> None:
    result = run_cli("apply", str(planfile), "--database-url", database_url, env={**APPLY_ENV, "LLM_REGISTRY_ENCRYPTION_KEY": "another"})
    assert result.exit_code == 1
    assert "signed under another LLM_REGISTRY_ENCRYPTION_KEY" in result.stderr
    assert models_by_name(engine) == {}


def test_a_plan_file_of_another_llm_registry_version_is_refused(run_cli: Any, planfile: Path, database_url: str, engine: Any) -> None:
    # Digests may be defined differently between versions: a plan is applied by the version that made it.
    _edit(planfile, lambda d: d.update(llm_registry_version="0.0.1"))
    result = run_cli("apply", str(planfile), "--database-url", database_url, env=APPLY_ENV)
    assert result.exit_code == 1
    assert f"error: {planfile} was written by llm-registry '0.0.1'; this is " in result.stderr
    assert "re-run plan --out with this version" in result.stderr
    assert models_by_name(engine) == {}
    _edit(planfile, lambda d: d.update(llm_registry_version="9" * 10_000))  # read before the MAC: shown short
    result = run_cli("apply", str(planfile), "--database-url", database_url, env=APPLY_ENV)
    assert result.exit_code == 1
    assert "was written by llm-registry '99999" in result.stderr and "9" * 100 not in result.stderr


def test_an_untouched_plan_file_applies(run_cli: Any, planfile: Path, database_url: str, engine: Any) -> None:
    result = run_cli("apply", str(planfile), "--database-url", database_url, env=APPLY_ENV)
    assert result.exit_code == 0, result.output
    assert set(models_by_name(engine)) == {"nomic-embed", "gpt-4o-mini"}


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_plan_files_need_the_passphrase(run_cli: Any, planfile: Path, registry_dir: Path, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    monkeypatch.delenv("LLM_REGISTRY_ENCRYPTION_KEY", raising=False)
    env = {k: v for k, v in APPLY_ENV.items() if k != "LLM_REGISTRY_ENCRYPTION_KEY"}
    args = ["plan", str(registry_dir), "--out", str(tmp_path / "new.plan")] if command == "plan" else ["apply", str(planfile)]
    result = run_cli(*args, "--database-url", database_url, env=env)
    assert result.exit_code == 1
    assert "LLM_REGISTRY_ENCRYPTION_KEY is not set: plan files are signed with a key derived from it" in result.stderr
    assert not (tmp_path / "new.plan").exists()


def test_out_writes_into_dev_null_without_replacing_it(run_cli: Any, registry_dir: Path, database_url: str) -> None:
    before = os.stat("/dev/null")
    result = run_cli("plan", str(registry_dir), "--database-url", database_url, "--out", "/dev/null", env=APPLY_ENV)
    assert result.exit_code == 0, result.output
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)


def test_out_writes_into_a_fifo(run_cli: Any, registry_dir: Path, database_url: str, tmp_path: Path) -> None:
    fifo = tmp_path / "plan.fifo"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    result = run_cli("plan", str(registry_dir), "--database-url", database_url, "--out", str(fifo), env=APPLY_ENV)
    reader.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert json.loads(received[0])["kind"] == "llm-registry-plan"


def test_out_through_a_symlink_keeps_the_link(run_cli: Any, registry_dir: Path, database_url: str, tmp_path: Path) -> None:
    target = tmp_path / "real.plan"
    target.write_text("old")
    link = tmp_path / "link.plan"
    link.symlink_to(target)
    result = run_cli("plan", str(registry_dir), "--database-url", database_url, "--out", str(link), env=APPLY_ENV)
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and json.loads(target.read_text())["kind"] == "llm-registry-plan"
