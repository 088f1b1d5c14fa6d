"""Intake: what upstream systems submit, and what intake publishes about it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from flowcase.events.catalogue.base import EventPayload, UtcDatetime, catalogued
from flowcase.events.catalogue.common import Priority, Reason
from flowcase.events.topics import Topic

_REQUEST_ID = "0b5e6a0e-8f3c-4c1e-9a57-6d2f3c4b5a69"


class Channel(StrEnum):
    HTTP = "http"
    KAFKA = "kafka"


# A backfill may date a request years back; one dated ahead of now by more than a clock's skew
# would sit before every later request and overflow the deadlines computed from it.
EARLIEST_SUBMISSION = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_SKEW = timedelta(days=1)


def _plausible(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value < EARLIEST_SUBMISSION:
        raise ValueError("must not be before 1970")
    if value > datetime.now(UTC) + LATEST_SKEW:
        raise ValueError("must not be more than a day ahead of now")
    return value


def _date_time_text(value: Any) -> Any:
    # Upstream JSON carries times as text (the published schema says so); a bare number would
    # be read as Unix seconds and date a request in 1970.
    if value is not None and not isinstance(value, str | datetime):
        raise ValueError("must be an ISO 8601 date-time string with a time zone")
    return value


class Submission(BaseModel):
    """A request as an upstream system submits it, over HTTP or on `flowcase.intake.submissions`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "submission_id": "crm-48213",
                    "request_type": "invoice_approval",
                    "requester": "ap-clerk-7",
                    "priority": "normal",
                    "payload": {"invoice_id": "INV-2291", "amount": 1840.5, "vendor": "Acme"},
                }
            ]
        },
    )

    submission_id: str | None = Field(
        default=None,
        max_length=200,
        description="The upstream system's own id; a repeated id is accepted once.",
    )
    request_type: str = Field(
        min_length=1,
        max_length=100,
        pattern=r"^[a-z][a-z0-9_.-]*$",
        description="A request type published by the workflow service.",
    )
    requester: str = Field(
        min_length=1, max_length=200, description="Who asks: a person or system."
    )
    priority: Priority = Priority.NORMAL
    submitted_at: Annotated[
        UtcDatetime | None, BeforeValidator(_date_time_text), AfterValidator(_plausible)
    ] = Field(
        default=None,
        description="Event time for backfills (from 1970 to a day ahead of now); defaults to "
        "the time of receipt.",
    )
    tenant: str | None = Field(default=None, max_length=100)
    payload: dict[str, Any] = Field(
        description="Type-specific fields, checked against the type's schema."
    )


@catalogued(
    "intake.RequestSubmitted",
    topic=Topic.INTAKE_REQUESTS,
    key="request_id",
    examples=[
        {
            "request_id": _REQUEST_ID,
            "submission_id": "crm-48213",
            "request_type": "invoice_approval",
            "requester": "ap-clerk-7",
            "priority": "normal",
            "submitted_at": "2026-11-24T09:15:00Z",
            "channel": "http",
            "payload": {"invoice_id": "INV-2291", "amount": 1840.5, "vendor": "Acme"},
        }
    ],
)
class RequestSubmitted(EventPayload):
    request_id: UUID
    submission_id: str | None = None
    request_type: str
    requester: str
    priority: Priority
    submitted_at: UtcDatetime
    channel: Channel
    payload: dict[str, Any]


@catalogued(
    "intake.RequestRejected",
    topic=Topic.INTAKE_REJECTED,
    key="rejection_id",
    examples=[
        {
            "rejection_id": "5f0c1d2e-3b4a-4c5d-8e6f-7a8b9c0d1e2f",
            "submission_id": "crm-48214",
            "request_type": "invoice_approval",
            "channel": "kafka",
            "reasons": [{"field": "payload.amount", "reason": "Input should be a valid number"}],
            "original_base64": "eyJyZXF1ZXN0X3R5cGUiOiAiaW52b2ljZV9hcHByb3ZhbCJ9",
        }
    ],
)
class RequestRejected(EventPayload):
    """A submission that failed validation. The original bytes are kept whole (base64)."""

    rejection_id: UUID
    submission_id: str | None = None
    request_type: str | None = None
    channel: Channel
    reasons: list[Reason] = Field(min_length=1)
    original_base64: str = Field(description="The submission exactly as received, base64-encoded.")
