"""The service layer of the status read model: projecting events, answering queries."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from flowcase.events.catalogue import case
from flowcase.events.envelope import Envelope
from flowcase.intake.ports import StatusChange, StatusStore
from flowcase.intake.status import (
    DeadLetter,
    Observation,
    RequestState,
    RequestStatus,
    TimelineEntry,
    advance,
    observe,
    observe_dead_letter,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RequestPage:
    items: list[RequestState]
    # The position to continue from, when there may be more.
    next_before: int | None


# How often a retry answered from the ledger looks for the original's status (`readable`).
READABLE_POLL_SECONDS = 0.02


class StatusService:
    def __init__(self, store: StatusStore) -> None:
        self._store = store

    async def project(self, envelopes: Sequence[Envelope | DeadLetter]) -> int:
        """Fold events (and the workflow's dead letters) into the read model, in one
        transaction; how many changed it (an event already recorded, or one that says nothing
        about a request, changes nothing). The requests a batch touches are locked, read and
        written a statement each, whatever the batch's size: folding happens in memory."""
        async with self._store.change() as change:
            observed: list[Observation] = []
            for envelope in envelopes:
                if isinstance(envelope, DeadLetter):
                    seen = observe_dead_letter(envelope)
                else:
                    seen = observe(envelope, request_id=await _request_of(envelope, change))
                if seen is not None:
                    observed.append(seen)
            if not observed:
                return 0
            request_ids = list(dict.fromkeys(seen.request_id for seen in observed))
            await change.lock(request_ids)
            recorded = await change.recorded(observed)
            states = await change.load(request_ids)
            entries: list[tuple[Observation, RequestState]] = []
            for seen in observed:
                if (seen.request_id, seen.event_id) in recorded:
                    continue
                recorded.add((seen.request_id, seen.event_id))
                states[seen.request_id] = advance(states.get(seen.request_id), seen)
                entries.append((seen, states[seen.request_id]))
            await change.record(entries)
            return len(entries)

    async def readable(self, request_id: UUID, *, within: float) -> bool:
        """Whether the request's status can be read, waiting up to `within` seconds for it."""
        deadline = time.monotonic() + within
        while not await self._store.holds(request_id):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(READABLE_POLL_SECONDS)
        return True

    async def request(self, request_id: UUID) -> tuple[RequestState, list[TimelineEntry]] | None:
        return await self._store.get(request_id)

    async def page(
        self,
        *,
        status: RequestStatus | None = None,
        request_type: str | None = None,
        since: datetime | None = None,
        before: int | None = None,
        limit: int,
        owner: str | None = None,
    ) -> RequestPage:
        rows = await self._store.page(
            status=status,
            request_type=request_type,
            since=since,
            before=before,
            limit=limit + 1,
            owner=owner,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return RequestPage(
            items=[state for _, state in rows], next_before=rows[-1][0] if more else None
        )

    async def reachable(self) -> str | None:
        return await self._store.reachable()


async def _request_of(envelope: Envelope, change: StatusChange) -> UUID | None:
    """The request an event concerns. Case events after `CaseOpened` name only their case."""
    payload = envelope.payload
    if isinstance(payload, case.CaseOpened):
        if payload.request_id is not None:
            await change.link_case(payload.case_id, payload.request_id)
        return payload.request_id
    request_id = getattr(payload, "request_id", None)
    case_id = getattr(payload, "case_id", None)
    if request_id is None and isinstance(case_id, UUID):
        # None for a case a person opened by hand: it follows no request.
        return await change.request_of_case(case_id)
    return request_id if isinstance(request_id, UUID) else None
