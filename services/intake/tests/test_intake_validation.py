"""The judgment of submissions, without servers."""

from __future__ import annotations

import json

import pytest

from flowcase.events.catalogue.workflow import DefinitionPublished
from flowcase.intake.request_types import RequestTypes
from flowcase.intake.validation import Accepted, Refused, judge_bytes, judge_document

INVOICE_SCHEMA = {
    "type": "object",
    "required": ["invoice_id", "amount"],
    "properties": {
        "invoice_id": {"type": "string", "minLength": 1},
        "amount": {"type": "number", "exclusiveMinimum": 0},
        "due": {"type": "string", "format": "date"},
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["sku"],
                "properties": {"sku": {"type": "string"}},
            },
        },
    },
    "additionalProperties": False,
}


def definition(request_type: str = "invoice_approval", version: int = 1, schema=None):
    return DefinitionPublished(
        request_type=request_type,
        process=request_type.replace("_", "-"),
        version=version,
        title=request_type,
        request_schema=INVOICE_SCHEMA if schema is None else schema,
        steps=[],
    )


@pytest.fixture
def types() -> RequestTypes:
    catalogue = RequestTypes()
    catalogue.publish(definition())
    return catalogue


def submission(**changes):
    return {
        "submission_id": "crm-1",
        "request_type": "invoice_approval",
        "requester": "ap-clerk-7",
        "priority": "high",
        "payload": {"invoice_id": "INV-1", "amount": 10.5},
    } | changes


def fields(judgment) -> dict[str, str]:
    assert isinstance(judgment, Refused), judgment
    return {r.field: r.reason for r in judgment.reasons}


def version_in_force(catalogue: RequestTypes, request_type: str) -> int:
    kept = catalogue.get(request_type)
    assert kept is not None, f"no {request_type} in force"
    return kept.version


def test_a_valid_submission_is_accepted(types: RequestTypes) -> None:
    judgment = judge_bytes(json.dumps(submission()).encode(), types, max_bytes=10_000)
    assert isinstance(judgment, Accepted)
    assert judgment.submission.payload == {"invoice_id": "INV-1", "amount": 10.5}


def test_every_failing_field_is_named_with_a_dotted_path(types: RequestTypes) -> None:
    judgment = judge_document(
        submission(
            priority="whenever",
            requester="",
            payload={"amount": "ten", "due": "not-a-date", "lines": [{"sku": 5}], "extra": 1},
        ),
        types,
    )
    reasons = fields(judgment)
    assert set(reasons) == {
        "priority",
        "requester",
        "payload",  # the additional property
        "payload.invoice_id",
        "payload.amount",
        "payload.due",
        "payload.lines.0.sku",
    }
    assert reasons["payload.invoice_id"] == "Field required"
    assert "'ten' is not of type 'number'" in reasons["payload.amount"]
    assert "'extra' was unexpected" in reasons["payload"]
    assert "date" in reasons["payload.due"]
    assert isinstance(judgment, Refused)
    assert judgment.submission_id == "crm-1"
    assert judgment.request_type == "invoice_approval"


def test_an_unknown_type_names_the_published_ones(types: RequestTypes) -> None:
    reasons = fields(judge_document(submission(request_type="refund"), types))
    assert reasons == {
        "request_type": "unknown request type 'refund' (published types: invoice_approval)"
    }


def test_a_type_before_any_definition_is_unknown() -> None:
    reasons = fields(judge_document(submission(), RequestTypes()))
    assert "published types: none yet" in reasons["request_type"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "a submission is a JSON object, not an array"),
        (b'"text"', "a submission is a JSON object, not a string"),
        (b"null", "a submission is a JSON object, not null"),
    ],
)
def test_what_is_not_a_json_object_is_refused_as_a_whole(
    types: RequestTypes, data: bytes, expected: str
) -> None:
    reasons = fields(judge_bytes(data, types, max_bytes=1000))
    assert list(reasons) == [""]
    assert reasons[""].startswith(expected)


def test_wrong_types_of_the_submission_fields(types: RequestTypes) -> None:
    reasons = fields(
        judge_document(submission(requester=7, payload="x", submitted_at="yesterday"), types)
    )
    assert set(reasons) == {"requester", "payload", "submitted_at"}


def test_a_submission_over_the_limit_is_refused_before_parsing(types: RequestTypes) -> None:
    data = json.dumps(submission(payload={"invoice_id": "x" * 500, "amount": 1})).encode()
    reasons = fields(judge_bytes(data, types, max_bytes=100))
    assert reasons[""] == f"the submission is {len(data)} bytes, over the limit of 100 bytes"


def test_the_newest_definition_of_a_type_is_kept() -> None:
    catalogue = RequestTypes()
    assert catalogue.publish(definition(version=2, schema={"type": "object", "required": ["a"]}))
    assert not catalogue.publish(definition(version=1))
    assert version_in_force(catalogue, "invoice_approval") == 2
    assert catalogue.publish(definition(version=3))
    assert [t.version for t in catalogue] == [3]
    catalogue.withdraw("invoice_approval")
    assert len(catalogue) == 0


def test_a_definition_with_an_invalid_schema_leaves_the_previous_one_in_force() -> None:
    catalogue = RequestTypes()
    catalogue.publish(definition(version=1))
    assert not catalogue.publish(definition(version=2, schema={"type": "no-such-type"}))
    assert version_in_force(catalogue, "invoice_approval") == 1


def _with_payload_text(text: str) -> bytes:
    """A valid invoice whose payload ends with `"extra": <text>` spliced in as raw JSON."""
    body = json.dumps(submission(payload={"invoice_id": "INV-1", "amount": 10.5}))
    return body.replace('"amount": 10.5}', f'"amount": 10.5, "extra": {text}}}').encode()


@pytest.mark.parametrize(
    ("raw", "field", "reason"),
    [
        ("NaN", "payload.extra", "NaN is not a finite number"),
        ("Infinity", "payload.extra", "Infinity is not a finite number"),
        ("-Infinity", "payload.extra", "-Infinity is not a finite number"),
        ("1e400", "payload.extra", "out of the range of numbers"),
        ("9" * 5000, "payload.extra", "more than 64 digits"),
        ('"a\\u0000b"', "payload.extra", "NUL character"),
        ('"a\\ud800b"', "payload.extra", "lone surrogate"),
        ('{"\\udc00": 1}', "payload.extra", "a key contains a lone surrogate"),
        ("[" * 40 + "]" * 40, "payload.extra.0.0.0", "nested deeper than 32 levels"),
    ],
    ids=["nan", "inf", "-inf", "1e400", "5000-digits", "nul", "surrogate", "surrogate-key", "deep"],
)
def test_what_no_consumer_can_store_is_refused_naming_the_field(
    types: RequestTypes, raw: str, field: str, reason: str
) -> None:
    judgment = judge_bytes(_with_payload_text(raw), types, max_bytes=1_000_000)
    assert isinstance(judgment, Refused)
    assert judgment.submission_id == "crm-1"
    [found] = judgment.reasons
    assert found.field.startswith(field)  # the deep one names the level where it went too deep
    assert reason in found.reason


@pytest.mark.parametrize(
    ("submitted_at", "reason"),
    [
        ("9999-12-31T23:59:59Z", "more than a day ahead of now"),
        ("9999-12-31T23:59:00-01:00", "out of the range of dates in UTC"),
        ("0001-01-01T00:00:00+01:00", "out of the range of dates in UTC"),
        ("1969-12-31T23:59:59Z", "before 1970"),
    ],
)
def test_a_submission_time_downstream_cannot_compute_with_is_refused(
    types: RequestTypes, submitted_at: str, reason: str
) -> None:
    judgment = judge_document(submission(submitted_at=submitted_at), types)
    assert isinstance(judgment, Refused)
    assert [r.field for r in judgment.reasons] == ["submitted_at"]
    assert reason in judgment.reasons[0].reason


def test_a_nul_in_the_requester_is_refused_before_it_reaches_the_database(
    types: RequestTypes,
) -> None:
    judgment = judge_bytes(
        json.dumps(submission(requester="ap\u0000clerk")).encode(), types, max_bytes=10_000
    )
    assert isinstance(judgment, Refused)
    assert [r.field for r in judgment.reasons] == ["requester"]
