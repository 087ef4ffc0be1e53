"""The registry's tables as SQLAlchemy Core metadata.

This module describes the schema that the migrations build (head: `0002`), for the code that
reads and writes it (`state.read_state`, `apply`, `audit`). The migrations do not
import it (a migration is frozen history; this file follows the head revision), but
`tests/integration/test_schema.py` compares the two so they cannot drift apart.

The database guards its own invariants (CHECK constraints, a partial unique index,
foreign keys, an append-only trigger), so that a hand-written row or a second writer
cannot break what `validate` promises. See docs/database.md for the full list.

Writers must know one ordering rule: the partial unique index "one default per type"
cannot be deferred, so clear the old default (`is_default = false`) before setting
the new one within the same transaction.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

# Names the read-only path needs without SQLAlchemy live in schema_names; re-exported here.
from reconciler.schema_names import AUDIT_EVENT_TYPES, VERSION_TABLE, column_name  # noqa: F401

# Constraint names follow one convention so that error messages (and tests) can name them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


llm_models = Table(
    "llm_models",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True, server_default=text("gen_random_uuid()")),
    Column("name", Text, nullable=False, unique=True),
    # The story's column names: the KB application reads this table by them.
    Column("model_type", Text, nullable=False),
    Column("provider", Text, nullable=False),
    Column("model_id", Text, nullable=False),
    Column("api_endpoint", Text),
    Column("api_version", Text),
    Column("description", Text, nullable=False, server_default=text("''")),
    # parameters, flat; those that do not belong to the model's type are NULL
    Column("dimensions", Integer),
    Column("max_tokens", Integer),
    Column("normalize", Boolean),
    Column("distance_metric", Text),
    Column("batch_size", Integer),
    Column("context_window", Integer),
    Column("max_output_tokens", Integer),
    Column("temperature", Double),
    Column("top_p", Double),
    Column("top_k", Integer),
    # pgp_sym_encrypt(key, passphrase) ciphertext and HMAC-SHA256 fingerprint: see reconciler.secrets
    Column("api_key", LargeBinary),
    Column("api_key_fingerprint", Text),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    Column("is_default", Boolean, nullable=False, server_default=text("false")),
    # 'llm-registry' on rows the reconciler owns; NULL on rows made by hand
    Column("managed_by", Text),
    # What apply last wrote to the row (drift detection); NULL where unknown.
    Column("applied_fingerprint", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    # kept current by the trigger llm_models_touch_updated_at
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    CheckConstraint("char_length(name) BETWEEN 1 AND 255", name="name_length"),
    CheckConstraint("char_length(model_id) BETWEEN 1 AND 255", name="model_id_length"),
    CheckConstraint("model_type IN ('embedding', 'generation', 'ner')", name="model_type"),
    CheckConstraint(
        "provider IN ('ollama', 'openai', 'azure', 'gemini', 'anthropic', 'cohere')", name="provider"
    ),
    CheckConstraint(
        "distance_metric IS NULL OR distance_metric IN ('cosine', 'dot_product', 'euclidean')",
        name="distance_metric",
    ),
    CheckConstraint("dimensions IS NULL OR dimensions BETWEEN 1 AND 65536", name="dimensions_range"),
    CheckConstraint("max_tokens IS NULL OR max_tokens > 0", name="max_tokens_positive"),
    CheckConstraint("batch_size IS NULL OR batch_size BETWEEN 1 AND 2048", name="batch_size_range"),
    CheckConstraint("context_window IS NULL OR context_window > 0", name="context_window_positive"),
    CheckConstraint("max_output_tokens IS NULL OR max_output_tokens > 0", name="max_output_tokens_positive"),
    CheckConstraint(
        "max_output_tokens IS NULL OR context_window IS NULL OR max_output_tokens <= context_window",
        name="max_output_tokens_fits",
    ),
    # NaN compares greater than every number in PostgreSQL, so these refuse 'NaN' too.
    CheckConstraint("temperature IS NULL OR (temperature >= 0 AND temperature <= 2)", name="temperature_range"),
    CheckConstraint("top_p IS NULL OR (top_p >= 0 AND top_p <= 1)", name="top_p_range"),
    CheckConstraint("top_k IS NULL OR top_k > 0", name="top_k_positive"),
    CheckConstraint("model_type <> 'embedding' OR dimensions IS NOT NULL", name="embedding_has_dimensions"),
    CheckConstraint("model_type <> 'generation' OR context_window IS NOT NULL", name="generation_has_context_window"),
    CheckConstraint("NOT (provider = 'anthropic' AND model_type = 'embedding')", name="no_anthropic_embedding"),
    CheckConstraint("NOT is_default OR is_active", name="default_is_active"),
    # Ciphertext and fingerprint go together, except on a row llm-registry does not manage
    # whose key an earlier application (the story's admin page) stored: `db upgrade`
    # fills its fingerprint in once it has the passphrase (reconciler.legacy).
    CheckConstraint(
        "(api_key IS NULL) = (api_key_fingerprint IS NULL) OR (managed_by IS NULL AND api_key_fingerprint IS NULL)",
        name="api_key_pair",
    ),
)

# One default per type: a partial unique index (a UNIQUE constraint cannot have WHERE).
Index(
    "uq_llm_models_one_default_per_type",
    llm_models.c.model_type,
    unique=True,
    postgresql_where=llm_models.c.is_default,
)

# Owned by the KB application in a real deployment; migration 0001 creates it only
# where it does not exist. The registry reads these four columns and nothing else.
knowledge_bases = Table(
    "knowledge_bases",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True, server_default=text("gen_random_uuid()")),
    Column("name", Text, nullable=False),
    Column(
        "embedding_model_id",
        UUID(as_uuid=False),
        ForeignKey("llm_models.id", ondelete="RESTRICT"),
        index=True,
    ),
    Column(
        "generation_model_id",
        UUID(as_uuid=False),
        ForeignKey("llm_models.id", ondelete="RESTRICT"),
        index=True,
    ),
)

# Append-only: the trigger registry_audit_events_append_only refuses UPDATE, DELETE
# and TRUNCATE. model_id has no foreign key on purpose: the model may since be gone.
registry_audit_events = Table(
    "registry_audit_events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    # clock_timestamp(): when the event was written, not when its transaction began
    Column("occurred_at", DateTime(timezone=True), nullable=False, server_default=text("clock_timestamp()")),
    Column("run_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("model_name", Text, nullable=False),
    Column("model_id", UUID(as_uuid=False)),
    Column("actor", Text, nullable=False),
    Column("source_revision", Text),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # the --environment the run was for; NULL when none was named
    Column("environment", Text),
    CheckConstraint(
        "event_type IN (" + ", ".join(f"'{event}'" for event in AUDIT_EVENT_TYPES) + ")",
        name="event_type",
    ),
    CheckConstraint("jsonb_typeof(details) = 'object'", name="details_object"),
)
Index("ix_registry_audit_events_model_name", registry_audit_events.c.model_name, registry_audit_events.c.id)
Index("ix_registry_audit_events_model_id", registry_audit_events.c.model_id, registry_audit_events.c.id)
Index("ix_registry_audit_events_run_id", registry_audit_events.c.run_id)
Index("ix_registry_audit_events_occurred_at", registry_audit_events.c.occurred_at)

# One row (id = 1): an OpenPGP message of secrets.PASSPHRASE_CHECK_TEXT under the
# registry's passphrase, so that a wrong LLM_REGISTRY_ENCRYPTION_KEY is refused instead
# of making every key look changed (migration 0004, reconciler.secrets).
llm_registry_encryption = Table(
    "llm_registry_encryption",
    metadata,
    Column("id", SmallInteger, primary_key=True, server_default=text("1")),
    Column("passphrase_check", LargeBinary, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("clock_timestamp()")),
    CheckConstraint("id = 1", name="single_row"),
)
