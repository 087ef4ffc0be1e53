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

from tests.cli.applyutil import APPLY_ENV, models_by_name, snapshot, story_models, write_story_registry
from tests.factories import CANARY_KEY, generation_model, write_registry_file


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


def _set_in_definition(field: str, value: str) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        for entry in document["definitions"]:
            if entry["definition"]["name"] == "gpt-4o-mini":
                entry["definition"][field] = value

    return change


def _endpoint_everywhere(document: dict[str, Any]) -> None:
    """The consistent forgery: the endpoint moved in the definitions and in the plan's actions."""
    _set_in_definition("api_endpoint", "http://attacker.invalid/")(document)
    for action in document["plan"]["actions"]:
        for change in action["changes"]:
            if action["name"] == "gpt-4o-mini" and change["field"] == "api_endpoint":
                change["after"] = "http://attacker.invalid/"


def _key_reference_everywhere(document: dict[str, Any]) -> None:
    for entry in document["definitions"]:
        if entry["definition"].get("api_key"):
            entry["definition"]["api_key"] = "${env:OTHER_KEY}"


def _recompute_spec_fingerprint(document: dict[str, Any]) -> None:
    from reconciler.plan import spec_fingerprint
    from reconciler.spec import MODEL_ADAPTER, RegistrySpec

    models = sorted((MODEL_ADAPTER.validate_python(e["definition"]) for e in document["definitions"]), key=lambda m: m.name)
    document["spec_fingerprint"] = spec_fingerprint(RegistrySpec(tuple(models)))
    document["plan"]["spec_fingerprint"] = document["spec_fingerprint"]


def _spec_fingerprint_recomputed(document: dict[str, Any]) -> None:
    _endpoint_everywhere(document)
    _recompute_spec_fingerprint(document)


def _sign(document: dict[str, Any]) -> None:
    """Sign as plan --out does, with the passphrase: what only a holder of LLM_REGISTRY_ENCRYPTION_KEY can do."""
    from reconciler.planfile import document_mac

    document["mac"] = document_mac(document, APPLY_ENV["LLM_REGISTRY_ENCRYPTION_KEY"])


def _apply_refused(run_cli: Any, planfile: Path, database_url: str, engine: Any, fake_provider: Any) -> str:
    """apply PLANFILE, which must refuse with exit 1 and change nothing; its stderr."""
    before = snapshot(engine)
    result = run_cli("apply", str(planfile), "--database-url", database_url, env=APPLY_ENV)
    assert result.exit_code == 1, result.output
    assert snapshot(engine) == before
    assert fake_provider.request_count() == 0  # nothing was even tested
    return result.stderr


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
    stderr = _apply_refused(run_cli, planfile, database_url, engine, fake_provider)
    assert f"error: {planfile} was changed after plan wrote it, or signed under another LLM_REGISTRY_ENCRYPTION_KEY" in stderr


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


@pytest.fixture
def null_device(tmp_path: Path) -> Path:
    """A character device that discards what is written, as /dev/null does: the test's own where it can be.

    As root, a regression that replaced the output file instead of writing into it
    would replace the machine's /dev/null (mutation testing made exactly that mutant), so
    root gets a device node of its own (mknod, the same major and minor). Any other user
    cannot create files in /dev, so there /dev/null itself is safe to aim at.
    """
    if os.geteuid() != 0:
        return Path("/dev/null")
    device = tmp_path / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.stat("/dev/null").st_rdev)
        device.write_text("discarded")  # a nodev mount refuses to open it
    except OSError as error:
        pytest.skip(f"root without a device node of its own ({error}); /dev/null itself would be at risk")
    return device


def test_out_writes_into_dev_null_without_replacing_it(run_cli: Any, registry_dir: Path, database_url: str, null_device: Path) -> None:
    before = os.stat(null_device)
    result = run_cli("plan", str(registry_dir), "--database-url", database_url, "--out", str(null_device), env=APPLY_ENV)
    assert result.exit_code == 0, result.output
    after = os.stat(null_device)
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


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format_version=2), "{planfile} has plan format 2; this llm-registry reads 1: re-run plan"),
        (lambda d: d.update(kind="terraform-plan"), "{planfile} is not an llm-registry plan file"),
    ],
    ids=["future-format", "another-kind"],
)
def test_a_plan_file_of_another_format_or_kind_is_refused_as_such(
    run_cli: Any, planfile: Path, database_url: str, engine: Any, fake_provider: Any, change: Any, message: str
) -> None:
    _edit(planfile, change)
    stderr = _apply_refused(run_cli, planfile, database_url, engine, fake_provider)
    assert stderr.strip() == "error: " + message.format(planfile=planfile)


def test_a_signed_plan_file_whose_definitions_are_not_the_planned_ones_is_refused(
    run_cli: Any, planfile: Path, database_url: str, engine: Any, fake_provider: Any
) -> None:
    """Beyond the MAC: a file signed with the passphrase whose definitions do not give its spec_fingerprint."""
    _edit(planfile, lambda d: (_endpoint_everywhere(d), _sign(d)))
    stderr = _apply_refused(run_cli, planfile, database_url, engine, fake_provider)
    assert stderr.strip() == f"error: {planfile}: the definitions do not match the plan's spec_fingerprint; re-run plan --out"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("api_key", "${env:GITHUB_TOKEN}",
         "api_key: ${env:GITHUB_TOKEN} may not be referenced by a registry: a GitHub Actions variable"),
        ("api_endpoint", "${env:LLM_REGISTRY_DATABASE_URL}",
         "api_endpoint: ${env:LLM_REGISTRY_DATABASE_URL} may not be referenced by a registry: llm-registry's own configuration"),
        ("api_version", "${env:AWS_SECRET_ACCESS_KEY}",
         "api_version: ${env:AWS_SECRET_ACCESS_KEY} may not be referenced by a registry: AWS account credentials"),
        ("api_endpoint", "http://user:secret@attacker.invalid/", "api_endpoint holds credentials; re-run plan --out"),
    ],
    ids=["key-from-ci-token", "endpoint-from-own-config", "version-from-cloud-credentials", "endpoint-with-credentials"],
)
def test_a_signed_plan_file_must_pass_the_reference_rules_of_validate(
    run_cli: Any, planfile: Path, database_url: str, engine: Any, fake_provider: Any, field: str, value: str, message: str
) -> None:
    """A consistent, signed file (definitions, spec_fingerprint, MAC) still may not read the tool's or CI's variables."""
    _edit(planfile, lambda d: (_set_in_definition(field, value)(d), _recompute_spec_fingerprint(d), _sign(d)))
    stderr = _apply_refused(run_cli, planfile, database_url, engine, fake_provider)
    assert stderr.startswith(f"error: {planfile}: model 'gpt-4o-mini': {message}"), stderr
    assert "secret@" not in stderr


def test_a_plan_file_holds_any_text_of_a_definition(
    run_cli: Any, database_url: str, engine: Any, fake_provider: Any, tmp_path: Path
) -> None:
    """Descriptions in any language: the file is signed over its escaped JSON and applies as planned."""
    description = "Modèle d’embeddings — 768 dimensions, ≥ 8k tokens, 日本語"
    directory = write_story_registry(tmp_path / "registry.d", fake_provider, **{"nomic-embed": {"description": description}})
    planfile = tmp_path / "registry.plan"
    planned = run_cli("plan", str(directory), "--database-url", database_url, "--out", str(planfile), env=APPLY_ENV)
    assert planned.exit_code == 0, planned.output
    applied = run_cli("apply", str(planfile), "--database-url", database_url, env=APPLY_ENV)
    assert applied.exit_code == 0, applied.output
    assert models_by_name(engine)["nomic-embed"]["description"] == description


def test_out_refuses_a_socket_and_a_path_through_a_file(run_cli: Any, registry_dir: Path, database_url: str, tmp_path: Path) -> None:
    import socket

    path = tmp_path / "plan.sock"
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(path))
        result = run_cli("plan", str(registry_dir), "--database-url", database_url, "--out", str(path), env=APPLY_ENV)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == f"error: cannot write the plan file to {path}: it is a socket"
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    result = run_cli("plan", str(registry_dir), "--database-url", database_url, "--out", str(blocker / "registry.plan"), env=APPLY_ENV)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == f"error: cannot write the plan file {blocker / 'registry.plan'}: Not a directory"
    assert blocker.read_text() == ""


def test_out_creates_the_missing_directories(run_cli: Any, registry_dir: Path, database_url: str, tmp_path: Path) -> None:
    planfile = tmp_path / "artifacts" / "plans" / "registry.plan"
    result = run_cli("plan", str(registry_dir), "--database-url", database_url, "--out", str(planfile), env=APPLY_ENV)
    assert result.exit_code == 0, result.output
    assert json.loads(planfile.read_text())["kind"] == "llm-registry-plan"


def test_a_key_unknown_at_plan_time_must_be_the_stored_one_at_apply(
    run_cli: Any, database_url: str, engine: Any, fake_provider: Any, tmp_path: Path
) -> None:
    """plan --out without the key variables (a CI job without secrets); apply refuses a key that moved, naming it."""
    second = generation_model(name="gpt-4o", api_endpoint=fake_provider.url, api_key="${env:SECOND_API_KEY}")
    directory = tmp_path / "registry.d"
    write_registry_file(directory, [*story_models(fake_provider), second])
    keys = {"OPENAI_API_KEY": CANARY_KEY, "SECOND_API_KEY": "sk-second-0000000000000000000000000000000000"}
    stored = run_cli("apply", str(directory), "--database-url", database_url, "--auto-approve", "--skip-connection-tests",
                     env={**APPLY_ENV, **keys})  # fmt: skip
    assert stored.exit_code == 0, stored.output
    planfile = tmp_path / "registry.plan"
    without_keys = {"LLM_REGISTRY_ENCRYPTION_KEY": APPLY_ENV["LLM_REGISTRY_ENCRYPTION_KEY"], "OPENAI_API_KEY": None, "SECOND_API_KEY": None}
    planned = run_cli("plan", str(directory), "--database-url", database_url, "--out", str(planfile), env=without_keys)
    assert planned.exit_code == 0, planned.output
    assert json.loads(planfile.read_text())["keys"]["unknown"] == ["gpt-4o", "gpt-4o-mini"]
    before = snapshot(engine)

    moved = run_cli("apply", str(planfile), "--database-url", database_url, env={**APPLY_ENV, **keys, "SECOND_API_KEY": "sk-moved"})
    assert moved.exit_code == 1, moved.output
    assert moved.stderr.strip() == (
        "error: plan is stale: re-run plan (the key of gpt-4o was not known when the plan was made and differs from the stored one)"
    )
    assert snapshot(engine) == before

    same = run_cli("apply", str(planfile), "--database-url", database_url, env={**APPLY_ENV, **keys})
    assert same.exit_code == 0, same.output
    assert snapshot(engine) == before


def test_apply_of_a_plan_file_shows_where_each_model_is_defined(
    run_cli: Any, registry_dir: Path, database_url: str, tmp_path: Path
) -> None:
    """The saved locations come back: apply PLANFILE names each model's file:line:column as plan did."""
    planfile = tmp_path / "registry.plan"
    planned = run_cli("plan", str(registry_dir), "--database-url", database_url, "--out", str(planfile), env=APPLY_ENV)
    assert planned.exit_code == 0, planned.output
    headers = [line for line in planned.stdout.splitlines() if line.startswith("  # ")]
    assert len(headers) == 2 and all(f"  ({registry_dir / 'models.yaml'}:" in line for line in headers), planned.stdout
    applied = run_cli("apply", str(planfile), "--database-url", database_url, env=APPLY_ENV)
    assert applied.exit_code == 0, applied.output
    assert [line for line in applied.stdout.splitlines() if line.startswith("  # ")] == headers
