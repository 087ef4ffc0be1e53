"""GitHub delivery: one sticky PR comment per registry and environment, one drift issue, the step summary.

Talks to the GitHub REST API with the standard library (urllib): the few calls
below do not justify an HTTP dependency. Where, who and which pull request come
from the variables GitHub Actions sets: `GITHUB_API_URL`, `GITHUB_REPOSITORY`,
`GITHUB_TOKEN` (passed to the step as `env:`), and the PR number from the event
payload at `GITHUB_EVENT_PATH` (or `--pr N`).

Sticky comments: every comment we write starts with a hidden marker,
`<!-- llm-registry-plan key=<key> part=<i> -->`, where the key is a digest of the
registry directories and the environment. A second run finds its comments by that
marker and updates them in place; a plan too long for one comment (GitHub's limit
is 65,536 characters) is posted as numbered parts, and parts an earlier, longer
plan left over are deleted. The drift issue is found the same way, by its own marker.

The token is sent only in the Authorization header: no message, exception or log
line here ever contains it.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from reconciler.errors import RegistryError

if TYPE_CHECKING:
    from reconciler.plan import Plan
    from reconciler.target import Target

API_URL_ENV = "GITHUB_API_URL"
REPOSITORY_ENV = "GITHUB_REPOSITORY"
TOKEN_ENV = "GITHUB_TOKEN"
EVENT_PATH_ENV = "GITHUB_EVENT_PATH"
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
DEFAULT_API_URL = "https://api.github.com"
# GitHub refuses a comment body over this many characters.
COMMENT_LIMIT = 65_536
# At most this many comments per plan (10 x 60,000 characters): more would meet GitHub's
# secondary rate limits on every push; the last one says what was left out.
MAX_COMMENT_PARTS = 10
# The job summary's parts: GitHub drops a step summary over 1 MiB.
MAX_SUMMARY_PARTS = 15
_TIMEOUT = 30
_MARKER = re.compile(r"<!-- llm-registry-(plan|drift) key=([0-9a-f]{16})(?: part=(\d+))? -->")


@dataclass(frozen=True)
class GitHubContext:
    """Where to talk to: the API, the repository (`owner/name`) and the token."""

    api_url: str
    repository: str
    token: str

    def __repr__(self) -> str:  # never the token, even in a debugger or a trace
        return f"GitHubContext(api_url={self.api_url!r}, repository={self.repository!r}, token=***)"


def context_from_environment(environ: Mapping[str, str]) -> GitHubContext:
    """The API context from GitHub Actions' variables; a RegistryError names any missing one."""
    missing = [name for name in (REPOSITORY_ENV, TOKEN_ENV) if not environ.get(name)]
    if missing:
        raise RegistryError(
            f"cannot talk to GitHub: {' and '.join(missing)} not set (in a workflow, pass "
            "`GITHUB_TOKEN: ${{ github.token }}` in the step's env:)"
        )
    return GitHubContext(
        api_url=(environ.get(API_URL_ENV) or DEFAULT_API_URL).rstrip("/"),
        repository=environ[REPOSITORY_ENV],
        token=environ[TOKEN_ENV],
    )


def pull_request_number(environ: Mapping[str, str], option: int | None = None) -> int:
    """`--pr N`, else the pull request of the event that started the workflow."""
    if option is not None:
        return option
    path = environ.get(EVENT_PATH_ENV)
    if not path:
        raise RegistryError(f"no pull request: pass --pr N (or run in a pull_request workflow, which sets {EVENT_PATH_ENV})")
    try:
        event = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        raise RegistryError(f"cannot read the workflow event at {path} ({EVENT_PATH_ENV}); pass --pr N") from None
    for candidate in (event.get("pull_request"), event.get("issue")):
        if isinstance(candidate, dict) and isinstance(candidate.get("number"), int):
            return candidate["number"]
    if isinstance(event.get("number"), int):
        return event["number"]
    raise RegistryError("the workflow was not started by a pull request (no number in its event): pass --pr N")


def sticky_key(directories: Sequence[str], environment: str | None) -> str:
    """The key of a registry's comment: the same directories and environment, the same comment."""
    identity = json.dumps([list(directories), environment or ""])
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def plan_marker(key: str, part: int) -> str:
    """The hidden first line of a plan comment part."""
    return f"<!-- llm-registry-plan key={key} part={part} -->"


def drift_marker(key: str) -> str:
    """The hidden first line of a drift issue."""
    return f"<!-- llm-registry-drift key={key} -->"


class GitHubClient:
    """The REST calls we need, over urllib. Errors become RegistryErrors without the token."""

    def __init__(self, context: GitHubContext) -> None:
        self.context = context

    def _request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> tuple[Any, Mapping[str, str]]:
        url = path if path.startswith(("http://", "https://")) else f"{self.context.api_url}{path}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/vnd.github+json")
        request.add_header("X-GitHub-Api-Version", "2022-11-28")
        request.add_header("User-Agent", "llm-registry")
        request.add_header("Authorization", f"Bearer {self.context.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        where = f"{method} {url.split('?')[0]}"
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
                raw = response.read()
                headers = {k.lower(): v for k, v in response.headers.items()}
        except urllib.error.HTTPError as error:
            reason = _error_message(error)
            hint = " (a pull request from a fork gets a read-only token)" if error.code in (401, 403, 404) else ""
            raise RegistryError(f"GitHub API {where} failed: HTTP {error.code} {reason}{hint}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise RegistryError(f"GitHub API {where} failed: {type(error).__name__}: {reason}") from None
        return (json.loads(raw) if raw.strip() else None), headers

    def _paginated(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        next_url: str | None = f"{path}{'&' if '?' in path else '?'}per_page=100"
        while next_url:
            page, headers = self._request("GET", next_url)
            items.extend(page or [])
            next_url = _next_link(headers.get("link", ""))
        return items

    def login(self) -> str | None:
        """The login the token writes as, or None when the token may not ask (a workflow's
        GITHUB_TOKEN or an app's installation token: GitHub answers 403 to GET /user)."""
        try:
            user, _ = self._request("GET", "/user")
        except RegistryError:
            return None
        return str(user["login"]) if isinstance(user, dict) and user.get("login") else None

    def comments(self, number: int) -> list[dict[str, Any]]:
        """Every comment of issue or PR `number`, oldest first."""
        return self._paginated(f"/repos/{self.context.repository}/issues/{number}/comments")

    def create_comment(self, number: int, body: str) -> int:
        """Post a comment; its id."""
        created, _ = self._request("POST", f"/repos/{self.context.repository}/issues/{number}/comments", {"body": body})
        return int(created["id"])

    def update_comment(self, comment_id: int, body: str) -> None:
        """Replace a comment's body."""
        self._request("PATCH", f"/repos/{self.context.repository}/issues/comments/{comment_id}", {"body": body})

    def delete_comment(self, comment_id: int) -> None:
        """Delete a comment."""
        self._request("DELETE", f"/repos/{self.context.repository}/issues/comments/{comment_id}")

    def open_issues(self, label: str) -> list[dict[str, Any]]:
        """Open issues (not PRs) with `label`."""
        issues = self._paginated(f"/repos/{self.context.repository}/issues?state=open&labels={label}")
        return [issue for issue in issues if "pull_request" not in issue]

    def create_issue(self, title: str, body: str, label: str) -> int:
        """Open an issue; its number."""
        created, _ = self._request("POST", f"/repos/{self.context.repository}/issues", {"title": title, "body": body, "labels": [label]})
        return int(created["number"])

    def update_issue(self, number: int, **fields: Any) -> None:
        """Change an issue's fields (title, body, state)."""
        self._request("PATCH", f"/repos/{self.context.repository}/issues/{number}", fields)


def _error_message(error: urllib.error.HTTPError) -> str:
    try:
        payload = json.loads(error.read() or b"{}")
    except ValueError:
        return error.reason or ""
    return str(payload.get("message") or error.reason or "")[:200]


def _next_link(link_header: str) -> str | None:
    for part in link_header.split(","):
        match = re.match(r'\s*<([^>]+)>\s*;\s*rel="next"', part)
        if match:
            return match.group(1)
    return None


@dataclass(frozen=True)
class StickyResult:
    """What `post_sticky_comment` did: comment ids created, updated and deleted."""

    created: tuple[int, ...]
    updated: tuple[int, ...]
    deleted: tuple[int, ...]


def written_by(item: Mapping[str, Any], login: str | None) -> bool:
    """Whether a comment or issue was written by the token's user: `login` when known, else
    a bot (a workflow token writes as github-actions[bot], an app's as <app>[bot]). The
    marker alone is no proof: anyone may write it, and the plan must not go into, or
    delete, a comment someone else can edit."""
    author = item.get("user") or {}
    if login is not None:
        return author.get("login") == login
    return author.get("type") == "Bot"


def post_sticky_comment(client: GitHubClient, number: int, key: str, parts: Sequence[str]) -> StickyResult:
    """Create or update the comment(s) of `key` on PR `number`: part i in place, extra old parts deleted.

    Only comments the token's user wrote are ours (`written_by`), whatever marker others carry.
    """
    login = client.login()
    ours: dict[int, list[int]] = {}
    for comment in client.comments(number):
        match = _MARKER.match(comment.get("body") or "")
        if match and match.group(1) == "plan" and match.group(2) == key and written_by(comment, login):
            ours.setdefault(int(match.group(3) or 1), []).append(int(comment["id"]))
    created: list[int] = []
    updated: list[int] = []
    for index, text in enumerate(parts, 1):
        body = f"{plan_marker(key, index)}\n{text}"
        if len(body) > COMMENT_LIMIT:
            raise RegistryError(f"plan comment part {index} is {len(body)} characters, over GitHub's {COMMENT_LIMIT}")
        existing = ours.pop(index, [])
        if existing:
            client.update_comment(existing[0], body)
            updated.append(existing[0])
            ours[index] = existing[1:]  # duplicates (two racing runs): deleted below
        else:
            created.append(client.create_comment(number, body))
    deleted = [comment_id for ids in ours.values() for comment_id in ids]
    for comment_id in deleted:
        client.delete_comment(comment_id)
    return StickyResult(tuple(created), tuple(updated), tuple(deleted))


DRIFT_LABEL = "llm-registry-drift"


def report_drift(client: GitHubClient, key: str, *, drifted: bool, title: str, body: str) -> str:
    """Open or update the one drift issue of `key` when drifted; close it when clean. Says what it did."""
    login = client.login()
    issues = [
        i for i in client.open_issues(DRIFT_LABEL) if (i.get("body") or "").startswith(drift_marker(key)) and written_by(i, login)
    ]
    full_body = f"{drift_marker(key)}\n{body}"
    if drifted:
        if issues:
            client.update_issue(issues[0]["number"], title=title, body=full_body)
            return f"updated issue #{issues[0]['number']}"
        return f"opened issue #{client.create_issue(title, full_body, DRIFT_LABEL)}"
    for issue in issues:
        client.update_issue(issue["number"], state="closed", state_reason="completed")
    return f"closed issue #{issues[0]['number']}" if issues else "no drift issue open"


def append_step_summary(environ: Mapping[str, str], markdown: str) -> bool:
    """Append to the job's summary ($GITHUB_STEP_SUMMARY); False when there is none."""
    path = environ.get(STEP_SUMMARY_ENV)
    if not path:
        return False
    with open(path, "a", encoding="utf-8") as summary:
        summary.write(markdown.rstrip("\n") + "\n\n")
    return True


def deliver_plan(
    plan: "Plan",
    target: "Target",
    environ: Mapping[str, str],
    *,
    directories: Sequence[str],
    pr_comment: bool,
    pr_number: int | None,
    drift_issue: bool,
) -> list[str]:
    """Post the plan where GitHub users read it; returns one line per thing done, for the log.

    The same markdown goes to the PR comment (`pr_comment`, at most MAX_COMMENT_PARTS
    comments), to the drift issue (`drift_issue`, its first part) and to the job summary
    (at most MAX_SUMMARY_PARTS parts). Raises RegistryError when GitHub refuses.
    """
    from reconciler.render import render_markdown_parts

    summary = render_markdown_parts(plan, target=target, max_parts=MAX_SUMMARY_PARTS)
    parts = summary if len(summary) <= MAX_COMMENT_PARTS else render_markdown_parts(plan, target=target, max_parts=MAX_COMMENT_PARTS)
    done: list[str] = []
    if append_step_summary(environ, "\n".join(summary)):
        done.append(f"Wrote the plan to the job summary (${STEP_SUMMARY_ENV}).")
    key = sticky_key(directories, target.environment)
    if pr_comment:
        context = context_from_environment(environ)
        number = pull_request_number(environ, pr_number)
        result = post_sticky_comment(GitHubClient(context), number, key, parts)
        count = len(parts)
        verb = "Updated" if result.updated and not result.created else "Posted"
        extra = f", deleted {len(result.deleted)} stale part{'s' * (len(result.deleted) != 1)}" if result.deleted else ""
        done.append(f"{verb} the plan comment on pull request #{number} ({count} part{'s' * (count != 1)}{extra}).")
    if drift_issue:
        context = context_from_environment(environ)
        where = target.environment or ", ".join(directories)
        title = f"llm-registry drift: {where} differs from git"
        body = "\n".join(parts) if len(parts) == 1 else parts[0] + "\n\n_(plan truncated: see the workflow's job summary)_"
        done.append("Drift: " + report_drift(GitHubClient(context), key, drifted=plan.has_changes, title=title, body=body) + ".")
    return done
