"""`llm-registry serve`: the page over real HTTP on loopback, read-only, as a browser or curl sees it."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
from typing import Any, Iterator

import pytest

from reconciler.page.render import content_security_policy
from reconciler.page.server import allowed_hosts_for, is_loopback
from reconciler.secrets import key_fingerprint
from tests.dbutil import TEST_PASSPHRASE, insert_model, insert_page_registry
from tests.factories import CANARY_KEY

pytestmark = pytest.mark.db

SERVING = re.compile(r"^Serving the registry page of (?P<database>\S+) at http://(?P<host>[^/]+)/ \(read-only; Ctrl-C to stop\)$")


class Served:
    """A running `llm-registry serve` process and the address it printed."""

    def __init__(self, process: subprocess.Popen[str], host: str, port: int, first_line: str) -> None:
        self.process = process
        self.host = host
        self.port = port
        self.first_line = first_line

    def request(self, method: str, path: str = "/", headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            connection.request(method, path, headers=headers or {})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
        finally:
            connection.close()


def start_serve(database_url: str, *args: str) -> Served:
    """Start the command on a free port and wait for its "Serving ..." line."""
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "serve", "--database-url", database_url, "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline().rstrip("\n")
    match = SERVING.match(line)
    if match is None:
        process.kill()
        raise AssertionError(f"serve did not start: {line!r} {process.communicate(timeout=30)}")
    host, _, port = match.group("host").rpartition(":")
    return Served(process, host.strip("[]"), int(port), line)


def stop(served: Served) -> tuple[int, str, str]:
    served.process.send_signal(signal.SIGINT)
    stdout, stderr = served.process.communicate(timeout=30)
    return served.process.returncode, stdout, stderr


@pytest.fixture
def served(database_url: str, engine: Any) -> Iterator[Served]:
    with engine.begin() as connection:
        insert_page_registry(connection)
    server = start_serve(database_url)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.communicate(timeout=30)


def test_get_serves_the_page_with_a_strict_csp(served: Served, database_url: str) -> None:
    assert served.host == "127.0.0.1"
    assert SERVING.match(served.first_line).group("database") == database_url.replace("+psycopg", "")  # type: ignore[union-attr]
    status, headers, body = served.request("GET")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["content-security-policy"] == content_security_policy(header=True)
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    assert 'data-testid="model-row-nomic-embed"' in body and "<img" not in body
    assert CANARY_KEY not in body and key_fingerprint(CANARY_KEY, TEST_PASSPHRASE) not in body
    head_status, head_headers, head_body = served.request("HEAD")
    assert (head_status, head_body) == (200, "")
    assert int(head_headers["content-length"]) > 1000


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_anything_but_get_and_head_is_405(served: Served, method: str) -> None:
    status, headers, body = served.request(method)
    assert status == 405
    assert headers["allow"] == "GET, HEAD"
    assert headers["content-security-policy"] == content_security_policy(header=True)
    assert body == "405: this page is read-only (GET, HEAD).\n"


def test_other_paths_404_and_foreign_hosts_421(served: Served) -> None:
    assert served.request("GET", "/admin")[0] == 404
    assert served.request("GET", "/", {"Host": f"localhost:{served.port}"})[0] == 200
    status, _, body = served.request("GET", "/", {"Host": "attacker.example"})
    assert (status, body) == (421, "421: unknown Host; see --allow-host.\n")


def test_a_reload_shows_the_database_as_it_is_now(served: Served, engine: Any) -> None:
    assert 'data-testid="model-row-fresh-model"' not in served.request("GET")[2]
    with engine.begin() as connection:
        insert_model(connection, name="fresh-model")
    assert 'data-testid="model-row-fresh-model"' in served.request("GET")[2]


def test_ctrl_c_stops_it_cleanly_and_the_log_names_each_request(served: Served) -> None:
    # a raw request: http.client refuses control characters in a path, an attacker's client does not
    response = b""
    with socket.create_connection((served.host, served.port), timeout=30) as raw:
        raw.sendall(b"GET /?\x1b[31mred HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        while chunk := raw.recv(65536):  # to the end: the server logs a request before it closes
            response += chunk
    assert response.startswith(b"HTTP/1.0 200 ")
    code, stdout, stderr = stop(served)
    assert code == 0, stderr
    assert stdout.strip() == "Stopped."
    assert '"GET /?\\x1b[31mred HTTP/1.1" 200' in stderr
    assert "\x1b" not in stderr and "Traceback" not in stderr


def test_a_database_without_the_schema_is_refused_before_listening(unmigrated_database_url: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "reconciler", "serve", "--database-url", unmigrated_database_url, "--port", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert completed.returncode == 1
    assert completed.stdout == ""
    assert "run `llm-registry db upgrade` first" in completed.stderr


def test_which_hosts_are_accepted() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.8.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("registry.internal")
    assert allowed_hosts_for("127.0.0.1") == {"localhost", "127.0.0.1", "::1"}
    assert allowed_hosts_for("0.0.0.0") is None
    assert allowed_hosts_for("0.0.0.0", ["Registry.Example.com"]) == {"localhost", "127.0.0.1", "::1", "0.0.0.0", "registry.example.com"}


def test_serve_runs_with_the_cyclic_collector_on(run_cli: Any, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The console script turns the collector off for one-shot commands; a server that runs
    # until stopped must turn it back on, or every request's garbage cycles pile up.
    import gc

    import reconciler.page.server as page_server

    seen: list[bool] = []

    class Server:
        server_address = ("127.0.0.1", 8080)

        def serve_forever(self) -> None:
            seen.append(gc.isenabled())
            raise KeyboardInterrupt

        def server_close(self) -> None:
            pass

    monkeypatch.setattr(page_server, "create_server", lambda app, host, port: Server())
    gc.disable()  # as the console script leaves it
    try:
        result = run_cli("serve", "--database-url", database_url)
    finally:
        gc.enable()
    assert result.exit_code == 0, result.output
    assert "Stopped." in result.stdout
    assert seen == [True]
