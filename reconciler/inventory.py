"""What `list --format json` and `show` say about one model: the full record, never a key. Pure."""

from __future__ import annotations

from typing import Any, Sequence

from reconciler.export import key_variable
from reconciler.references import redact_endpoint
from reconciler.spec import parameter_fields
from reconciler.state import StoredModel


def model_view(model: StoredModel, knowledge_bases: Sequence[str], has_key: bool) -> dict[str, Any]:
    """The full record of one row as JSON-ready data.

    Every column the registry knows, the parameters of the model's type (None where
    the column is NULL) and the KBs using it by name. Of the key only whether one is
    stored and the variable `export` would name it (`api_key_variable`): the database
    keeps no variable names, so this is export's convention, not a fact about the row.
    """
    record = model.record
    return {
        "name": model.name,
        "id": model.id,
        "type": record["type"],
        "provider": record["provider"],
        "model_id": record["model_id"],
        "api_endpoint": redact_endpoint(record["api_endpoint"]),  # a row made by hand may hold user:password@
        "api_version": record["api_version"],
        "api_key_set": has_key,
        "api_key_variable": key_variable(model.name) if has_key else None,
        "active": bool(record["is_active"]),
        "is_default": bool(record["is_default"]),
        "description": record["description"] or "",
        "parameters": {field: record[field] for field in parameter_fields(record["type"])},
        "managed": model.managed,
        "managed_by": model.managed_by,
        "knowledge_bases": list(knowledge_bases),
        "kb_count": len(knowledge_bases),
    }


def terminal_text(value: Any) -> str:
    """A value as one line of terminal text: control characters shown escaped, no workflow command (`escape_text`).

    Text from the database is data: a description holding `\\x1b[2J` must not clear
    the reader's screen, nor a newline forge a line of output.
    """
    from reconciler.diagnostics import escape_text  # the one home of output escaping

    return escape_text("-" if value is None else value)
