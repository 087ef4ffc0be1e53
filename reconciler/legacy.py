"""Taking over the llm_models table that the story's admin page created.

A team that ran the original admin page (reference/, story 7.9) already has an
`llm_models` table with the story's columns, rows that knowledge bases point at, and
API keys encrypted with `pgp_sym_encrypt`, but no llm-registry schema version.
`llm-registry db upgrade` adopts that table in place (migration 0001 converts it);
this module holds what happens around the migration:

* `check_story_table` runs first, reads only, and refuses with every offending row
  listed by name when the table could not take llm-registry's rules (two defaults of
  one type, an inactive default, an anthropic embedding, a value out of range, a
  column of a kind that cannot be converted, ...). Nothing has changed then.
  The rules are the head schema's own (`reconciler.tables`), evaluated over the
  existing rows, so this check and the constraints the migrations add agree.
* `fill_key_fingerprints` computes the keyed fingerprint of every stored key that has
  none (the admin page kept none), once the passphrase is known;
  `keys_without_fingerprint` names the rows still waiting for one.

Adopted rows stay unmanaged (`managed_by` NULL) until a registry declares them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from reconciler.errors import RegistryError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

# Columns without which a table is not the story's: everything else is added if missing.
IDENTITY_COLUMNS: tuple[str, ...] = ("id", "name", "model_type", "provider", "model_id")

# The KB application's columns that llm-registry reads.
KB_COLUMNS: tuple[str, ...] = ("id", "name", "embedding_model_id", "generation_model_id")

# Column kinds (information_schema data_type) that migration 0001 converts in place,
# per kind of column in the head schema. Anything else is refused before any change.
_CONVERTIBLE: dict[str, tuple[str, ...]] = {
    "text": ("text", "character varying", "USER-DEFINED"),  # USER-DEFINED: checked to be an enum
    "integer": ("integer", "smallint", "bigint"),
    "double": ("double precision", "real", "numeric"),
    "boolean": ("boolean",),
    "uuid": ("uuid",),
    "bytea": ("bytea",),
    "timestamp": ("timestamp with time zone", "timestamp without time zone"),
}

INT4_MIN, INT4_MAX = -2_147_483_648, 2_147_483_647

# What each rule of the head schema means, for the message that lists offending rows.
RULES: dict[str, str] = {
    "name_length": "name must be 1 to 255 characters",
    "model_id_length": "model_id must be 1 to 255 characters",
    "type": "model_type must be embedding, generation or ner",
    "model_type": "model_type must be embedding, generation or ner",
    "provider": "provider must be ollama, openai, azure, gemini, anthropic or cohere",
    "distance_metric": "distance_metric must be cosine, dot_product or euclidean",
    "dimensions_range": "dimensions must be between 1 and 65536",
    "max_tokens_positive": "max_tokens must be positive",
    "batch_size_range": "batch_size must be between 1 and 2048",
    "context_window_positive": "context_window must be positive",
    "max_output_tokens_positive": "max_output_tokens must be positive",
    "max_output_tokens_fits": "max_output_tokens must not exceed context_window",
    "temperature_range": "temperature must be between 0.0 and 2.0",
    "top_p_range": "top_p must be between 0.0 and 1.0",
    "top_k_positive": "top_k must be positive",
    "embedding_has_dimensions": "an embedding model needs dimensions",
    "generation_has_context_window": "a generation model needs context_window",
    "no_anthropic_embedding": "anthropic serves no embedding models",
    "default_is_active": "a default model must be active",
}


@dataclass(frozen=True)
class Problem:
    """One reason the existing table cannot be taken over: which rows (by name), what is wrong."""

    rows: tuple[str, ...]
    message: str

    def render(self) -> str:
        """One line of the refusal: the rows (names quoted and escaped, they are data), then the reason."""
        where = ", ".join(show(name) for name in self.rows)
        return f"{where}: {self.message}" if where else self.message


class StoryTableRefused(RegistryError):
    """`db upgrade` cannot adopt the existing llm_models table; nothing was changed."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {problem.render()}" for problem in self.problems)
        super().__init__(
            "the existing llm_models table (made by the story's admin page, it seems) breaks rules llm-registry "
            f"enforces, so it was not taken over; nothing was changed:\n{lines}\n"
            "fix these rows (with SQL, or the admin page), then run `llm-registry db upgrade` again"
        )


def show(value: Any) -> str:
    """A value from the database as it appears in a message: JSON-quoted (escapes control characters)."""
    if value is None:
        return "NULL"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "(encrypted)"  # ciphertext: never shown, not even encoded
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value) if value == value else "NaN"
    return json.dumps(str(value), ensure_ascii=False)


# --------------------------------------------------------------------------- detection


def has_story_table(connection: "Connection") -> bool:
    """True when an llm_models table exists; ask it of a database that has no llm-registry schema version."""
    from reconciler.db import fetch_one

    return bool(fetch_one(connection, "SELECT to_regclass('llm_models') IS NOT NULL")[0])  # type: ignore[index]


def _columns(connection: "Connection", table: str) -> dict[str, tuple[str, str, bool, bool]]:
    """{column: (data_type, type name, nullable, has default)} of a table in the current schema."""
    from sqlalchemy import text

    rows = connection.execute(
        text(
            "SELECT c.column_name, c.data_type, format_type(a.atttypid, a.atttypmod), c.is_nullable = 'YES', "
            "c.column_default IS NOT NULL OR c.is_identity = 'YES' "
            "FROM information_schema.columns c "
            "JOIN pg_attribute a ON a.attrelid = to_regclass(:table) AND a.attname = c.column_name "
            "WHERE c.table_schema = current_schema() AND c.table_name = :table"
        ),
        {"table": table},
    ).all()
    return {name: (data_type, type_name, nullable, has_default) for name, data_type, type_name, nullable, has_default in rows}


def _kind(column: Any) -> str:
    """The kind of a head-schema column (a key of _CONVERTIBLE)."""
    from sqlalchemy import BigInteger, Boolean, DateTime, Double, Integer, LargeBinary
    from sqlalchemy.dialects.postgresql import UUID

    for sql_type, kind in (
        (UUID, "uuid"), (Boolean, "boolean"), (Double, "double"), (BigInteger, "integer"), (Integer, "integer"),
        (LargeBinary, "bytea"), (DateTime, "timestamp"),
    ):  # fmt: skip
        if isinstance(column.type, sql_type):
            return kind
    return "text"


# --------------------------------------------------------------------------- the check


def check_story_table(connection: "Connection") -> None:
    """Raise StoryTableRefused listing every problem that would keep `db upgrade` from adopting llm_models.

    Reads only; call it inside the upgrade's transaction, before the migrations run.
    """
    problems = column_problems(connection)
    if not problems:  # row checks read the columns the shape check vouched for
        problems = row_problems(connection)
    if problems:
        raise StoryTableRefused(problems)


def column_problems(connection: "Connection") -> list[Problem]:
    """What is wrong with the shape of llm_models (and knowledge_bases, if present) for adoption."""
    from sqlalchemy import text

    from reconciler.tables import llm_models

    existing = _columns(connection, "llm_models")
    problems = [
        Problem((), f"llm_models has no column {name}: it is not the story's table")
        for name in IDENTITY_COLUMNS
        if name not in existing
    ]
    enums = set(
        connection.execute(
            text(
                "SELECT a.attname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
                "WHERE a.attrelid = 'llm_models'::regclass AND t.typtype = 'e'"
            )
        ).scalars()
    )
    for column in llm_models.columns:
        if column.name not in existing:
            continue
        data_type, type_name, _nullable, _default = existing[column.name]
        kind = _kind(column)
        if data_type not in _CONVERTIBLE[kind] or (data_type == "USER-DEFINED" and column.name not in enums):
            problems.append(
                Problem((), f"column {column.name} is {type_name}, which llm-registry cannot convert to "
                            f"{column.type.compile()} in place; convert it first")  # fmt: skip
            )
    problems.extend(_view_problems(connection, existing))
    for name, (_data_type, type_name, nullable, has_default) in sorted(existing.items()):
        if name not in llm_models.c and not nullable and not has_default:
            problems.append(
                Problem((), f"column {name} ({type_name}) is NOT NULL without a default, so llm-registry could not "
                            "insert models: give it a default or allow NULL")  # fmt: skip
            )
    primary_key = connection.execute(
        text(
            "SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_constraint c "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) "
            "WHERE c.conrelid = 'llm_models'::regclass AND c.contype = 'p'"
        )
    ).scalar()
    if primary_key != ["id"]:
        problems.append(Problem((), f"the primary key of llm_models is {primary_key or 'missing'}, not (id)"))
    if connection.execute(text("SELECT to_regclass('knowledge_bases') IS NOT NULL")).scalar_one():
        kb_columns = _columns(connection, "knowledge_bases")
        problems.extend(
            Problem((), f"knowledge_bases has no column {name}, which llm-registry reads")
            for name in KB_COLUMNS
            if name not in kb_columns
        )
    return problems


# The data_type migration 0001 converts a column of each kind to (other kinds are kept).
_TARGET_TYPE = {"text": "text", "integer": "integer", "double": "double precision"}


def _view_problems(connection: "Connection", existing: dict[str, tuple[str, str, bool, bool]]) -> list[Problem]:
    """Views that read a column the takeover converts: PostgreSQL cannot change the type under them."""
    from sqlalchemy import bindparam, text
    from sqlalchemy.dialects.postgresql import ARRAY
    from sqlalchemy.types import Text

    from reconciler.tables import llm_models

    converted = [
        column.name
        for column in llm_models.columns
        if column.name in existing
        and _kind(column) in _TARGET_TYPE
        and existing[column.name][0] != _TARGET_TYPE[_kind(column)]
    ]
    if not converted:
        return []
    rows = connection.execute(
        text(
            "SELECT v.relname, array_agg(DISTINCT a.attname::text ORDER BY a.attname::text) FROM pg_depend d "
            "JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class "
            "JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
            "WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = 'llm_models'::regclass "
            "AND v.oid <> 'llm_models'::regclass AND a.attname = ANY (:columns) "
            "GROUP BY v.relname ORDER BY v.relname"
        ).bindparams(bindparam("columns", converted, type_=ARRAY(Text)))
    ).all()
    return [
        Problem(
            (),
            f"view {show(view)} reads {', '.join(columns)}, which the takeover converts to llm-registry's types "
            "and PostgreSQL cannot convert under a view: drop the view, run `llm-registry db upgrade`, create it again",
        )
        for view, columns in rows
    ]


def _row_label(name: Any, row_id: Any) -> str:
    return str(name) if name is not None else f"(no name, id {row_id})"


def row_problems(connection: "Connection") -> list[Problem]:
    """Rows of llm_models that break a rule the head schema enforces, each named, with the values at fault.

    The head schema's CHECK constraints are evaluated over the existing rows (text-like
    columns compared as text, columns the table lacks as their default), plus NOT NULL,
    unique names, one default per type and the integer range.
    """
    from sqlalchemy import CheckConstraint, text

    from reconciler.tables import llm_models

    existing = _columns(connection, "llm_models")
    select_list = []
    for column in llm_models.columns:
        if column.name in existing:
            expression = f'"{column.name}"'
            if _kind(column) == "text":
                expression += "::text"
        elif column.server_default is not None:
            expression = str(column.server_default.arg)
        else:
            expression = "NULL"
        select_list.append(f'{expression} AS "{column.name}"')
    rows_sql = f"(SELECT {', '.join(select_list)} FROM llm_models) AS llm_models"

    checks = [c for c in llm_models.constraints if isinstance(c, CheckConstraint)]
    not_null = [c for c in llm_models.columns if not c.nullable and c.name in existing and existing[c.name][2]]
    big_integers = [c for c in llm_models.columns if c.name in existing and existing[c.name][0] == "bigint"]
    flags = (
        [f"({check.sqltext}) IS FALSE" for check in checks]
        + [f'"{column.name}" IS NULL' for column in not_null]
        + [f'"{column.name}" NOT BETWEEN {INT4_MIN} AND {INT4_MAX}' for column in big_integers]
    )
    problems: list[Problem] = []
    if flags:
        result = connection.execute(
            text(f"SELECT name, id, {', '.join(flags)}, * FROM {rows_sql} ORDER BY name, id")
        ).all()
        column_names = [column.name for column in llm_models.columns]
        for name, row_id, *rest in result:
            found, values = rest[: len(flags)], dict(zip(column_names, rest[len(flags) :]))
            label = (_row_label(name, row_id),)
            for check, broken in zip(checks, found[: len(checks)]):
                if broken:
                    problems.append(Problem(label, _check_message(str(check.name), str(check.sqltext), values)))
            for column, broken in zip(not_null, found[len(checks) : len(checks) + len(not_null)]):
                if broken:
                    problems.append(Problem(label, f"{column.name} is NULL"))
            for column, broken in zip(big_integers, found[len(checks) + len(not_null) :]):
                if broken:
                    problems.append(Problem(label, f"{column.name} = {show(values[column.name])} does not fit an integer"))

    for model_type, names in connection.execute(
        text(
            f"SELECT model_type, array_agg(name ORDER BY name) FROM {rows_sql} "
            "WHERE is_default GROUP BY model_type HAVING count(*) > 1 ORDER BY model_type"
        )
    ).all():
        problems.append(Problem(tuple(names), f"{len(names)} default {model_type} models: at most one default per type"))
    for name, count in connection.execute(
        text(f"SELECT name, count(*) FROM {rows_sql} WHERE name IS NOT NULL GROUP BY name HAVING count(*) > 1 ORDER BY name")
    ).all():
        problems.append(Problem((name,), f"{count} rows have this name: names must be unique"))
    return problems


def _check_message(constraint: str, condition: str, values: dict[str, Any]) -> str:
    """What a broken CHECK means, with the values of the columns it reads."""
    import re

    short = constraint.removeprefix("ck_llm_models_")
    rule = RULES.get(short, f"breaks CHECK ({condition})")
    mentioned = [name for name in values if re.search(rf"\b{re.escape(name)}\b", condition)]
    shown = ", ".join(f"{name} = {show(values[name])}" for name in mentioned)
    return f"{rule} ({shown})" if shown else rule


# --------------------------------------------------------------------------- fingerprints


def keys_without_fingerprint(connection: "Connection") -> tuple[str, ...]:
    """Names of the models whose stored key has no fingerprint yet (keys the admin page stored)."""
    from sqlalchemy import select

    from reconciler.tables import llm_models

    return tuple(
        connection.execute(
            select(llm_models.c.name)
            .where(llm_models.c.api_key.is_not(None), llm_models.c.api_key_fingerprint.is_(None))
            .order_by(llm_models.c.name)
        ).scalars()
    )


def fill_key_fingerprints(connection: "Connection", passphrase: str) -> tuple[str, ...]:
    """Fingerprint every stored key that has none; return the names of those models.

    Decrypting needs the passphrase the keys were stored with: a wrong one is a
    RegistryError naming the models, and nothing is written (the caller's transaction
    decides). `updated_at` does not move: a fingerprint is bookkeeping, not a change of
    the model.
    """
    from sqlalchemy import bindparam, select, text, update

    from reconciler.secrets import decrypt_api_keys, key_fingerprint
    from reconciler.tables import llm_models

    rows = connection.execute(
        select(llm_models.c.id, llm_models.c.name)
        .where(llm_models.c.api_key.is_not(None), llm_models.c.api_key_fingerprint.is_(None))
        .order_by(llm_models.c.name)
    ).all()
    if not rows:
        return ()
    keys = decrypt_api_keys(connection, [str(row_id) for row_id, _name in rows], passphrase)
    connection.execute(text("ALTER TABLE llm_models DISABLE TRIGGER llm_models_touch_updated_at"))
    connection.execute(
        update(llm_models)
        .where(llm_models.c.id == bindparam("row_id"))
        .values(api_key_fingerprint=bindparam("fingerprint")),
        [{"row_id": str(row_id), "fingerprint": key_fingerprint(keys[str(row_id)], passphrase)} for row_id, _name in rows],
    )
    connection.execute(text("ALTER TABLE llm_models ENABLE TRIGGER llm_models_touch_updated_at"))
    return tuple(name for _row_id, name in rows)
