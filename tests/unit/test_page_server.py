"""The serve application as a WSGI callable (no socket): methods, paths, errors, headers."""

from __future__ import annotations

from typing import Any

from reconciler.page.render import content_security_policy
from reconciler.page.server import PageUnavailable, make_app


def call(app: Any, method: str = "GET", path: str = "/", host: str = "127.0.0.1:8080") -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(app({"REQUEST_METHOD": method, "PATH_INFO": path, "HTTP_HOST": host}, start_response))
    return seen["status"], seen["headers"], body


def test_every_request_renders_afresh() -> None:
    calls = []

    def render() -> str:
        calls.append(1)
        return f"<p>page {len(calls)}</p>"

    app = make_app(render, allowed_hosts=frozenset({"127.0.0.1"}))
    assert call(app)[2] == b"<p>page 1</p>"
    assert call(app, path="/index.html")[2] == b"<p>page 2</p>"
    status, headers, body = call(app, "HEAD")
    assert (status, body, headers["Content-Length"]) == ("200 OK", b"", "13")
    assert call(make_app(render, allowed_hosts=frozenset({"::1"})), host="[::1]:8080")[2] == b"<p>page 4</p>"


def test_refusals_render_nothing() -> None:
    def render() -> str:
        raise AssertionError("must not be called")

    app = make_app(render, allowed_hosts=frozenset({"127.0.0.1"}))
    assert call(app, "POST")[0] == "405 Method Not Allowed"
    assert call(app, "get")[0] == "405 Method Not Allowed"  # methods are case-sensitive
    assert call(app, path="/favicon.ico")[0] == "404 Not Found"
    assert call(app, host="evil.example:8080")[0] == "421 Misdirected Request"


def test_an_unavailable_database_is_a_503_with_headers() -> None:
    def render() -> str:
        raise PageUnavailable("cannot read the registry database (OperationalError); see the server's log")

    status, headers, body = call(make_app(render))
    assert status == "503 Service Unavailable"
    assert body == b"503: cannot read the registry database (OperationalError); see the server's log\n"
    assert headers["Content-Security-Policy"] == content_security_policy(header=True)
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
