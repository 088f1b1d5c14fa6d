"""Bytes in, bytes out: the one JSON encoding of an envelope, and typed decode errors.

Encoding is deterministic: fields in model order, timestamps as UTC ISO-8601. Decoding tells apart
the three reasons a consumer cannot use a message, so each becomes a dead-letter record with its
reason instead of a crash or a silent drop. A message may carry several events of one entity
(`workflow.InstanceAdvanced`): `decode_all` and `expand` give the events it carries.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    create_model,
)

from flowcase.events.catalogue.base import REGISTRY, EventPayload
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


class _Head(BaseModel):
    """What says how to read the rest of an envelope."""

    model_config = ConfigDict(extra="ignore")

    event_type: StrictStr
    schema_version: StrictInt = Field(ge=1)


@functools.cache
def _envelope_of(model: type[EventPayload]) -> type[BaseModel]:
    """The envelope of one payload type, which pydantic's core validates straight from JSON bytes
    in one pass (the general `Envelope` must first read `event_type` to know its payload)."""
    fields: Any = {
        name: (field.annotation, field)
        for name, field in Envelope.model_fields.items()
        if name != "payload"
    }
    # The payload last, as in `Envelope`: the fields are serialized in the order they are held.
    fields["payload"] = (model, ...)
    return create_model(
        f"{model.__name__}Envelope", __config__=ConfigDict(extra="forbid", frozen=True), **fields
    )


def _as_envelope(typed: BaseModel) -> Envelope:
    """The `Envelope` of fields validated already, its payload of the type its event_type names:
    what `Envelope.model_construct` makes, without its second pass over every field (which
    costs more than the validation did)."""
    envelope = Envelope.__new__(Envelope)
    object.__setattr__(envelope, "__dict__", typed.__dict__.copy())
    object.__setattr__(envelope, "__pydantic_fields_set__", typed.__pydantic_fields_set__)
    object.__setattr__(envelope, "__pydantic_extra__", None)
    object.__setattr__(envelope, "__pydantic_private__", None)
    return envelope


def decode(data: bytes) -> Envelope:
    """The envelope in `data`, validated by pydantic's core from the bytes; anything wrong with
    them is read the slow way, to say exactly what (`_decode_slowly`)."""
    try:
        head = _Head.model_validate_json(data)
    except ValidationError:
        return _decode_slowly(data)
    model = _model_of(head.event_type, head.schema_version)
    try:
        return _as_envelope(_envelope_of(model).model_validate_json(data))
    except ValidationError as exc:
        raise MalformedEvent(describe_validation_error(exc)) from exc


def _model_of(event_type: str, version: int) -> type[EventPayload]:
    model = REGISTRY.get(event_type)
    if model is None:
        raise UnknownEventType(f"unknown event type {event_type!r}")
    if version > model.schema_version:
        raise UnsupportedSchemaVersion(
            f"{event_type} schema version {version} is newer than the known "
            f"version {model.schema_version}"
        )
    return model


def _decode_slowly(data: bytes) -> Envelope:
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
    version: Any = raw.get("schema_version")
    positive = isinstance(version, int) and not isinstance(version, bool) and version >= 1
    _model_of(event_type, version if positive else 1)  # an unknown type is that first
    if not positive:
        raise MalformedEvent("schema_version is missing or not a positive integer")
    try:
        return Envelope.model_validate(raw)
    except ValidationError as exc:
        raise MalformedEvent(describe_validation_error(exc)) from exc


def expand(envelope: Envelope) -> list[Envelope]:
    """The events a message carries: those of a group (`EventPayload.carried_types`), or the
    envelope itself. A carried event that is no valid envelope of the group's entity is a
    `MalformedEvent`, and so is a group in a group; one of a type or a version this consumer does
    not know raises as a message of it would."""
    if not envelope.payload.carried_types():
        return [envelope]
    carried: list[Envelope] = []
    for index, item in enumerate(getattr(envelope.payload, "events", ())):
        try:
            head = _Head.model_validate(item)
            model = _model_of(head.event_type, head.schema_version)
            event = _as_envelope(_envelope_of(model).model_validate(item))
        except ValidationError as exc:
            raise MalformedEvent(f"events.{index}: {describe_validation_error(exc)}") from exc
        except EventDecodeError as exc:  # an unknown type, a newer version: said as such
            raise type(exc)(f"events.{index}: {exc.detail}") from exc
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
