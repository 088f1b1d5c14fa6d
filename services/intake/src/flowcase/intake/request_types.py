"""The request types the workflow service publishes, the latest version of each (pure).

Each `workflow.DefinitionPublished` carries the JSON Schema of its type's payload; the schema is
compiled once, when the definition arrives, and every submission of the type is checked with it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from jsonschema.exceptions import SchemaError

from flowcase.events.catalogue.workflow import DefinitionPublished
from flowcase.events.payload_schema import PayloadSchema

log = logging.getLogger(__name__)


class InvalidRequestSchema(ValueError):
    """A published definition whose request schema is not a valid JSON Schema."""


@dataclass(frozen=True)
class RequestType:
    definition: DefinitionPublished
    schema: PayloadSchema

    @classmethod
    def compile(cls, definition: DefinitionPublished) -> RequestType:
        try:
            schema = PayloadSchema(definition.request_schema, check_formats=True)
        except SchemaError as exc:
            raise InvalidRequestSchema(
                f"{definition.request_type} v{definition.version}: {exc.message}"
            ) from exc
        return cls(definition=definition, schema=schema)

    @property
    def name(self) -> str:
        return self.definition.request_type

    @property
    def version(self) -> int:
        return self.definition.version


class RequestTypes:
    """The catalogue of request types as currently published."""

    def __init__(self) -> None:
        self._types: dict[str, RequestType] = {}

    def publish(self, definition: DefinitionPublished) -> bool:
        """Keep the definition if it is the newest of its type; True when it was kept.

        An older version arriving late (a re-publish, a replay) does not replace a newer one. A
        definition whose schema is invalid is refused and the previous version stays in force.
        """
        current = self._types.get(definition.request_type)
        if current is not None and current.version > definition.version:
            return False
        try:
            self._types[definition.request_type] = RequestType.compile(definition)
        except InvalidRequestSchema as exc:
            log.error("refusing a definition with an invalid request schema: %s", exc)
            return False
        return True

    def withdraw(self, request_type: str) -> None:
        """A tombstone on the compacted topic: the type is no longer offered."""
        self._types.pop(request_type, None)

    def get(self, request_type: str) -> RequestType | None:
        return self._types.get(request_type)

    def __iter__(self) -> Iterator[RequestType]:
        return iter(sorted(self._types.values(), key=lambda t: t.name))

    def __len__(self) -> int:
        return len(self._types)
