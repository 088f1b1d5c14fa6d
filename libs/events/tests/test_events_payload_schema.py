"""A payload schema gives python-jsonschema's verdict and reasons, whichever side answered."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft7Validator, Draft202012Validator
from jsonschema.exceptions import SchemaError

from flowcase.events.payload_schema import PayloadSchema

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["account", "system"],
    "properties": {
        "account": {"type": "string", "minLength": 1, "maxLength": 20},
        "system": {"type": "string", "enum": ["okta", "github"]},
        "amount": {"type": "integer", "minimum": 0},
        "email": {"type": "string", "format": "email"},
        "lines": {"type": "array", "prefixItems": [{"type": "string"}], "maxItems": 3},
    },
}

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False)
    | st.text(max_size=25),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
payloads = st.fixed_dictionaries(
    {},
    optional={
        "account": values | st.text(max_size=25),
        "system": values | st.sampled_from(["okta", "github", "slack"]),
        "amount": values,
        "email": st.sampled_from(["a@b.example", "not-an-address", ""]) | values,
        "lines": values,
    },
)


def _explained(schema: dict[str, Any], payload: Any, *, check_formats: bool) -> list[str]:
    validator = Draft202012Validator(
        schema, format_checker=Draft202012Validator.FORMAT_CHECKER if check_formats else None
    )
    return sorted(e.message for e in validator.iter_errors(payload))


@given(payload=payloads, check_formats=st.booleans())
def test_the_verdict_and_reasons_are_python_jsonschemas(
    payload: dict[str, Any], check_formats: bool
) -> None:
    schema = PayloadSchema(SCHEMA, check_formats=check_formats)

    found = sorted(e.message for e in schema.errors(payload))

    assert found == _explained(SCHEMA, payload, check_formats=check_formats)


def test_a_schema_naming_its_dialect_is_checked_in_it() -> None:
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"type": "string"}]}

    # In draft 7 an array of `items` checks position by position; 2020-12 has no such form.
    assert [e.message for e in PayloadSchema(draft7).errors([1])] == [
        e.message for e in Draft7Validator(draft7).iter_errors([1])
    ]
    assert PayloadSchema(draft7).errors([1])


def test_an_invalid_schema_is_refused_as_python_jsonschema_refuses_it() -> None:
    with pytest.raises(SchemaError):
        PayloadSchema({"type": "no-such-type"})


def test_a_schema_referring_to_another_host_is_checked_without_fetching_it() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"$ref": "https://schemas.invalid/b.json"}},
    }

    # The native side cannot compile it offline; the payload is still judged, by the other.
    assert [e.message for e in PayloadSchema(schema).errors({"a": "x"})] == [
        "'x' is not of type 'integer'"
    ]
