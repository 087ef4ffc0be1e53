"""Database URLs read without SQLAlchemy (`db.connect_arguments`, `target.describe_url`) as SQLAlchemy reads them."""

from __future__ import annotations

import pytest

from reconciler import db
from reconciler.errors import RegistryError
from reconciler.target import describe_url

URLS = [
    "postgresql://postgres@127.0.0.1:5432/registry",
    "postgres://someone:s%40cret@db.internal/registry",
    "postgresql+psycopg://user:p%2Fw@host:6543/registry?sslmode=require",
    "postgresql://postgres@/registry?host=/tmp/llm-registry-socket&port=5433",
    "postgresql://u@h/d?options=-c+statement_timeout%3D5s&application_name=mine",
    "postgresql://h",
    "postgresql://U@Db.Example.com/registry",
    "postgresql://u@[::1]:5432/db",
    "postgresql:///db",
]


@pytest.mark.parametrize("url", URLS)
def test_connect_arguments_are_what_sqlalchemys_psycopg_dialect_passes(url: str) -> None:
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

    _, expected = PGDialect_psycopg().create_connect_args(db.sqlalchemy_url(url))
    expected.update({"connect_timeout": 10, "application_name": "llm-registry"})  # create_engine's connect_args
    assert db.connect_arguments(url) == {key: str(value) for key, value in expected.items()}


def test_percent_encoded_parts_are_decoded_as_libpq_decodes_them() -> None:
    # (SQLAlchemy before 2.1 left an encoded database name encoded: libpq is the reference.)
    from psycopg.conninfo import conninfo_to_dict

    url = "postgresql://us%40er:p%2Fw@host:6543/my%20db"
    assert db.connect_arguments(url) == {**conninfo_to_dict(url), "connect_timeout": "10", "application_name": "llm-registry"}
    assert db.connect_arguments(url)["dbname"] == "my db"


def test_a_form_encoded_option_is_decoded_and_the_tool_names_itself() -> None:
    arguments = db.connect_arguments("postgresql://u@h/d?options=-c+log_statement%3Dall&application_name=mine")
    assert arguments["options"] == "-c log_statement=all"
    assert arguments["application_name"] == "llm-registry"  # as create_engine's connect_args: ours wins


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://x@y/z", "unsupported database URL scheme 'mysql'"),
        ("not a url", "the database URL is not valid"),
        ("postgresql://u@h1:5432,h2:5433/db", "the database URL is not valid"),
    ],
)
def test_other_urls_are_refused_as_sqlalchemy_url_refuses_them(url: str, message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        db.connect_arguments(url)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://postgres:hunter2@127.0.0.1:5432/registry", "postgres@127.0.0.1:5432/registry"),
        ("postgresql+psycopg://someone:***@db.internal/registry", "someone@db.internal/registry"),
        # the socket directory and port a connection uses: `?host=`/`?port=` win, as in libpq
        ("postgresql://postgres@/registry?host=/tmp/sock&port=5433", "postgres@/tmp/sock:5433/registry"),
        ("postgresql://postgres@db.internal/registry?port=6432", "postgres@db.internal:6432/registry"),
        ("postgresql://db.internal/my%20db", "db.internal/my db"),
        ("postgresql:///registry", "localhost/registry"),
    ],
)
def test_a_target_names_user_host_port_and_database_never_the_password(url: str, shown: str) -> None:
    assert describe_url(url) == shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:hunter2@h:5432/db", "postgresql+psycopg://u:***@h:5432/db"),
        # libpq takes a password as a query parameter too, and a key's passphrase as sslpassword
        ("postgresql://u@h/db?password=hunter2&sslmode=require", "postgresql+psycopg://u@h/db?password=***&sslmode=require"),
        ("postgresql://u@h/db?sslpassword=hunter2&application_name=a%20b", "postgresql+psycopg://u@h/db?application_name=a%20b&sslpassword=***"),
        ("postgresql://u@h/db?PASSWORD=hunter2", "postgresql+psycopg://u@h/db?PASSWORD=***"),
        ("mysql://u:hunter2@h/db", "(invalid URL)"),
    ],
)
def test_a_url_in_a_message_never_shows_a_password(url: str, shown: str) -> None:
    assert db.display_url(url) == shown
    assert "hunter2" not in db.display_url(url)
