"""The template workflows, run step by step in a simulated GitHub runner against real PostgreSQL.

Each test copies nothing: it runs .github/workflows/templates/<name>.yml as a registry
repository would, with its `uses:` of this repository's action.yml, the runner's files
(GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_PATH, the event), the fake GitHub API and
the fake provider on loopback (tests/fakes/).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.secrets import ENCRYPTION_KEY_ENV
from tests.cli.applyutil import audit_events, models_by_name, snapshot, write_story_registry
from tests.dbutil import TEST_PASSPHRASE
from tests.factories import CANARY_KEY
from tests.fakes.actions import REPO, SimulatedRunner
from tests.fakes.github import FakeGitHub

pytestmark = pytest.mark.db

TEMPLATES = REPO / ".github" / "workflows" / "templates"
SHA = "c0ffee" * 6 + "c0ff"


@pytest.fixture
def workspace(tmp_path: Path, fake_provider: Any) -> Path:
    root = tmp_path / "kb-registry"
    write_story_registry(root / "registry.d", fake_provider)
    return root


def runner(workspace: Path, tmp_path: Path, fake_github: FakeGitHub, secrets: dict[str, str]) -> SimulatedRunner:
    base = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "GITHUB_API_URL": fake_github.url,
        "GITHUB_REPOSITORY": "acme/kb-registry",
        "GITHUB_TOKEN": fake_github.token,  # what ${{ github.token }} gives the action
        "NO_COLOR": "1",
    }
    return SimulatedRunner(workspace, tmp_path / "runner-temp", secrets=secrets, base_env=base)


def all_secrets(database_url: str) -> dict[str, str]:
    return {
        "LLM_REGISTRY_DATABASE_URL": database_url,
        "LLM_REGISTRY_PLAN_DATABASE_URL": database_url,
        ENCRYPTION_KEY_ENV: TEST_PASSPHRASE,
        "OPENAI_API_KEY": CANARY_KEY,
    }


def test_plan_on_a_pull_request_keeps_one_sticky_comment(
    workspace: Path, tmp_path: Path, fake_github: FakeGitHub, database_url: str
) -> None:
    simulated = runner(workspace, tmp_path, fake_github, all_secrets(database_url))
    event = {"pull_request": {"number": 12}, "number": 12}
    for _ in range(2):
        job = simulated.run(TEMPLATES / "registry-plan.yml", event_name="pull_request", event=event, sha=SHA)
        assert job.succeeded, job.log
        assert job.step("Plan").outputs == {"exit-code": "2", "has-changes": "true", "blocked": "false", "plan-file": ""}
    [comment] = fake_github.comments(12)
    assert "environment <code>production</code> · revision <code>c0ffeec0ffee</code>" in comment
    assert "**Plan: 2 to create, 0 to update, 0 to delete, 0 blocked.**" in comment
    assert "Plan: 2 to create" in job.summary
    assert "::warning file=registry.d/models.yaml,line=" in job.log  # the annotations, same run
    assert CANARY_KEY not in job.log + comment + job.summary and fake_github.token not in job.log


def test_plan_without_the_database_secret_fails_instead_of_planning_against_nothing(
    workspace: Path, tmp_path: Path, fake_github: FakeGitHub
) -> None:
    # a pull request from a fork: no secrets at all
    simulated = runner(workspace, tmp_path, fake_github, {})
    job = simulated.run(TEMPLATES / "registry-plan.yml", event_name="pull_request", event={"number": 3, "pull_request": {"number": 3}}, sha=SHA)
    assert not job.succeeded
    assert "no database given: CI is set" in job.log and "Set LLM_REGISTRY_DATABASE_URL" in job.log
    assert job.step("Plan").outputs["exit-code"] == "1"
    assert fake_github.comments(3) == []
    assert not (workspace / ".llm-registry").exists()


def test_plan_fails_the_check_on_a_blocked_change(
    workspace: Path, tmp_path: Path, fake_github: FakeGitHub, database_url: str, engine: Any
) -> None:
    from tests.dbutil import insert_knowledge_base, insert_model

    with engine.begin() as connection:
        used = insert_model(connection, name="legacy-embed", managed_by="llm-registry")
        insert_knowledge_base(connection, "support-kb", embedding_model_id=used)
    simulated = runner(workspace, tmp_path, fake_github, all_secrets(database_url))
    job = simulated.run(TEMPLATES / "registry-plan.yml", event_name="pull_request", event={"number": 5, "pull_request": {"number": 5}}, sha=SHA)
    assert not job.succeeded
    assert job.step("Plan").outputs["blocked"] == "true" and job.step("Plan").outputs["exit-code"] == "3"
    assert "::error title=llm-registry blocked::delete of legacy-embed blocked" in job.log
    assert "legacy-embed" in fake_github.comments(5)[0]


def _commit(workspace: Path) -> str:
    """Make the workspace a checkout of main with one commit (the apply job compares it); its SHA."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(workspace), *args], capture_output=True, text=True, check=True).stdout.strip()

    git("init", "-q", "-b", "main")
    git("-c", "user.name=t", "-c", "user.email=t@example.test", "commit", "-q", "--allow-empty", "-m", "registry")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@example.test", "commit", "-q", "-m", "models")
    return git("rev-parse", "HEAD")


def test_apply_on_merge_applies_the_plan_it_made_and_audits_the_environment(
    workspace: Path, tmp_path: Path, fake_github: FakeGitHub, database_url: str, engine: Any
) -> None:
    head = _commit(workspace)  # the push's commit is main's head
    simulated = runner(workspace, tmp_path, fake_github, all_secrets(database_url))
    job = simulated.run(TEMPLATES / "registry-apply.yml", event_name="push", event={"ref": "refs/heads/main"}, sha=head)
    assert job.succeeded, job.log
    assert job.step("Apply").outputs["has-changes"] == "true" and job.step("Apply").outputs["exit-code"] == "0"
    assert set(models_by_name(engine)) == {"nomic-embed", "gpt-4o-mini"}
    events = audit_events(engine)
    assert {(e["source_revision"], e["environment"], e["actor"]) for e in events} == {(head, "production", "octocat")}
    assert "Apply complete: 2 created" in job.summary and CANARY_KEY not in job.log + job.summary

    again = simulated.run(TEMPLATES / "registry-apply.yml", event_name="push", event={"ref": "refs/heads/main"}, sha=head)
    assert again.succeeded, again.log
    assert again.step("Apply").outputs["has-changes"] == "false"
    assert len(audit_events(engine)) == len(events)


def test_a_rerun_of_an_older_apply_run_applies_nothing(
    workspace: Path, tmp_path: Path, fake_github: FakeGitHub, database_url: str, engine: Any
) -> None:
    head = _commit(workspace)
    before = snapshot(engine)
    simulated = runner(workspace, tmp_path, fake_github, all_secrets(database_url))
    job = simulated.run(TEMPLATES / "registry-apply.yml", event_name="push", event={"ref": "refs/heads/main"}, sha=SHA)
    assert not job.succeeded
    assert f"this run is for {SHA}, but main is at {head} now" in job.log
    assert snapshot(engine) == before


def test_on_call_dry_run_changes_nothing_and_reports_in_the_summary(
    workspace: Path, tmp_path: Path, fake_github: FakeGitHub, database_url: str, engine: Any
) -> None:
    before = snapshot(engine)
    simulated = runner(workspace, tmp_path, fake_github, all_secrets(database_url))
    job = simulated.run(TEMPLATES / "registry-oncall.yml", event_name="workflow_dispatch", event={}, sha=SHA, inputs={"action": "dry-run"})
    assert job.succeeded, job.log
    assert "DRY RUN: everything was rolled back; nothing was written." in job.summary
    assert "Testing connections of 2 models" in job.summary
    assert snapshot(engine) == before


def test_drift_check_opens_one_issue_and_closes_it_once_clean(
    workspace: Path, tmp_path: Path, fake_github: FakeGitHub, database_url: str
) -> None:
    simulated = runner(workspace, tmp_path, fake_github, all_secrets(database_url))
    for _ in range(2):
        drift = simulated.run(TEMPLATES / "registry-drift.yml", event_name="schedule", event={}, sha=SHA)
        assert drift.succeeded, drift.log
        assert drift.step("Drift").outputs["has-changes"] == "true"
    [issue] = fake_github.issues()
    assert issue["state"] == "open" and issue["title"] == "llm-registry drift: production differs from git"

    applied = simulated.run(TEMPLATES / "registry-oncall.yml", event_name="workflow_dispatch", event={}, sha=SHA, inputs={"action": "apply"})
    assert applied.succeeded, applied.log
    clean = simulated.run(TEMPLATES / "registry-drift.yml", event_name="schedule", event={}, sha=SHA)
    assert clean.succeeded, clean.log
    assert clean.step("Drift").outputs["has-changes"] == "false"
    assert [i["state"] for i in fake_github.issues()] == ["closed"]


def test_no_job_a_pull_request_can_rewrite_holds_the_passphrase_or_a_provider_key() -> None:
    """A `pull_request` workflow runs the PR's own copy of the file: what it may read, the PR
    author may read. The passphrase and the keys live in environments limited to main."""
    import re

    import yaml

    for path in sorted(TEMPLATES.glob("*.yml")):
        text = path.read_text()
        workflow = yaml.safe_load(text)
        triggers = workflow.get(True) or workflow.get("on")  # PyYAML reads the key `on` as True
        for name, job in workflow["jobs"].items():
            secrets_used = set(re.findall(r"secrets\.([A-Z0-9_]+)", yaml.safe_dump(job)))
            sensitive = {s for s in secrets_used if s == "LLM_REGISTRY_ENCRYPTION_KEY" or s.endswith("_API_KEY") or s == "LLM_REGISTRY_DATABASE_URL"}
            if "pull_request" in triggers or "pull_request_target" in triggers:
                assert sensitive == set(), f"{path.name}:{name} gives a pull request {sorted(sensitive)}"
            elif sensitive:
                assert job.get("environment"), f"{path.name}:{name} reads {sorted(sensitive)} outside an environment"
