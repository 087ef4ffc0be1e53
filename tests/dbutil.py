"""Helpers that write rows straight into a test database, as a hand or another writer would.

They use plain SQL through the connection they are given and do not commit: the test
decides (call `connection.commit()` before a CLI run or another connection reads).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from reconciler import MANAGED_BY
from reconciler.spec import RECORD_FIELDS
from reconciler.state import StoredModel
from tests.factories import unique_name

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

# Columns of a valid Ollama embedding row; tests override what they check.
EMBEDDING_ROW: dict[str, Any] = {
    "type": "embedding",
    "provider": "ollama",
    "model_id": "nomic-embed-text",
    "api_endpoint": "http://localhost:11434",
    "dimensions": 768,
    "max_tokens": 8192,
    "normalize": True,
    "distance_metric": "cosine",
    "batch_size": 32,
}

GENERATION_ROW: dict[str, Any] = {
    "type": "generation",
    "provider": "ollama",
    "model_id": "llama3",
    "api_endpoint": "http://localhost:11434",
    "context_window": 8192,
    "max_output_tokens": 1024,
    "temperature": 0.7,
    "top_p": 1.0,
}

# The passphrase tests store keys under (LLM_REGISTRY_ENCRYPTION_KEY in CLI tests).
TEST_PASSPHRASE = "test-passphrase-0123456789"


def insert_model(
    connection: "Connection",
    *,
    api_key: str | None = None,
    passphrase: str = TEST_PASSPHRASE,
    ciphertext: bytes | None = None,
    **columns: Any,
) -> str:
    """INSERT one llm_models row and return its id (str).

    Starts from `EMBEDDING_ROW` (or `GENERATION_ROW` when `type="generation"` is given
    without parameters of its own), with a unique name and `managed_by='llm-registry'`;
    `managed_by=None` makes a hand-made row. `api_key` (plain) is encrypted and
    fingerprinted with `passphrase` exactly as the registry does it; `ciphertext` goes
    into the `api_key` column as it is (the parameter `api_key` is the plain key). Any
    column of the table may be given, including invalid values (to show that a CHECK
    refuses them); `type` stands for the column `model_type`, as in a record.
    """
    from sqlalchemy import text

    from reconciler import secrets

    base = dict(GENERATION_ROW if columns.get("type") == "generation" else EMBEDDING_ROW)
    if columns.get("type") not in (None, "embedding", "generation"):
        base = {key: base[key] for key in ("provider", "model_id", "api_endpoint")}
        base.update(max_tokens=512, batch_size=16)
    from reconciler.tables import column_name

    fields = {"name": unique_name("row"), "managed_by": MANAGED_BY, **base, **columns}
    row = {column_name(field): value for field, value in fields.items()}
    if ciphertext is not None:
        row["api_key"] = ciphertext
    names = list(row)
    values = [f":{name}" for name in names]
    params = dict(row)
    if api_key is not None:
        # made in this process, as the registry does: the key never reaches the server
        names += ["api_key", "api_key_fingerprint"]
        values += [":api_key", ":api_key_fingerprint"]
        params.update(secrets.api_key_columns(api_key, passphrase))
    sql = f"INSERT INTO llm_models ({', '.join(names)}) VALUES ({', '.join(values)}) RETURNING id"
    return str(connection.execute(text(sql), params).scalar_one())


def insert_stored_model(connection: "Connection", model: StoredModel) -> str:
    """INSERT a `factories.stored_model(...)` as a row (same id, name, ownership, record).

    A record whose `api_key` holds a fingerprint gets placeholder ciphertext beside it
    (the table wants both or neither): a real message under TEST_PASSPHRASE (so the
    passphrase guard accepts the tests' passphrase), of the text "placeholder".
    """
    from sqlalchemy import text

    from reconciler import pgp
    from reconciler.tables import column_name

    columns = {column_name(field): model.record[field] for field in RECORD_FIELDS if field != "api_key"}
    row: dict[str, Any] = {"id": model.id, "name": model.name, "managed_by": model.managed_by, **columns}
    names = list(row)
    values = [f":{name}" for name in names]
    if model.record.get("api_key") is not None:
        names += ["api_key", "api_key_fingerprint"]
        values += [":api_key", ":api_key_fingerprint"]
        row["api_key_fingerprint"] = model.record["api_key"]
        row["api_key"] = pgp.encrypt("placeholder", TEST_PASSPHRASE)
    sql = f"INSERT INTO llm_models ({', '.join(names)}) VALUES ({', '.join(values)}) RETURNING id"
    return str(connection.execute(text(sql), row).scalar_one())


def insert_knowledge_base(
    connection: "Connection",
    name: str | None = None,
    embedding_model_id: str | None = None,
    generation_model_id: str | None = None,
) -> str:
    """INSERT one knowledge_bases row using the given model ids; returns its id (str)."""
    from sqlalchemy import text

    return str(
        connection.execute(
            text(
                "INSERT INTO knowledge_bases (name, embedding_model_id, generation_model_id) "
                "VALUES (:name, :embedding, :generation) RETURNING id"
            ),
            {"name": name or unique_name("kb"), "embedding": embedding_model_id, "generation": generation_model_id},
        ).scalar_one()
    )


def fetch_model_row(connection: "Connection", name: str) -> Mapping[str, Any]:
    """Every column of the llm_models row called `name` (KeyError if there is none)."""
    from sqlalchemy import text

    row = connection.execute(text("SELECT * FROM llm_models WHERE name = :name"), {"name": name}).mappings().first()
    if row is None:
        raise KeyError(name)
    return dict(row)


def count_rows(connection: "Connection", table: str) -> int:
    """SELECT count(*) of one of the registry's tables."""
    from sqlalchemy import text

    if table not in ("llm_models", "knowledge_bases", "registry_audit_events", "llm_registry_encryption"):
        raise ValueError(table)
    return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


# A model name a hand can type into the table and a page must show as text.
HOSTILE_MODEL_NAME = '<img src=x onerror="document.title=\'pwned\'">'


def insert_page_registry(connection: "Connection") -> dict[str, str]:
    """The registry the page tests look at; returns model name -> id.

    Five models: `nomic-embed` (default embedding, used by `legal-kb` and `support-kb`),
    `gpt-4o-mini` (default generation, key = CANARY_KEY, used by `support-kb`), `gliner`
    (NER), `old-embed` (made by hand, inactive) and HOSTILE_MODEL_NAME (made by hand,
    inactive, HTML in its name and description); audit events of two runs, with one
    passed and one failed connection test.
    """
    from reconciler.audit import AuditEvent, write_audit_events
    from tests.factories import CANARY_KEY

    ids = {
        "nomic-embed": insert_model(connection, name="nomic-embed", is_default=True, description="Local embeddings for every KB"),
        "gpt-4o-mini": insert_model(
            connection, name="gpt-4o-mini", type="generation", provider="openai", model_id="gpt-4o-mini",
            api_endpoint=None, api_key=CANARY_KEY, is_default=True,
        ),
        "gliner": insert_model(connection, name="gliner", type="ner", model_id="gliner-medium"),
        "old-embed": insert_model(connection, name="old-embed", managed_by=None, is_active=False, model_id="e5-large"),
        HOSTILE_MODEL_NAME: insert_model(
            connection, name=HOSTILE_MODEL_NAME, managed_by=None, is_active=False,
            description="<script>document.title='pwned'</script>",
        ),
    }  # fmt: skip
    insert_knowledge_base(connection, "support-kb", embedding_model_id=ids["nomic-embed"], generation_model_id=ids["gpt-4o-mini"])
    insert_knowledge_base(connection, "legal-kb", embedding_model_id=ids["nomic-embed"])
    write_audit_events(
        connection,
        [
            AuditEvent("MODEL_CREATED", "nomic-embed", ids["nomic-embed"], {"configuration": {"type": "embedding"}}),
            AuditEvent(
                "MODEL_CONNECTION_TESTED", "nomic-embed", ids["nomic-embed"],
                {"outcome": "success", "status": "ok", "latency_ms": 12, "message": "768-dimension vector"},
            ),
        ],
        run_id="20261127T170000Z-aaaa0001", actor="alice", source_revision="0123456789abcdef0123456789abcdef01234567",
    )  # fmt: skip
    write_audit_events(
        connection,
        [
            AuditEvent(
                "MODEL_CONNECTION_TESTED", "gpt-4o-mini", ids["gpt-4o-mini"],
                {"outcome": "failure", "status": "authentication_error", "latency_ms": 40, "message": "the provider refused the key"},
            ),
        ],
        run_id="20261127T171500Z-bbbb0002", actor="bob", source_revision=None,
    )  # fmt: skip
    return ids
