"""A fake GitHub REST API on 127.0.0.1: the issue-comment and issue endpoints llm-registry uses.

A real HTTP server (not a mock of the client), so that the code under test runs its
real urllib requests: headers, JSON bodies, pagination by `Link` header, HTTP errors.
It keeps issues and comments in memory and records every request (method, path,
Authorization header) for assertions. Requests without `Authorization: Bearer
<token>` get 401; `read_only = True` answers writes with 403, as GitHub does for a
pull request from a fork.

    with FakeGitHub(token="t0ken") as github:
        env = github.environ(pr=7)     # GITHUB_API_URL, GITHUB_REPOSITORY, GITHUB_TOKEN, GITHUB_EVENT_PATH
        ...
        github.comments(7)             # bodies, oldest first
"""

from __future__ import annotations

import itertools
import json
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

REPOSITORY = "acme/kb-registry"


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    authorization: str


# Who the workflow's GITHUB_TOKEN writes as.
BOT = {"login": "github-actions[bot]", "type": "Bot"}


@dataclass
class _State:
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # issue number -> comments
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    ids: Any = field(default_factory=lambda: itertools.count(1001))
    numbers: Any = field(default_factory=lambda: itertools.count(1))


class FakeGitHub:
    """The fake API server; a context manager that starts and stops it."""

    def __init__(self, token: str = "ghs_fake_token", page_size: int = 30) -> None:
        self.token = token
        self.page_size = page_size  # small pages exercise pagination
        self.read_only = False
        self.state = _State()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._event_dir = tempfile.TemporaryDirectory(prefix="fake-github-")

    # -- lifecycle

    def __enter__(self) -> "FakeGitHub":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        fake = self

        class Handler(_Handler):
            github = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Stop the server and remove the event files."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._event_dir.cleanup()

    @property
    def url(self) -> str:
        """The API's base URL (GITHUB_API_URL)."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- what a workflow step sees

    def event_file(self, pr: int | None) -> str:
        """A GITHUB_EVENT_PATH payload: a pull_request event for `pr`, else a push event."""
        path = Path(self._event_dir.name) / f"event-{pr}.json"
        payload = {"pull_request": {"number": pr}, "number": pr} if pr is not None else {"ref": "refs/heads/main"}
        path.write_text(json.dumps(payload))
        return str(path)

    def environ(self, pr: int | None = None) -> dict[str, str]:
        """The variables GitHub Actions gives a step, pointing at this server."""
        return {
            "GITHUB_API_URL": self.url,
            "GITHUB_REPOSITORY": REPOSITORY,
            "GITHUB_TOKEN": self.token,
            "GITHUB_EVENT_PATH": self.event_file(pr),
        }

    # -- inspection and seeding

    def comments(self, number: int) -> list[str]:
        """Bodies of the comments on issue/PR `number`, oldest first."""
        with self._lock:
            return [c["body"] for c in self.state.comments.get(number, [])]

    def add_comment(self, number: int, body: str, *, by_us: bool = False) -> int:
        """A comment somebody else wrote (a user), or the workflow's bot with `by_us`; its id."""
        with self._lock:
            comment = {"id": next(self.state.ids), "body": body, "user": BOT if by_us else {"login": "someone", "type": "User"}}
            self.state.comments.setdefault(number, []).append(comment)
            return comment["id"]

    def add_issue(self, title: str, body: str, label: str) -> int:
        """An open issue somebody else opened; its number."""
        with self._lock:
            number = next(self.state.numbers)
            self.state.issues[number] = {
                "number": number, "title": title, "body": body, "state": "open",
                "labels": [{"name": label}], "user": {"login": "someone", "type": "User"},
            }  # fmt: skip
            return number

    def issues(self) -> list[dict[str, Any]]:
        """Every issue (open and closed)."""
        with self._lock:
            return [dict(issue) for issue in self.state.issues.values()]

    @property
    def requests(self) -> list[Recorded]:
        """Every request received."""
        with self._lock:
            return list(self.state.requests)


class _Handler(BaseHTTPRequestHandler):
    github: FakeGitHub

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
        body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def _handle(self, method: str) -> None:
        fake = self.github
        parsed = urlparse(self.path)
        parts = parsed.path.strip("/").split("/")
        query = parse_qs(parsed.query)
        with fake._lock:
            fake.state.requests.append(Recorded(method, parsed.path, self.headers.get("Authorization", "")))
        if not self.headers.get("User-Agent"):  # as GitHub refuses a request without one
            return self._send(403, {"message": "Request forbidden by administrative rules. Please make sure your request has a User-Agent header"})
        if self.headers.get("Authorization") != f"Bearer {fake.token}":
            return self._send(401, {"message": "Bad credentials"})
        if parts == ["user"] and method == "GET":  # as GitHub answers it for a workflow's GITHUB_TOKEN
            return self._send(403, {"message": "Resource not accessible by integration"})
        if parts[:3] != ["repos", *REPOSITORY.split("/")] or len(parts) < 4 or parts[3] != "issues":
            return self._send(404, {"message": "Not Found"})
        if method != "GET" and fake.read_only:
            return self._send(403, {"message": "Resource not accessible by integration"})
        rest = parts[4:]
        with fake._lock:
            state = fake.state
            if rest == [] and method == "GET":
                labels = set((query.get("labels") or [""])[0].split(",")) - {""}
                wanted = (query.get("state") or ["open"])[0]
                found = [
                    i for i in state.issues.values()
                    if (wanted == "all" or i["state"] == wanted) and labels <= {label["name"] for label in i["labels"]}
                ]
                return self._page(found, query)
            if rest == [] and method == "POST":
                body = self._body()
                issue = {
                    "number": next(state.numbers), "title": body["title"], "body": body.get("body", ""),
                    "state": "open", "labels": [{"name": name} for name in body.get("labels", [])], "user": BOT,
                }  # fmt: skip
                state.issues[issue["number"]] = issue
                return self._send(201, issue)
            if len(rest) == 1 and rest[0].isdigit() and method == "PATCH":
                issue = state.issues.get(int(rest[0]))
                if issue is None:
                    return self._send(404, {"message": "Not Found"})
                body = self._body()
                issue.update({k: v for k, v in body.items() if k in ("title", "body", "state", "state_reason")})
                return self._send(200, issue)
            if len(rest) == 2 and rest[0].isdigit() and rest[1] == "comments":
                number = int(rest[0])
                if method == "GET":
                    return self._page(state.comments.get(number, []), query)
                if method == "POST":
                    comment = {"id": next(state.ids), "body": self._body()["body"], "user": BOT}
                    state.comments.setdefault(number, []).append(comment)
                    return self._send(201, comment)
            if len(rest) == 2 and rest[0] == "comments" and rest[1].isdigit():
                comment_id = int(rest[1])
                for comments in state.comments.values():
                    for comment in comments:
                        if comment["id"] == comment_id:
                            if method == "PATCH":
                                comment["body"] = self._body()["body"]
                                return self._send(200, comment)
                            if method == "DELETE":
                                comments.remove(comment)
                                return self._send(204)
                return self._send(404, {"message": "Not Found"})
        return self._send(404, {"message": "Not Found"})

    def _page(self, items: list[dict[str, Any]], query: dict[str, list[str]]) -> None:
        size = min(int((query.get("per_page") or ["30"])[0]), self.github.page_size)
        page = int((query.get("page") or ["1"])[0])
        chunk = items[(page - 1) * size : page * size]
        headers = {}
        if page * size < len(items):
            path = urlparse(self.path).path
            following = urlencode({**{k: v[0] for k, v in query.items()}, "per_page": size, "page": page + 1})
            headers["Link"] = f'<{self.github.url}{path}?{following}>; rel="next"'
        self._send(200, [dict(item) for item in chunk], headers)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")
