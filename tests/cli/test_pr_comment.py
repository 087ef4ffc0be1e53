"""`plan --pr-comment` and `plan --drift-issue` against real PostgreSQL and a fake GitHub API on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.github import sticky_key
from tests.cli.applyutil import APPLY_ENV, write_story_registry
from tests.factories import CANARY_KEY
from tests.fakes.github import FakeGitHub

pytestmark = pytest.mark.db


@pytest.fixture
def registry_dir(tmp_path: Path, fake_provider: Any) -> Path:
    # an openai model with top_k: a per-model warning the annotations must carry
    return write_story_registry(tmp_path / "registry.d", fake_provider)


def plan_on_pr(run_cli: Any, registry_dir: Path, database_url: str, fake: FakeGitHub, tmp_path: Path, *args: str) -> Any:
    summary = tmp_path / "step-summary.md"
    env = {**APPLY_ENV, **fake.environ(pr=7), "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_SHA": "a" * 40}
    return run_cli("plan", str(registry_dir), "--database-url", database_url, "--pr-comment", "--environment", "production", *args, env=env)


def test_two_plan_runs_leave_exactly_one_comment_updated(
    run_cli: Any, registry_dir: Path, database_url: str, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    first = plan_on_pr(run_cli, registry_dir, database_url, fake_github, tmp_path)
    assert first.exit_code == 0, first.output
    assert "Posted the plan comment on pull request #7 (1 part)." in first.stderr
    second = plan_on_pr(run_cli, registry_dir, database_url, fake_github, tmp_path, "--detailed-exitcode")
    assert second.exit_code == 2, second.output
    assert "Updated the plan comment on pull request #7 (1 part)." in second.stderr

    comments = fake_github.comments(7)
    assert len(comments) == 1
    body = comments[0]
    key = sticky_key([str(registry_dir)], "production")
    assert body.startswith(f"<!-- llm-registry-plan key={key} part=1 -->\n### llm-registry plan")
    assert "environment <code>production</code> · revision <code>aaaaaaaaaaaa</code>" in body
    assert "**Plan: 2 to create, 0 to update, 0 to delete, 0 blocked.**" in body
    # who am I (refused to a workflow token), the comments, then one write each run
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in fake_github.requests] == [
        ("GET", "user"), ("GET", "comments"), ("POST", "comments"),
        ("GET", "user"), ("GET", "comments"), ("PATCH", str(fake_github.state.comments[7][0]["id"])),
    ]


def test_one_run_gives_comment_annotations_summary_and_exit_code(
    run_cli: Any, registry_dir: Path, database_url: str, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    result = plan_on_pr(run_cli, registry_dir, database_url, fake_github, tmp_path)
    assert result.exit_code == 0, result.output
    # the text plan for the log, then the annotations, warnings of each model included
    assert "Target: database " in result.stdout
    assert "::notice title=llm-registry plan::Plan: 2 to create" in result.stdout
    warning = [line for line in result.stdout.splitlines() if line.startswith("::warning file=")]
    assert len(warning) == 1 and ",line=27,col=12," in warning[0] and warning[0].endswith("::openai does not offer top_k; it will be stored but has no effect")
    summary = (tmp_path / "step-summary.md").read_text()
    assert summary.strip() == fake_github.comments(7)[0].split("\n", 1)[1].strip()
    assert "Wrote the plan to the job summary ($GITHUB_STEP_SUMMARY)." in result.stderr.splitlines()
    for text in (result.output, summary, fake_github.comments(7)[0]):
        assert fake_github.token not in text and CANARY_KEY not in text


def test_a_comment_that_github_refuses_fails_the_run_without_the_token(
    run_cli: Any, registry_dir: Path, database_url: str, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    fake_github.read_only = True
    result = plan_on_pr(run_cli, registry_dir, database_url, fake_github, tmp_path, "--detailed-exitcode")
    assert result.exit_code == 1  # not 2: whatever the PR shows may be an older plan
    assert "error: could not post the plan to GitHub: GitHub API " in result.stderr and "HTTP 403" in result.stderr
    assert "::error title=llm-registry plan::could not post the plan to GitHub" in result.stdout  # an annotation too
    assert fake_github.token not in result.output
    assert "Plan: 2 to create" in result.stdout  # the plan itself was still shown
    as_github = plan_on_pr(run_cli, registry_dir, database_url, fake_github, tmp_path, "--format", "github")
    assert as_github.exit_code == 1
    assert as_github.stdout.count("::error title=llm-registry plan::could not post the plan to GitHub") == 1
    assert as_github.stdout.count("::notice title=llm-registry plan::") == 1  # the plan's annotations once


def test_a_blocked_plan_stays_exit_3_when_github_refuses_the_comment(
    run_cli: Any, registry_dir: Path, database_url: str, engine: Any, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    from tests.cli.applyutil import models_by_name
    from tests.dbutil import insert_knowledge_base

    assert run_cli("apply", str(registry_dir), "--database-url", database_url, "--auto-approve", env=APPLY_ENV).exit_code == 0
    with engine.begin() as connection:
        insert_knowledge_base(connection, "support-kb", embedding_model_id=models_by_name(engine)["nomic-embed"]["id"])
    (registry_dir / "models.yaml").write_text((registry_dir / "models.yaml").read_text().replace("nomic-embed-text", "mxbai-embed-large"))
    fake_github.read_only = True
    result = plan_on_pr(run_cli, registry_dir, database_url, fake_github, tmp_path, "--detailed-exitcode")
    assert result.exit_code == 3, result.output  # blocked: never hidden behind the comment's failure
    assert "could not post the plan to GitHub" in result.stderr


def test_a_json_plan_with_a_pr_comment_keeps_stdout_to_the_document(
    run_cli: Any, registry_dir: Path, database_url: str, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    import json

    result = plan_on_pr(run_cli, registry_dir, database_url, fake_github, tmp_path, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"]["create"] == 2  # no annotation line beside it (docs/cli.md)
    assert len(fake_github.comments(7)) == 1


def test_pr_without_pr_comment_is_a_usage_error(run_cli: Any, registry_dir: Path, database_url: str) -> None:
    result = run_cli("plan", str(registry_dir), "--database-url", database_url, "--pr", "3", env=APPLY_ENV)
    assert result.exit_code == 1 and "--pr goes with --pr-comment" in result.stderr


def test_drift_issue_opened_on_changes_and_closed_once_clean(
    run_cli: Any, registry_dir: Path, database_url: str, fake_github: FakeGitHub
) -> None:
    env = {**APPLY_ENV, **fake_github.environ(pr=None)}
    drift = run_cli("plan", str(registry_dir), "--database-url", database_url, "--detailed-exitcode", "--drift-issue", "--environment", "production", env=env)
    assert drift.exit_code == 2, drift.output
    assert "Drift: opened issue #1." in drift.stderr
    [issue] = fake_github.issues()
    assert issue["title"] == "llm-registry drift: production differs from git" and issue["state"] == "open"

    applied = run_cli("apply", str(registry_dir), "--database-url", database_url, "--auto-approve", env=APPLY_ENV)
    assert applied.exit_code == 0, applied.output
    clean = run_cli("plan", str(registry_dir), "--database-url", database_url, "--detailed-exitcode", "--drift-issue", "--environment", "production", env=env)
    assert clean.exit_code == 0, clean.output
    assert "Drift: closed issue #1." in clean.stderr
    assert [i["state"] for i in fake_github.issues()] == ["closed"]
