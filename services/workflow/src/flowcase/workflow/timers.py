"""The timer loop (a worker): fires the durable timers that are due.

Timers live in `workflow_timers`, which the projection derives from the event store. The loop
takes the due ones with `FOR UPDATE SKIP LOCKED` (so replicas share the work), delivers
`FireTimer` to each instance, and deletes the row in the same transaction. A crash after the
delivery and before the commit delivers the timer again after the restart, which the engine
ignores (a timer that already fired is no longer armed): exactly once in effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from uuid import UUID

from flowcase.events.tracing import untraced
from flowcase.workflow.read_model import ReadModel

log = logging.getLogger(__name__)

Fire = Callable[[UUID, str], Awaitable[None]]
Clock = Callable[[], datetime]


class TimerLoop:
    def __init__(
        self,
        read_model: ReadModel,
        fire: Fire,
        clock: Clock,
        *,
        poll_seconds: float = 1.0,
        wake: asyncio.Event | None = None,
        batch_size: int = 50,
    ) -> None:
        self._read_model = read_model
        self._fire = fire
        self._clock = clock
        self._poll = poll_seconds
        self._wake = wake or asyncio.Event()
        self._batch_size = batch_size
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            # Every database call of the cycle is inside the retry: an outage (a PostgreSQL
            # restart) at any point must leave the loop waiting, never stop the service.
            try:
                if await self.fire_due():
                    failures = 0
                    continue
                self._wake.clear()
                with untraced():  # a poll: nobody's request
                    wait = await self._wait_seconds()
                failures = 0
            except Exception as exc:
                failures += 1
                delay = min(0.1 * 2**failures, 30.0)
                log.warning("timer loop failed, retrying in %.1fs: %r", delay, exc)
                await asyncio.sleep(delay)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def _wait_seconds(self) -> float:
        next_at = await self._read_model.next_timer_at()
        if next_at is None:
            return self._poll
        return max(0.0, min(self._poll, (next_at - self._clock()).total_seconds()))

    async def fire_due(self) -> int:
        """Fire the timers due now; how many."""
        now = self._clock()
        with untraced():  # the poll, which mostly finds nothing: no spans for it
            if not await self._read_model.pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM workflow_timers WHERE fire_at <= $1)", now
            ):
                return 0
        fired = 0
        async with self._read_model.pool.acquire() as conn, conn.transaction():
            due = await conn.fetch(
                "SELECT request_id, timer_id FROM workflow_timers WHERE fire_at <= $1 "
                "ORDER BY fire_at LIMIT $2 FOR UPDATE SKIP LOCKED",
                now,
                self._batch_size,
            )
            for row in due:
                await self._fire(row["request_id"], row["timer_id"])
                await conn.execute(
                    "DELETE FROM workflow_timers WHERE request_id = $1 AND timer_id = $2",
                    row["request_id"],
                    row["timer_id"],
                )
                fired += 1
        return fired
