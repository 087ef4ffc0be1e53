"""pytest fixtures for the fake provider (registered from tests/conftest.py via pytest_plugins).

`fake_provider_server` is one server per test session (starting one is cheap, but
LiteLLM caches HTTP clients per base URL, so one URL keeps the cache warm);
`fake_provider` hands each test that server with no models configured and an empty
request record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import pytest

from tests.fakes.provider import FakeProvider

if TYPE_CHECKING:
    from tests.fakes.github import FakeGitHub


@pytest.fixture(scope="session")
def fake_provider_server() -> Iterator[FakeProvider]:
    """The session's fake provider server (prefer `fake_provider`)."""
    with FakeProvider() as fake:
        yield fake


@pytest.fixture
def fake_provider(fake_provider_server: FakeProvider) -> Iterator[FakeProvider]:
    """A fake provider on 127.0.0.1 with no models (unknown models get 404) and no requests recorded.

    Configure with `fake_provider.set_model("model-id", dimensions=768, status=401, hang=True, ...)`;
    its base URL is `fake_provider.url`.
    """
    fake_provider_server.reset()
    fake_provider_server.set_default(None)
    yield fake_provider_server
    fake_provider_server.reset()


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: connecting to it is refused."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def fake_github() -> Iterator["FakeGitHub"]:
    """A fake GitHub REST API on 127.0.0.1 (tests/fakes/github.py), fresh per test; `fake_github.environ(pr=N)`."""
    from tests.fakes.github import FakeGitHub

    with FakeGitHub(token="ghs_canary_token_never_printed") as fake:
        yield fake
