"""state.applied_fingerprint: the drift digest apply stores per row (pure)."""

from __future__ import annotations

import pytest

from reconciler.spec import RECORD_FIELDS
from reconciler.state import applied_fingerprint
from tests.factories import stored_model

# A value different from the factory's for every record field.
OTHER_VALUES = {
    "type": "ner",
    "provider": "openai",
    "model_id": "other",
    "api_endpoint": "http://other:1",
    "api_version": "2024-01-01",
    "api_key": "f" * 64,
    "is_active": False,
    "is_default": True,
    "description": "changed",
    "dimensions": 769,
    "max_tokens": 1,
    "normalize": False,
    "distance_metric": "dot_product",
    "batch_size": 2,
    "context_window": 10,
    "max_output_tokens": 5,
    "temperature": 0.5,
    "top_p": 0.5,
    "top_k": 3,
}


def test_every_record_field_has_a_different_value_here() -> None:
    assert set(OTHER_VALUES) == set(RECORD_FIELDS)


@pytest.mark.parametrize("field", RECORD_FIELDS)
def test_the_digest_moves_with_every_record_field(field: str) -> None:
    row = stored_model("m")
    changed = dict(row.record) | {field: OTHER_VALUES[field]}
    assert applied_fingerprint("m", changed) != applied_fingerprint("m", row.record)


def test_the_digest_moves_with_the_name_and_nothing_else() -> None:
    row = stored_model("m")
    digest = applied_fingerprint("m", row.record)
    assert applied_fingerprint("m", dict(row.record)) == digest
    assert applied_fingerprint("n", row.record) != digest
    assert len(digest) == 64 and int(digest, 16) >= 0


def test_floats_written_as_integers_read_back_equal() -> None:
    written = stored_model("m", type="generation", temperature=1, top_p=1).record
    read_back = dict(written) | {"temperature": 1.0, "top_p": 1.0}
    assert applied_fingerprint("m", written) == applied_fingerprint("m", read_back)
