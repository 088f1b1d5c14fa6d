"""The worker that keeps the case search read model: the event store's notification log, folded.

It reads the case service's own notification log rather than `flowcase.case.events`: the log is
the record itself (the topic is a copy that retention may trim), it sits in the same database as
the read model, so each batch of rows and the position they reached commit in one transaction
(nothing applied twice, nothing skipped), and a rebuild is a replay of the log from position 0.
The position row is locked for the whole batch, so replicas (or a rebuild) never interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from flowcase.case.application import CaseApplication
from flowcase.case.case_search import apply

log = logging.getLogger(__name__)


class CaseSearchProjector:
    def __init__(
        self,
        *,
        application: CaseApplication,
        pool: asyncpg.Pool,
        name: str = "case-search",
        batch_size: int = 500,
        idle_wait: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self.name = name
        self._app = application
        self._pool = pool
        self._batch_size = batch_size
        self._idle_wait = idle_wait
        self._max_backoff = max_backoff
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        # The store NOTIFYs its channel on every append: listening wakes the projector at once.
        channel = self._app.recorder.channel_name
        listening = await self._pool.acquire()
        await listening.add_listener(channel, self._on_notify)
        failures = 0
        try:
            while not self._stopping.is_set():
                try:
                    applied = await self.project_next_batch()
                    failures = 0
                except Exception as exc:
                    # PostgreSQL away: the position did not move; try again, never give up.
                    failures += 1
                    delay = min(0.1 * 2**failures, self._max_backoff)
                    log.warning("projector %s failed, retrying in %.1fs: %r", self.name, delay, exc)
                    await asyncio.sleep(delay)
                    continue
                if applied == 0:
                    self._wake.clear()
                    # The timeout covers a notification lost while the listener reconnected.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._idle_wait)
        finally:
            await listening.remove_listener(channel, self._on_notify)
            await self._pool.release(listening)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def project_next_batch(self) -> int:
        """Apply the stored events after the recorded position; return how many."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO case_search_position (projection, position) VALUES ($1, 0) "
                "ON CONFLICT (projection) DO NOTHING",
                self.name,
            )
            position = await conn.fetchval(
                "SELECT position FROM case_search_position WHERE projection = $1 FOR UPDATE",
                self.name,
            )
            notifications = await asyncio.to_thread(
                self._app.recorder.select_notifications,
                position,
                self._batch_size,
                inclusive_of_start=False,
            )
            for notification in notifications:
                await apply(conn, self._app.mapper.to_domain_event(notification))
            if notifications:
                await conn.execute(
                    "UPDATE case_search_position SET position = $2 WHERE projection = $1",
                    self.name,
                    notifications[-1].id,
                )
        return len(notifications)

    async def catch_up(self) -> int:
        """Apply everything stored so far; return how many events were applied."""
        total = 0
        while applied := await self.project_next_batch():
            total += applied
        return total

    async def position(self) -> int:
        async with self._pool.acquire() as conn:
            stored = await conn.fetchval(
                "SELECT position FROM case_search_position WHERE projection = $1", self.name
            )
        return int(stored or 0)

    async def backlog(self) -> int:
        """Events stored but not yet in the read model."""
        last = await asyncio.to_thread(self._app.recorder.max_notification_id)
        return max((last or 0) - await self.position(), 0)

    async def rebuild(self) -> int:
        """Empty the read model and replay the whole event store into it."""
        async with self._pool.acquire() as conn, conn.transaction():
            # The position row's lock waits out a batch in progress elsewhere.
            await conn.execute(
                "INSERT INTO case_search_position (projection, position) VALUES ($1, 0) "
                "ON CONFLICT (projection) DO UPDATE SET position = 0",
                self.name,
            )
            await conn.execute("TRUNCATE case_search, case_search_tasks")
        return await self.catch_up()
