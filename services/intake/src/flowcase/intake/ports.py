"""What intake's service layer needs from the world, as interfaces: where submissions are
recorded (the ledger), where request status is kept (the status store) and where events go (the
publisher). The adapters (`postgres.py`, the Kafka producer) implement them; the tests' fakes
implement them in memory, so the service layer is tested without servers.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Protocol
from uuid import UUID

from flowcase.events.envelope import Envelope
from flowcase.intake.status import Observation, RequestState, RequestStatus, TimelineEntry


class Reservation(Enum):
    NEW = "new"  # first sight: the caller goes on to publish
    REPLAY = "replay"  # the same thing again: answer as before, publish nothing
    CONFLICT = "conflict"  # the same name for something different


@dataclass(frozen=True)
class Reserved:
    outcome: Reservation
    request_id: UUID


class LedgerEntry(Protocol):
    """One decision about submissions, recorded at once or not at all."""

    async def claim_records(self, positions: list[str]) -> set[str]:
        """The raw records' positions among these not decided before (the rest are
        redeliveries), claimed for this decision."""
        ...

    async def reserve_idempotency_key(
        self, scope: str, key: str, fingerprint: str, request_id: UUID
    ) -> Reserved: ...

    async def reserve_submission_id(
        self, submission_id: str, fingerprint: str, request_id: UUID, channel: str
    ) -> Reserved: ...


class SubmissionLedger(Protocol):
    """What intake decided about each submission."""

    def decision(self) -> AbstractAsyncContextManager[LedgerEntry]:
        """A decision: recorded when the block ends, forgotten when it raises."""
        ...


class StatusChange(Protocol):
    """One change of the status read model, written at once or not at all."""

    async def request_of_case(self, case_id: UUID) -> UUID | None: ...

    async def link_case(self, case_id: UUID, request_id: UUID) -> None: ...

    async def lock(self, request_ids: Sequence[UUID]) -> None:
        """Hold these requests until the change ends: concurrent changes of one request queue."""
        ...

    async def recorded(self, observed: Sequence[Observation]) -> set[tuple[UUID, UUID]]:
        """Which of these (request, event) pairs the read model holds already."""
        ...

    async def load(self, request_ids: Sequence[UUID]) -> dict[UUID, RequestState]: ...

    async def record(self, entries: Sequence[tuple[Observation, RequestState]]) -> None: ...


class StatusStore(Protocol):
    """The status read model: each request's state and timeline."""

    def change(self) -> AbstractAsyncContextManager[StatusChange]: ...

    async def holds(self, request_id: UUID) -> bool: ...

    async def get(self, request_id: UUID) -> tuple[RequestState, list[TimelineEntry]] | None: ...

    async def page(
        self,
        *,
        status: RequestStatus | None,
        request_type: str | None,
        since: datetime | None,
        before: int | None,
        limit: int,
        owner: str | None,
    ) -> list[tuple[int, RequestState]]:
        """Newest first, before position `before`: each state with its position."""
        ...

    async def reachable(self) -> str | None:
        """None when the store answers, else why not."""
        ...


class Publisher(Protocol):
    async def publish(self, envelope: Envelope) -> Any: ...

    async def publish_all(self, envelopes: Sequence[Envelope]) -> Any: ...
