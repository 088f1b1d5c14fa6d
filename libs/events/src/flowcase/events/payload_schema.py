"""A request type's payload schema, compiled once and checked on every request (pure).

Intake checks each submission against its type's JSON Schema, and the workflow's validate steps
check the same payload again. python-jsonschema interprets the schema on every call (about 17 µs
for the password reset's four properties); jsonschema-rs compiles it to native code (under 1 µs).
The compiled validator answers whether a payload is valid; python-jsonschema explains only an
invalid one, so the reasons a requester reads keep their words and their fields.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from jsonschema.validators import validator_for


class PayloadSchema:
    """`schema` compiled twice: natively for the verdict, by python-jsonschema for the reasons.

    The dialect is the schema's `$schema`, else Draft 2020-12. With `check_formats`, `format`
    keywords are asserted as well (intake does; a definition's validate step never has).
    """

    __slots__ = ("_explainer", "_verdict")

    def __init__(self, schema: dict[str, Any], *, check_formats: bool = False) -> None:
        explainer_class: Any = validator_for(schema, default=Draft202012Validator)
        explainer_class.check_schema(schema)
        self._explainer = explainer_class(
            schema, format_checker=explainer_class.FORMAT_CHECKER if check_formats else None
        )
        # offline: a `$ref` to another host is never fetched while a request waits. A schema
        # the native side cannot compile (such a `$ref`) is left to python-jsonschema alone.
        try:
            self._verdict: Any = jsonschema_rs.validator_for(
                schema, validate_formats=check_formats, offline=True
            )
        except (jsonschema_rs.ValidationError, ValueError):
            self._verdict = None

    def errors(self, payload: Any) -> list[ValidationError]:
        """Every violation, in python-jsonschema's terms; empty when the payload is valid."""
        if self._verdict is not None and self._verdict.is_valid(payload):
            return []
        # Where the two disagree, python-jsonschema's verdict stands, as it did before the
        # compiled one was added: its format checks are what intake has always enforced.
        return list(self._explainer.iter_errors(payload))
