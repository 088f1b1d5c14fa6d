"""The service layer of submissions: judge, deduplicate, publish, for both channels.

A submission is accepted only once Kafka acknowledged its `intake.RequestSubmitted` (acks=all).
The record of the decision (idempotency key, submission id, raw record) commits after that
acknowledgement, in the same transaction that reserved it; a crash in between leaves nothing
recorded, and the retry publishes an event with the same ids, which consumers deduplicate.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

from flowcase.events.catalogue.common import Reason
from flowcase.events.catalogue.intake import Channel, RequestRejected, RequestSubmitted, Submission
from flowcase.events.envelope import Envelope
from flowcase.events.tracing import request_scope
from flowcase.intake import identity
from flowcase.intake.ports import LedgerEntry, Publisher, Reservation, SubmissionLedger
from flowcase.intake.request_types import RequestTypes
from flowcase.intake.status_service import StatusService
from flowcase.intake.validation import Refused, judge_bytes

log = logging.getLogger(__name__)

SOURCE = "intake"
_RETRY = "the request is not accepted; retry it (with an Idempotency-Key, retrying is safe)"


@dataclass(frozen=True)
class RawRecord:
    data: bytes
    # Where the record sits (topic:partition:offset): its identity.
    position: str
    # When Kafka received it: the event time of a submission without `submitted_at`.
    received_at: datetime


class InvalidSubmission(Exception):
    def __init__(self, reasons: list[Reason]) -> None:
        super().__init__("; ".join(f"{r.field or '(body)'}: {r.reason}" for r in reasons))
        self.reasons = reasons


class DuplicateConflict(Exception):
    """The same idempotency key or submission id, used before for a different submission."""

    def __init__(self, detail: str, request_id: UUID) -> None:
        super().__init__(detail)
        self.detail = detail
        self.request_id = request_id


class Unavailable(Exception):
    """Kafka or PostgreSQL did not answer, or the request types are still loading: retry later."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class Receipt:
    request_id: UUID
    # True when an earlier identical submission already published this request.
    replayed: bool = False


class SubmissionService:
    def __init__(
        self,
        *,
        request_types: RequestTypes,
        request_types_loaded: Callable[[], bool],
        ledger: SubmissionLedger,
        publisher: Publisher,
        status: StatusService,
        max_bytes: int,
        publish_timeout: float,
        unavailable: Callable[[BaseException], str | None],
    ) -> None:
        """`unavailable` reads a failure of the ledger or the publisher: which part of the
        infrastructure did not answer (the submission may be retried), or None for a failure
        that is not the infrastructure's."""
        self._types = request_types
        self._loaded = request_types_loaded
        self._ledger = ledger
        self._publisher = publisher
        self._status = status
        self._max_bytes = max_bytes
        self._publish_timeout = publish_timeout
        self._unavailable = unavailable

    async def submit(
        self,
        body: bytes,
        *,
        submitted_by: str,
        as_requester: bool = False,
        idempotency_key: str | None = None,
    ) -> Receipt:
        """A submission over HTTP by the authenticated `submitted_by` (a person submitting for
        themselves when `as_requester`: the submission's requester must then be them). Raises
        InvalidSubmission, DuplicateConflict or Unavailable."""
        if not self._loaded():
            raise Unavailable("the request types are still loading")
        judgment = judge_bytes(body, self._types, max_bytes=self._max_bytes)
        if isinstance(judgment, Refused):
            raise InvalidSubmission(judgment.reasons)
        submission = judgment.submission
        if as_requester and submission.requester != submitted_by:
            raise InvalidSubmission(
                [
                    Reason(
                        field="requester",
                        reason="a requester submits as themselves: the token's subject",
                    )
                ]
            )
        request_id = _request_id(submission, idempotency_key)
        # From here on the work, its logs and its span belong to this request's journey.
        with request_scope(request_id):
            envelope = _submitted(
                submission, request_id, Channel.HTTP, datetime.now(UTC), submitted_by=submitted_by
            )
            try:
                receipt = await self._publish_once(submission, idempotency_key, envelope)
            except (DuplicateConflict, InvalidSubmission):
                raise
            except TimeoutError as exc:
                raise Unavailable(
                    f"Kafka did not acknowledge the request within {self._publish_timeout:g} s: "
                    f"{_RETRY}"
                ) from exc
            except Exception as exc:
                if (away := self._unavailable(exc)) is None:
                    raise
                raise Unavailable(f"{away}: {_RETRY}") from exc
            if not receipt.replayed:
                # The status is readable as soon as the answer arrives; the projector, consuming the
                # same event later, finds it recorded and changes nothing.
                try:
                    await self._status.project([envelope])
                except Exception:
                    log.warning("status of %s left to the projector", request_id, exc_info=True)
            elif not await self._status.readable(receipt.request_id, within=self._publish_timeout):
                # A retry racing the original: its reservation committed, its status write is a
                # moment behind. Waited for; if it never came, the projector writes it.
                log.warning("status of %s not readable yet after a replay", receipt.request_id)
            return receipt

    async def _publish_once(
        self, submission: Submission, idempotency_key: str | None, envelope: Envelope
    ) -> Receipt:
        request_id = envelope.request_id
        assert request_id is not None
        if idempotency_key is None and submission.submission_id is None:
            await self._publish(envelope)
            return Receipt(request_id)
        digest = identity.fingerprint(submission.model_dump(mode="json"))
        async with self._ledger.decision() as decision:
            if idempotency_key is not None:
                reserved = await decision.reserve_idempotency_key(
                    submission.requester, idempotency_key, digest, request_id
                )
                if reserved.outcome is Reservation.CONFLICT:
                    raise DuplicateConflict(
                        f"the Idempotency-Key {idempotency_key!r} of {submission.requester} was "
                        f"used for a different submission (request {reserved.request_id})",
                        reserved.request_id,
                    )
                if reserved.outcome is Reservation.REPLAY:
                    return Receipt(reserved.request_id, replayed=True)
            if submission.submission_id is not None:
                reserved = await decision.reserve_submission_id(
                    submission.submission_id, digest, request_id, Channel.HTTP.value
                )
                if reserved.outcome is Reservation.CONFLICT:
                    raise DuplicateConflict(
                        f"the submission_id {submission.submission_id!r} was accepted before with "
                        f"different content (request {reserved.request_id})",
                        reserved.request_id,
                    )
                if reserved.outcome is Reservation.REPLAY:
                    return Receipt(reserved.request_id, replayed=True)
            await self._publish(envelope)
        return Receipt(request_id)

    async def handle_raw(self, records: Sequence[RawRecord]) -> None:
        """Raw submissions from `flowcase.intake.submissions`, decided in one transaction: each
        becomes a published request or rejection. A record is named by its position, so a
        redelivery is recognized and gets the same ids. Infrastructure failures propagate, to be
        retried."""
        async with self._ledger.decision() as decision:
            new = await decision.claim_records([record.position for record in records])
            envelopes = [
                envelope
                for record in records
                if record.position in new
                and (envelope := await self._decide(decision, record)) is not None
            ]
            if envelopes:
                await asyncio.wait_for(
                    self._publisher.publish_all(envelopes), self._publish_timeout
                )

    async def _decide(self, decision: LedgerEntry, record: RawRecord) -> Envelope | None:
        judgment = judge_bytes(record.data, self._types, max_bytes=self._max_bytes)
        if isinstance(judgment, Refused):
            return _rejected(judgment, record)
        submission = judgment.submission
        if submission.submission_id is None:
            request_id = identity.request_id_for_record(record.position)
        else:
            request_id = identity.request_id_for_submission(submission.submission_id)
            reserved = await decision.reserve_submission_id(
                submission.submission_id,
                identity.fingerprint(submission.model_dump(mode="json")),
                request_id,
                Channel.KAFKA.value,
            )
            if reserved.outcome is Reservation.REPLAY:
                log.info("submission at %s seen before; not republished", record.position)
                return None
            if reserved.outcome is Reservation.CONFLICT:
                return _rejected(
                    Refused(
                        [
                            Reason(
                                field="submission_id",
                                reason=f"already accepted as request {reserved.request_id} "
                                "with different content",
                            )
                        ],
                        submission_id=submission.submission_id,
                        request_type=submission.request_type,
                    ),
                    record,
                )
        return _submitted(submission, request_id, Channel.KAFKA, record.received_at)

    async def _publish(self, envelope: Envelope) -> None:
        await asyncio.wait_for(self._publisher.publish(envelope), self._publish_timeout)


def _request_id(submission: Submission, idempotency_key: str | None) -> UUID:
    if submission.submission_id is not None:
        return identity.request_id_for_submission(submission.submission_id)
    if idempotency_key is not None:
        return identity.request_id_for_idempotency_key(submission.requester, idempotency_key)
    return uuid4()


def _submitted(
    submission: Submission,
    request_id: UUID,
    channel: Channel,
    received_at: datetime,
    *,
    submitted_by: str | None = None,
) -> Envelope:
    """The request's event; its actor is who submitted it: the authenticated caller over HTTP,
    the requester on the raw topic (whose producers Kafka's ACLs authenticate)."""
    submitted_at = submission.submitted_at or received_at
    return Envelope.wrap(
        RequestSubmitted(
            request_id=request_id,
            submission_id=submission.submission_id,
            request_type=submission.request_type,
            requester=submission.requester,
            priority=submission.priority,
            submitted_at=submitted_at,
            channel=channel,
            payload=submission.payload,
        ),
        source=SOURCE,
        request_id=request_id,
        occurred_at=submitted_at,
        actor=submitted_by or submission.requester,
        tenant=submission.tenant,
        event_id=identity.event_id_for(request_id),
    )


def _rejected(judgment: Refused, record: RawRecord) -> Envelope:
    rejection_id = identity.rejection_id_for_record(record.position)
    return Envelope.wrap(
        RequestRejected(
            rejection_id=rejection_id,
            submission_id=judgment.submission_id,
            request_type=judgment.request_type,
            channel=Channel.KAFKA,
            reasons=judgment.reasons,
            original_base64=base64.b64encode(record.data).decode(),
        ),
        source=SOURCE,
        occurred_at=record.received_at,
        event_id=identity.event_id_for(rejection_id),
    )
