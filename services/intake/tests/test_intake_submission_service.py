"""The submission service over its ports' fakes: what is published, answered and recorded for
each submission, with no Kafka and no PostgreSQL (the same behaviour against the real servers is
in `test_intake_http.py` and `test_intake_raw_topic.py`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from flowcase.events.catalogue.intake import RequestRejected, RequestSubmitted
from flowcase.events.catalogue.workflow import DefinitionPublished
from flowcase.intake.request_types import RequestTypes
from flowcase.intake.status import RequestStatus
from flowcase.intake.status_service import StatusService
from flowcase.intake.submission_service import (
    DuplicateConflict,
    InvalidSubmission,
    RawRecord,
    SubmissionService,
    Unavailable,
)

SCHEMA = {"type": "object", "required": ["amount"], "properties": {"amount": {"type": "number"}}}


class DriverDown(Exception):
    """What a driver raises when its server is away (the service is told so by `unavailable`)."""


class Intake:
    def __init__(
        self, published: DefinitionPublished, ledger: Any, publisher: Any, status: Any
    ) -> None:
        types = RequestTypes()
        types.publish(published)
        self.ledger, self.publisher, self.status = ledger, publisher, status
        self.service = SubmissionService(
            request_types=types,
            request_types_loaded=lambda: True,
            ledger=self.ledger,
            publisher=self.publisher,
            status=StatusService(self.status),
            max_bytes=10_000,
            publish_timeout=1.0,
            unavailable=lambda exc: "the broker is away" if isinstance(exc, DriverDown) else None,
        )

    async def submit(self, key: str | None = None, **fields: Any) -> Any:
        body = {
            "request_type": "invoice_approval",
            "requester": "clerk",
            "payload": {"amount": 10},
            **fields,
        }
        return await self.service.submit(
            json.dumps(body).encode(), submitted_by="clerk", idempotency_key=key
        )


@pytest.fixture
def intake(
    definition: Callable[..., DefinitionPublished],
    fake_ledger: Any,
    fake_publisher: Any,
    fake_status_store: Any,
) -> Intake:
    """The service over the fakes of its ports (conftest.py)."""
    return Intake(definition(schema=SCHEMA), fake_ledger, fake_publisher, fake_status_store)


async def test_a_submission_is_published_once_and_its_status_readable_at_once(
    intake: Intake,
) -> None:
    receipt = await intake.submit()
    [envelope] = intake.publisher.published
    assert isinstance(envelope.payload, RequestSubmitted)
    assert envelope.request_id == receipt.request_id
    assert intake.status.committed.states[receipt.request_id].status is RequestStatus.SUBMITTED


async def test_a_retry_with_the_same_key_is_answered_as_before_and_not_published_again(
    intake: Intake,
) -> None:
    first = await intake.submit(key="k-1")
    again = await intake.submit(key="k-1")
    assert (again.request_id, again.replayed) == (first.request_id, True)
    assert len(intake.publisher.published) == 1


async def test_the_same_key_for_another_submission_is_a_conflict(intake: Intake) -> None:
    first = await intake.submit(key="k-1")
    with pytest.raises(DuplicateConflict) as conflict:
        await intake.submit(key="k-1", payload={"amount": 11})
    assert conflict.value.request_id == first.request_id
    assert len(intake.publisher.published) == 1


async def test_a_broker_that_does_not_store_it_leaves_no_reservation_behind(
    intake: Intake,
) -> None:
    intake.publisher.failure = DriverDown()
    with pytest.raises(Unavailable, match="the broker is away: the request is not accepted"):
        await intake.submit(key="k-1")
    # The reservation went with the failed decision: the retry publishes.
    receipt = await intake.submit(key="k-1")
    assert not receipt.replayed
    assert len(intake.publisher.published) == 1


async def test_a_failure_that_is_not_the_infrastructures_is_not_disguised(
    intake: Intake,
) -> None:
    intake.publisher.failure = RuntimeError("a bug")
    with pytest.raises(RuntimeError, match="a bug"):
        await intake.submit()


async def test_an_invalid_submission_publishes_nothing(intake: Intake) -> None:
    with pytest.raises(InvalidSubmission) as invalid:
        await intake.submit(payload={"amount": "ten"})
    assert [r.field for r in invalid.value.reasons] == ["payload.amount"]
    assert intake.publisher.published == []


async def test_raw_records_are_decided_once_each_whatever_is_redelivered(intake: Intake) -> None:
    at = datetime(2026, 12, 7, 9, tzinfo=UTC)
    good = json.dumps(
        {"request_type": "invoice_approval", "requester": "erp", "payload": {"amount": 5}}
    )
    records = [
        RawRecord(good.encode(), "raw:0:1", at),
        RawRecord(b"not json", "raw:0:2", at),
    ]
    await intake.service.handle_raw(records)
    await intake.service.handle_raw(records)  # the batch delivered again
    kinds = [type(e.payload) for e in intake.publisher.published]
    assert kinds == [RequestSubmitted, RequestRejected]
    # A database away when the batch comes: nothing decided, the batch comes again later.
    intake.ledger.failure = DriverDown()
    with pytest.raises(DriverDown):
        await intake.service.handle_raw([RawRecord(good.encode(), "raw:0:3", at)])
    assert "raw:0:3" not in intake.ledger.committed.positions
