"""Bytes in, bytes out: the one JSON encoding of an envelope, and typed decode errors.

Encoding is deterministic: fields in model order, timestamps as UTC ISO-8601. Decoding tells apart
the three reasons a consumer cannot use a message, so each becomes a dead-letter record with its
reason instead of a crash or a silent drop. A message may carry several events of one entity
(`workflow.InstanceAdvanced`): `decode_all` and `expand` give the events it carries.
"""

from __future__ import annotations

import functools
import json
from typing import Annotated, Any, Literal, Union

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
    return _decode_headed(data, head)


def _decode_headed(data: bytes, head: _Head) -> Envelope:
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
    """The events a message carries (`decode`, then `expand`). A group's are validated from the
    bytes in the same pass as the group (`_carried_in_one_pass`); a group that pass refuses is
    read again the way `expand` reads it, to say exactly what is wrong."""
    try:
        head = _Head.model_validate_json(data)
    except ValidationError:
        return expand(_decode_slowly(data))
    model = REGISTRY.get(head.event_type)
    if model is not None and _is_group(model) and head.schema_version <= model.schema_version:
        carried = _carried_in_one_pass(model, data)
        if carried is not None:
            return carried
    return expand(_decode_headed(data, head))


def _is_group(model: type[EventPayload]) -> bool:
    return model.carried_types is not EventPayload.carried_types


@functools.cache
def _carried_envelope_of(event_type: str) -> type[BaseModel]:
    """`_envelope_of` the type's payload with `event_type` fixed to it: one tagged member of the
    union a group's events are validated as."""
    tag: Any = Literal[event_type]
    return create_model(
        f"Carried{REGISTRY[event_type].__name__}Envelope",
        __base__=_envelope_of(REGISTRY[event_type]),
        event_type=(tag, ...),
    )


@functools.cache
def _typed_group_of(model: type[EventPayload]) -> type[BaseModel]:
    """The envelope of group payload `model` with its `events` typed: each carried envelope
    validated, by its event_type, in the pass that validates the group. A group in a group is
    no member of the union, so that pass refuses it."""
    members = tuple(
        _carried_envelope_of(event_type) for event_type, m in REGISTRY.items() if not _is_group(m)
    )
    carried: Any = Annotated[Union[members], Field(discriminator="event_type")]  # noqa: UP007
    typed = create_model(
        f"Typed{model.__name__}",
        __base__=model,
        events=(list[carried], model.model_fields["events"]),
    )
    return _envelope_of(typed)


def _carried_in_one_pass(model: type[EventPayload], data: bytes) -> list[Envelope] | None:
    """The events of group message `data`, or None where anything is amiss: invalid bytes, a
    carried event of a newer version than this consumer knows, another entity's event."""
    try:
        group: Any = _typed_group_of(model).model_validate_json(data)
    except ValidationError:
        return None
    carried = [_as_envelope(event) for event in group.payload.events]
    key = group.payload.entity_key
    for event in carried:
        if (
            event.schema_version > REGISTRY[event.event_type].schema_version
            or event.request_id != group.request_id
            or event.payload.entity_key != key
        ):
            return None
    return carried


def describe_validation_error(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(body)'}: {err['msg']}" for err in exc.errors()
    )
