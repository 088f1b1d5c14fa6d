"""The worker that keeps the case search read model: the event store's notification log, folded.

It reads the case service's own notification log rather than `flowcase.case.events`: the log is
the record itself (the topic is a copy that retention may trim), it sits in the same database as
the read model, so each batch of rows and the position they reached commit in one transaction
(nothing applied twice, nothing skipped), and a rebuild is a replay of the log from position 0.
A case the read model cannot hold (a NUL in its title) is set aside, not left to stall search.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from flowcase.case.application import CaseApplication
from flowcase.case.case_search import apply
from flowcase.case.prometheus import refresh_open_cases
from flowcase.eventstore.follower import DeadLetters, LogFollower


class CaseSearchProjector(LogFollower):
    def __init__(
        self,
        *,
        application: CaseApplication,
        pool: asyncpg.Pool,
        dead_letters: DeadLetters | None = None,
        name: str = "case-search",
    ) -> None:
        super().__init__(name=name, application=application, pool=pool, dead_letters=dead_letters)

    async def handle(self, conn: asyncpg.Connection, events: Sequence[Any]) -> None:
        for event in events:
            await apply(conn, event)
        await refresh_open_cases(conn)

    async def run(self) -> None:
        async with self._pool.acquire() as conn:
            await refresh_open_cases(conn)
        await super().run()

    async def rebuild(self) -> int:
        """Empty the read model and replay the whole event store into it."""
        async with self._pool.acquire() as conn, conn.transaction():
            await self.rewind(conn)
            await conn.execute("TRUNCATE case_search, case_search_tasks")
        return await self.catch_up()
