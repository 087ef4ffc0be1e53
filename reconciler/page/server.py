"""The tiny HTTP server of `llm-registry serve`: the registry page, live and read-only.

Standard library only (wsgiref, one thread per request): the page is one document
rendered per request, nothing here needs more. The application answers GET and HEAD
of `/` and nothing else (other methods 405, other paths 404), sends a strict
Content-Security-Policy and the usual hardening headers with every response, and,
bound to a loopback address, refuses requests whose Host header names anything but
this machine (a DNS-rebinding page in someone's browser cannot read it).
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from socketserver import ThreadingMixIn
from typing import Any, Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from reconciler.diagnostics import escape_text
from reconciler.page.render import content_security_policy

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

ALLOWED_METHODS = ("GET", "HEAD")
PAGE_PATHS = ("/", "/index.html")
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


class PageUnavailable(Exception):
    """The page cannot be built now (database down, schema changed); the message is safe to show."""


def security_headers() -> list[tuple[str, str]]:
    """Headers every response carries: CSP (by hash, no framing), no sniffing, no referrer, no caching."""
    return [
        ("Content-Security-Policy", content_security_policy(header=True)),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Cross-Origin-Resource-Policy", "same-origin"),
        ("Cache-Control", "no-store"),
    ]


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts_for(bind_host: str, extra: Iterable[str] = ()) -> frozenset[str] | None:
    """Host header names to accept: loopback names (plus `extra`) when bound to loopback, else any (None).

    With `extra` given (names a proxy puts in the Host header), only those and the
    loopback names are accepted wherever the server is bound.
    """
    extra = frozenset(name.lower() for name in extra)
    if is_loopback(bind_host) or extra:
        return LOOPBACK_NAMES | {bind_host.strip("[]").lower()} | extra
    return None


def _host_name(header: str) -> str:
    """The name part of a Host header: `[::1]:8080` -> `::1`, `Example:80` -> `example`."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def make_app(render_page: Callable[[], str], *, allowed_hosts: frozenset[str] | None = None) -> WSGIApp:
    """The WSGI application: `render_page()` is called on every GET/HEAD of `/` (fresh data each reload)."""

    def respond(start_response: Callable[..., Any], status: str, body: bytes, content_type: str, method: str, extra: list[tuple[str, str]] | None = None) -> list[bytes]:
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        start_response(status, headers + security_headers() + (extra or []))
        return [] if method == "HEAD" else [body]

    def text(message: str) -> bytes:
        return (message + "\n").encode("utf-8")

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")  # case-sensitive (RFC 9110): "get" is not GET
        plain = "text/plain; charset=utf-8"
        if method not in ALLOWED_METHODS:
            allow = [("Allow", ", ".join(ALLOWED_METHODS))]
            return respond(start_response, "405 Method Not Allowed", text("405: this page is read-only (GET, HEAD)."), plain, method, allow)
        if allowed_hosts is not None and _host_name(environ.get("HTTP_HOST", "")) not in allowed_hosts:
            return respond(start_response, "421 Misdirected Request", text("421: unknown Host; see --allow-host."), plain, method)
        if environ.get("PATH_INFO", "/") not in PAGE_PATHS:
            return respond(start_response, "404 Not Found", text("404: the registry page is at /."), plain, method)
        try:
            page = render_page()
        except PageUnavailable as error:
            return respond(start_response, "503 Service Unavailable", text(f"503: {error}"), plain, method)
        return respond(start_response, "200 OK", page.encode("utf-8"), "text/html; charset=utf-8", method)

    return app


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _ThreadingWSGIServer6(_ThreadingWSGIServer):
    address_family = socket.AF_INET6


class _Handler(WSGIRequestHandler):
    """One log line per request on stderr, control characters made visible (the path is the client's)."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        sys.stderr.write(escape_text(f"{self.address_string()} - {format % args}") + "\n")


def create_server(app: WSGIApp, host: str, port: int) -> WSGIServer:
    """Bind `host:port` (port 0: any free port) and return the server, not yet serving."""
    server_class = _ThreadingWSGIServer6 if ":" in host.strip("[]") else _ThreadingWSGIServer
    return make_server(host.strip("[]"), port, app, server_class=server_class, handler_class=_Handler)
