"""Bytes in, bytes out: the one JSON encoding of an envelope, and typed decode errors.

Encoding is deterministic: fields in model order, timestamps as UTC ISO-8601. Decoding tells apart
the three reasons a consumer cannot use a message, so each becomes a dead-letter record with its
reason instead of a crash or a silent drop. A message may carry several events of one entity
(`workflow.InstanceAdvanced`): `decode_all` and `expand` give the events it carries.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from flowcase.events.catalogue.base import REGISTRY
from flowcase.events.envelope import Envelope


class EventDecodeError(Exception):
    """A message that no handler can use. `reason` is a stable code for the dead-letter header."""

    reason = "undecodable"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class MalformedEvent(EventDecodeError):
    reason = "malformed"


class UnknownEventType(EventDecodeError):
    reason = "unknown-event-type"


class UnsupportedSchemaVersion(EventDecodeError):
    reason = "unsupported-schema-version"


def encode(envelope: Envelope) -> bytes:
    return envelope.model_dump_json().encode()


def decode(data: bytes) -> Envelope:
    try:
        raw: Any = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedEvent(f"not JSON: {exc}") from exc
    except RecursionError as exc:
        raise MalformedEvent("not JSON: nested too deeply") from exc
    if not isinstance(raw, dict):
        raise MalformedEvent(f"an envelope is a JSON object, not {type(raw).__name__}")
    event_type = raw.get("event_type")
    if not isinstance(event_type, str):
        raise MalformedEvent("event_type is missing or not a string")
    model = REGISTRY.get(event_type)
    if model is None:
        raise UnknownEventType(f"unknown event type {event_type!r}")
    version = raw.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise MalformedEvent("schema_version is missing or not a positive integer")
    if version > model.schema_version:
        raise UnsupportedSchemaVersion(
            f"{event_type} schema version {version} is newer than the known "
            f"version {model.schema_version}"
        )
    try:
        return Envelope.model_validate(raw)
    except ValidationError as exc:
        raise MalformedEvent(describe_validation_error(exc)) from exc


def expand(envelope: Envelope) -> list[Envelope]:
    """The events a message carries: those of a group (`EventPayload.carried_types`), or the
    envelope itself. A carried event that is no valid envelope of the group's entity is a
    `MalformedEvent`, and so is a group in a group."""
    if not envelope.payload.carried_types():
        return [envelope]
    carried: list[Envelope] = []
    for index, item in enumerate(getattr(envelope.payload, "events", ())):
        try:
            event = Envelope.model_validate(item)
        except ValidationError as exc:
            raise MalformedEvent(f"events.{index}: {describe_validation_error(exc)}") from exc
        if event.payload.carried_types():
            raise MalformedEvent(f"events.{index}: a group of events in a group")
        if event.request_id != envelope.request_id or event.key != envelope.key:
            raise MalformedEvent(f"events.{index}: another entity's event")
        carried.append(event)
    return carried


def decode_all(data: bytes) -> list[Envelope]:
    """The events a message carries (`decode`, then `expand`)."""
    return expand(decode(data))


def describe_validation_error(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(body)'}: {err['msg']}" for err in exc.errors()
    )
