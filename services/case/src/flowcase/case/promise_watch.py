"""The watch over escalated requests' promises in their cases (a worker).

A case opened from an escalation works against the request's due time (`Case.due_at`). Every
`every` seconds the watch asks the search read model for the open cases whose due time has
passed and whose broken promise is not stated yet, and has each case state it
(`case.PromiseBroken`). The case states it once whatever happens: the aggregate refuses a second
statement, and a concurrent writer's save makes this one conflict and wait for the next look. The
read model follows the store, so a restart (a kill -9 included) looks again and finds whatever
was not done; a case the projector has not reached yet is found on a later look.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from eventsourcing.persistence import RecordConflictError

from flowcase.case.case_search import CaseSearch
from flowcase.case.case_service import CaseService
from flowcase.events.tracing import untraced

log = logging.getLogger(__name__)


class PromiseWatch:
    def __init__(
        self,
        service: CaseService,
        search: CaseSearch,
        clock: Callable[[], datetime],
        *,
        every: float,
    ) -> None:
        self._service = service
        self._search = search
        self._clock = clock
        self._every = every
        self._stopping = asyncio.Event()
        self.stated = 0
        """Broken promises this process stated."""

    async def look(self) -> int:
        """State every broken promise due now; how many were stated."""
        now = self._clock()
        with untraced():  # a poll: nobody's request
            due = await self._search.promises_due(now)
        stated = 0
        for case_id in due:
            with contextlib.suppress(RecordConflictError):  # the next look decides again
                stated += await self._service.record_broken_promise(case_id, now)
        self.stated += stated
        return stated

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.look()
            except Exception as exc:
                # The database is away: the next look finds what this one could not.
                log.warning("could not look for broken promises: %r", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._every)

    def stop(self) -> None:
        self._stopping.set()
