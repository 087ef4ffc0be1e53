"""reconciler.github against a fake GitHub REST API on loopback: sticky comments, parts, drift issues, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.errors import RegistryError
from reconciler.github import (
    COMMENT_LIMIT,
    GitHubClient,
    context_from_environment,
    plan_marker,
    post_sticky_comment,
    pull_request_number,
    report_drift,
    sticky_key,
)
from tests.fakes.github import FakeGitHub

KEY = sticky_key(["registry.d"], "production")


def client_for(fake: FakeGitHub) -> GitHubClient:
    return GitHubClient(context_from_environment(fake.environ(pr=7)))


def test_two_runs_leave_one_comment_updated_in_place(fake_github: FakeGitHub) -> None:
    client = client_for(fake_github)
    first = post_sticky_comment(client, 7, KEY, ["plan one"])
    second = post_sticky_comment(client, 7, KEY, ["plan two"])
    assert fake_github.comments(7) == [f"{plan_marker(KEY, 1)}\nplan two"]
    assert second.updated == first.created and second.created == () and second.deleted == ()


def test_other_comments_and_other_environments_are_left_alone(fake_github: FakeGitHub) -> None:
    client = client_for(fake_github)
    fake_github.add_comment(7, "LGTM")
    fake_github.add_comment(7, f"quoting: {plan_marker(KEY, 1)}")  # the marker not at the start: not ours
    staging = sticky_key(["registry.d"], "staging")
    post_sticky_comment(client, 7, staging, ["staging plan"])
    post_sticky_comment(client, 7, KEY, ["production plan"])
    post_sticky_comment(client, 7, KEY, ["production plan, again"])
    assert fake_github.comments(7) == [
        "LGTM",
        f"quoting: {plan_marker(KEY, 1)}",
        f"{plan_marker(staging, 1)}\nstaging plan",
        f"{plan_marker(KEY, 1)}\nproduction plan, again",
    ]


def test_a_comment_with_our_marker_by_someone_else_is_never_updated_or_deleted(fake_github: FakeGitHub) -> None:
    """The marker is predictable: a forged part 1 must not receive the plan (its author could edit it
    afterwards), and a forged part 2 must not be deleted as stale."""
    client = client_for(fake_github)
    forged = [fake_github.add_comment(7, f"{plan_marker(KEY, part)}\nforged plan {part}") for part in (1, 2)]
    earlier = fake_github.add_comment(7, f"{plan_marker(KEY, 2)}\nour stale part", by_us=True)
    result = post_sticky_comment(client, 7, KEY, ["the real plan"])
    assert result.updated == () and result.deleted == (earlier,)
    assert fake_github.comments(7) == [
        f"{plan_marker(KEY, 1)}\nforged plan 1",
        f"{plan_marker(KEY, 2)}\nforged plan 2",
        f"{plan_marker(KEY, 1)}\nthe real plan",
    ]
    assert [c["id"] for c in fake_github.state.comments[7][:2]] == forged


def test_racing_duplicates_are_deleted_and_an_old_marker_without_a_part_is_part_one(fake_github: FakeGitHub) -> None:
    old_format = fake_github.add_comment(7, f"<!-- llm-registry-plan key={KEY} -->\nan older version's comment", by_us=True)
    duplicates = [fake_github.add_comment(7, f"{plan_marker(KEY, 1)}\nrace {i}", by_us=True) for i in range(2)]
    result = post_sticky_comment(client_for(fake_github), 7, KEY, ["the plan"])
    assert result.updated == (old_format,) and sorted(result.deleted) == duplicates and result.created == ()
    assert fake_github.comments(7) == [f"{plan_marker(KEY, 1)}\nthe plan"]


def test_a_long_plan_is_numbered_parts_updated_in_place_and_extra_old_parts_deleted(fake_github: FakeGitHub) -> None:
    client = client_for(fake_github)
    big = ["A" * 60_000, "B" * 60_000, "C" * 10]
    post_sticky_comment(client, 7, KEY, big)
    ids_before = [request.path for request in fake_github.requests if request.method == "POST"]
    assert len(ids_before) == 3
    assert all(len(body) <= COMMENT_LIMIT for body in fake_github.comments(7))

    result = post_sticky_comment(client, 7, KEY, ["short now"])
    assert fake_github.comments(7) == [f"{plan_marker(KEY, 1)}\nshort now"]
    assert len(result.updated) == 1 and len(result.deleted) == 2 and result.created == ()


def test_many_comments_are_read_page_by_page(fake_github: FakeGitHub) -> None:
    fake_github.page_size = 2
    client = client_for(fake_github)
    for i in range(5):
        fake_github.add_comment(7, f"comment {i}")
    post_sticky_comment(client, 7, KEY, ["plan"])  # the 6th comment, on page 3
    post_sticky_comment(client, 7, KEY, ["plan, updated"])
    assert fake_github.comments(7)[-1] == f"{plan_marker(KEY, 1)}\nplan, updated"
    assert len(fake_github.comments(7)) == 6


def test_a_part_over_githubs_limit_is_refused_before_posting(fake_github: FakeGitHub) -> None:
    with pytest.raises(RegistryError, match="over GitHub's 65536"):
        post_sticky_comment(client_for(fake_github), 7, KEY, ["x" * COMMENT_LIMIT])
    assert fake_github.comments(7) == []


def test_a_read_only_token_is_a_clean_error_without_the_token(fake_github: FakeGitHub) -> None:
    fake_github.read_only = True
    with pytest.raises(RegistryError) as raised:
        post_sticky_comment(client_for(fake_github), 7, KEY, ["plan"])
    message = raised.value.message
    assert message.startswith("GitHub API POST ") and "HTTP 403 Resource not accessible by integration" in message
    assert "fork" in message and fake_github.token not in message and fake_github.token not in repr(raised.value)


def test_the_token_goes_only_in_the_authorization_header(fake_github: FakeGitHub) -> None:
    post_sticky_comment(client_for(fake_github), 7, KEY, ["plan"])
    assert {r.authorization for r in fake_github.requests} == {f"Bearer {fake_github.token}"}
    assert all(fake_github.token not in r.path for r in fake_github.requests)
    assert fake_github.token not in repr(client_for(fake_github).context)


def test_the_pull_request_number_comes_from_the_event_or_the_option(fake_github: FakeGitHub, tmp_path: Path) -> None:
    assert pull_request_number(fake_github.environ(pr=42)) == 42
    assert pull_request_number(fake_github.environ(pr=42), 5) == 5
    with pytest.raises(RegistryError, match="not started by a pull request"):
        pull_request_number(fake_github.environ(pr=None))
    with pytest.raises(RegistryError, match="pass --pr N"):
        pull_request_number({})
    for event, number in (({"issue": {"number": 8}}, 8), ({"number": 9, "action": "synchronize"}, 9)):
        (tmp_path / "other.json").write_text(json.dumps(event))  # an issue_comment event; a bare number
        assert pull_request_number({"GITHUB_EVENT_PATH": str(tmp_path / "other.json")}) == number
    broken = tmp_path / "event.json"
    broken.write_text("{not json")
    with pytest.raises(RegistryError, match="cannot read the workflow event"):
        pull_request_number({"GITHUB_EVENT_PATH": str(broken)})


def test_missing_variables_are_named() -> None:
    with pytest.raises(RegistryError, match="GITHUB_REPOSITORY and GITHUB_TOKEN not set"):
        context_from_environment({})


def test_drift_opens_one_issue_updates_it_and_closes_it_when_clean(fake_github: FakeGitHub) -> None:
    client = client_for(fake_github)
    assert report_drift(client, KEY, drifted=True, title="drift", body="first") == "opened issue #1"
    assert report_drift(client, KEY, drifted=True, title="drift", body="second") == "updated issue #1"
    issues = fake_github.issues()
    assert len(issues) == 1 and issues[0]["state"] == "open" and issues[0]["body"].endswith("\nsecond")
    assert [label["name"] for label in issues[0]["labels"]] == ["llm-registry-drift"]
    assert report_drift(client, KEY, drifted=False, title="drift", body="clean") == "closed issue #1"
    assert fake_github.issues()[0]["state"] == "closed"
    assert report_drift(client, KEY, drifted=False, title="drift", body="clean") == "no drift issue open"
    assert report_drift(client, KEY, drifted=True, title="drift", body="again") == "opened issue #2"


def test_a_drift_issue_with_our_marker_by_someone_else_is_left_alone(fake_github: FakeGitHub) -> None:
    from reconciler.github import DRIFT_LABEL, drift_marker

    forged = fake_github.add_issue("drift", f"{drift_marker(KEY)}\nforged", DRIFT_LABEL)
    assert report_drift(client_for(fake_github), KEY, drifted=True, title="drift", body="real") == f"opened issue #{forged + 1}"
    assert report_drift(client_for(fake_github), KEY, drifted=False, title="drift", body="clean") == f"closed issue #{forged + 1}"
    assert {i["number"]: (i["state"], i["body"].rsplit("\n", 1)[1]) for i in fake_github.issues()} == {
        forged: ("open", "forged"), forged + 1: ("closed", "real"),
    }


def test_an_unreachable_api_is_a_clean_error(closed_port_url: str) -> None:
    env = {"GITHUB_API_URL": closed_port_url, "GITHUB_REPOSITORY": "a/b", "GITHUB_TOKEN": "ghs_secret_value"}
    with pytest.raises(RegistryError) as raised:
        GitHubClient(context_from_environment(env)).comments(1)
    assert raised.value.message.startswith(f"GitHub API GET {closed_port_url}/repos/a/b/issues/1/comments failed")
    assert "ghs_secret_value" not in json.dumps(raised.value.message)


def test_whose_comment_is_ours() -> None:
    from reconciler.github import written_by

    me, mallory = {"user": {"login": "me", "type": "User"}}, {"user": {"login": "mallory", "type": "User"}}
    bot = {"user": {"login": "github-actions[bot]", "type": "Bot"}}
    assert written_by(me, "me") and not written_by(mallory, "me") and not written_by(bot, "me")  # a personal token
    assert written_by(bot, None) and not written_by(me, None) and not written_by({}, None)  # a workflow token


def test_a_drift_issue_holds_the_first_part_of_a_long_plan_and_says_it_is_cut(fake_github: FakeGitHub, tmp_path: Path) -> None:
    from reconciler.github import deliver_plan
    from reconciler.plan import compute_plan
    from reconciler.state import RegistryState
    from reconciler.target import Target
    from tests.factories import embedding_model, registry

    plan = compute_plan(registry(*(embedding_model(name=f"m-{i:05d}", description="d" * 40) for i in range(1500))), RegistryState(), {})
    environ = {**fake_github.environ(pr=None), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    done = deliver_plan(plan, Target("db"), environ, directories=["registry.d"], pr_comment=False, pr_number=None, drift_issue=True)
    assert done[-1] == "Drift: opened issue #1."
    [issue] = fake_github.issues()
    body = issue["body"].split("\n", 1)[1]
    assert body.startswith("_Part 1 of ") and body.endswith("\n\n_(plan truncated: see the workflow's job summary)_")
    assert len(issue["body"]) < 65_536
