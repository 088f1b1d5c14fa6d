from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from flowcase.events import (
    REGISTRY,
    Envelope,
    MalformedEvent,
    UnknownEventType,
    UnsupportedSchemaVersion,
    decode,
    decode_all,
    encode,
    expand,
)
from flowcase.events.catalogue.intake import Channel, RequestSubmitted, Submission
from flowcase.events.catalogue.workflow import InstanceAdvanced, StepEntered, StepKind
from flowcase.events.codec import _carried_in_one_pass


def _submitted() -> Envelope:
    payload = RequestSubmitted(
        request_id=uuid4(),
        request_type="password_reset",
        requester="jdoe",
        priority="normal",
        submitted_at=datetime(2026, 11, 24, 10, 0, tzinfo=timezone(timedelta(hours=2))),
        channel=Channel.HTTP,
        payload={"account": "jdoe"},
    )
    return Envelope.wrap(payload, source="intake", request_id=payload.request_id)


def test_every_catalogued_event_round_trips_through_the_codec(
    example_envelopes: list[Envelope],
) -> None:
    envelopes = example_envelopes
    assert {e.event_type for e in envelopes} == set(REGISTRY)
    for envelope in envelopes:
        assert decode(encode(envelope)) == envelope


def test_encoding_is_deterministic_and_in_envelope_field_order() -> None:
    envelope = _submitted()
    assert encode(envelope) == encode(decode(encode(envelope)))
    keys = list(json.loads(encode(envelope)))
    assert keys == list(Envelope.model_fields)


def test_timestamps_are_normalised_to_utc() -> None:
    body = json.loads(encode(_submitted()))
    assert body["payload"]["submitted_at"] == "2026-11-24T08:00:00Z"


def test_the_key_is_the_entity_id() -> None:
    envelope = _submitted()
    assert envelope.key == str(envelope.payload.request_id).encode()  # type: ignore[attr-defined]


@pytest.mark.parametrize("data", [b"{not json", b"\xff\xfe", b"[1, 2]", b'"text"', b"{}"])
def test_undecodable_bytes_are_malformed(data: bytes) -> None:
    with pytest.raises(MalformedEvent):
        decode(data)


def test_deeply_nested_json_is_malformed_not_a_crash() -> None:
    with pytest.raises(MalformedEvent):
        decode(b"[" * 100_000 + b"]" * 100_000)


def test_unknown_event_type() -> None:
    body = json.loads(encode(_submitted()))
    body["event_type"] = "intake.SomethingElse"
    with pytest.raises(UnknownEventType, match=r"intake\.SomethingElse"):
        decode(json.dumps(body).encode())


def test_newer_schema_version_than_known() -> None:
    body = json.loads(encode(_submitted()))
    body["schema_version"] = 2
    with pytest.raises(UnsupportedSchemaVersion) as info:
        decode(json.dumps(body).encode())
    assert info.value.reason == "unsupported-schema-version"


def test_invalid_payload_names_the_field() -> None:
    body = json.loads(encode(_submitted()))
    body["payload"]["priority"] = "whenever"
    with pytest.raises(MalformedEvent, match="priority"):
        decode(json.dumps(body).encode())


def test_payload_of_another_type_is_refused() -> None:
    body = json.loads(encode(_submitted()))
    body["event_type"] = "workflow.InstanceCompleted"
    with pytest.raises(MalformedEvent):
        decode(json.dumps(body).encode())


def test_naive_timestamps_are_refused() -> None:
    body = json.loads(encode(_submitted()))
    body["occurred_at"] = "2026-11-24T10:00:00"
    with pytest.raises(MalformedEvent, match="occurred_at"):
        decode(json.dumps(body).encode())


@pytest.mark.parametrize("value", [12345, 1.5, True, ["2026-11-24T10:00:00Z"]])
def test_a_submission_time_must_be_date_time_text(value: object) -> None:
    body = {"request_type": "password_reset", "requester": "jdoe", "payload": {}}
    with pytest.raises(ValidationError, match="submitted_at"):
        Submission.model_validate({**body, "submitted_at": value})
    accepted = Submission.model_validate({**body, "submitted_at": "2026-11-24T10:00:00+01:00"})
    assert accepted.submitted_at is not None
    assert accepted.submitted_at.isoformat() == "2026-11-24T09:00:00+00:00"


# Several events of one entity in one message ---------------------------------------------------


def _group(request_id: UUID, *events: Envelope | dict[str, Any]) -> bytes:
    carried = [e.model_dump(mode="json") if isinstance(e, Envelope) else e for e in events]
    advanced = InstanceAdvanced(request_id=request_id, events=carried)
    return encode(Envelope.wrap(advanced, source="workflow", request_id=request_id))


def _step(request_id: UUID, step: str) -> Envelope:
    payload = StepEntered(request_id=request_id, step=step, kind=StepKind.VALIDATE)
    return Envelope.wrap(payload, source="workflow", request_id=request_id)


def test_a_group_decodes_to_the_events_it_carries_in_order() -> None:
    request_id = uuid4()
    steps = [_step(request_id, "first"), _step(request_id, "second")]
    assert decode_all(_group(request_id, *steps)) == steps
    assert decode(_group(request_id, *steps)).payload.carried_types() == (
        "workflow.StepEntered",
        "workflow.StepEntered",
    )
    assert decode_all(encode(steps[0])) == [steps[0]]  # a message of one event is itself


def test_a_group_carrying_what_is_no_event_of_its_entity_is_malformed() -> None:
    request_id = uuid4()
    step = _step(request_id, "first")
    broken = {**step.model_dump(mode="json"), "payload": {"step": "no request id"}}
    with pytest.raises(MalformedEvent, match=r"events\.1: payload\.request_id: Field required"):
        decode_all(_group(request_id, step, broken))
    with pytest.raises(MalformedEvent, match=r"events\.1: another entity's event"):
        decode_all(_group(request_id, step, _step(uuid4(), "elsewhere")))
    inner = Envelope.model_validate_json(_group(request_id, step, step))
    with pytest.raises(MalformedEvent, match=r"events\.0: a group of events in a group"):
        decode_all(_group(request_id, inner, step))


def test_the_fast_path_decodes_exactly_what_the_general_envelope_validates(
    example_envelopes: list[Envelope],
) -> None:
    # decode validates straight from the bytes with an envelope of the payload's own type; the
    # general Envelope, validated from a dict, must agree on every catalogued example.
    for envelope in example_envelopes:
        data = encode(envelope)
        decoded = decode(data)
        assert type(decoded) is Envelope
        assert decoded == Envelope.model_validate(json.loads(data))
        assert encode(decoded) == data


def test_a_carried_event_of_a_newer_version_is_refused_as_such() -> None:
    request_id = uuid4()
    step = _step(request_id, "first")
    newer = {**step.model_dump(mode="json"), "schema_version": 99}
    with pytest.raises(UnsupportedSchemaVersion, match=r"events\.1: workflow\.StepEntered"):
        decode_all(_group(request_id, step, newer))


def test_a_group_is_read_in_one_pass_as_expand_reads_it(example_envelopes: list[Envelope]) -> None:
    # decode_all validates a group's events from the bytes with the group; expand validates them
    # one by one from the group's dicts. They must agree on every event a group can carry.
    carriable = [
        e
        for e in example_envelopes
        if not e.payload.carried_types() and e.payload.entity_key == str(e.request_id)
    ]
    assert len(carriable) >= 10
    for envelope in carriable:
        assert envelope.request_id is not None
        data = _group(envelope.request_id, envelope, envelope)
        one_pass = _carried_in_one_pass(InstanceAdvanced, data)
        assert one_pass is not None, envelope.event_type
        assert [type(e) for e in one_pass] == [Envelope, Envelope]
        assert one_pass == expand(decode(data)) == decode_all(data) == [envelope, envelope]


def test_a_group_carrying_an_unknown_event_type_says_so() -> None:
    request_id = uuid4()
    step = _step(request_id, "first")
    unknown = {**step.model_dump(mode="json"), "event_type": "workflow.NoSuchEvent"}
    with pytest.raises(UnknownEventType, match=r"events\.1: unknown event type"):
        decode_all(_group(request_id, step, unknown))
