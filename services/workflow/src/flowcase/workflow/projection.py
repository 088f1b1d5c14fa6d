"""The projection of the event store into the service's tables (a worker).

A `LogFollower`, like the relay: it reads the notification log after its recorded position, and
for every instance a batch touched writes the instance's row and the timers its latest state
needs (`InstanceState.timers()`, the engine's own rule), then the new position, all in one
transaction. So timers are derived from the event store: an event saved is a timer armed, even
if the service dies right after saving, and a restart goes on from the recorded position. An
event whose instance the tables cannot hold is set aside (dead-lettered) rather than left to
stop every later instance's row and timers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg
from eventsourcing.persistence import Notification

from flowcase.eventstore.follower import DeadLetters, LogFollower
from flowcase.workflow.application import WorkflowApplication
from flowcase.workflow.prometheus import refresh_pending_approvals
from flowcase.workflow.read_model import ReadModel
from flowcase.workflow.state import InstanceState

NAME = "instances"


class InstanceProjection(LogFollower):
    def __init__(
        self,
        application: WorkflowApplication,
        read_model: ReadModel,
        *,
        dead_letters: DeadLetters | None = None,
        batch_size: int = 500,
    ) -> None:
        super().__init__(
            name=NAME,
            application=application,
            pool=read_model.pool,
            batch_size=batch_size,
            dead_letters=dead_letters,
        )
        self._workflow = application
        self.advanced = asyncio.Event()
        """Set after every committed batch, for a timer loop that waits on new timers."""

    async def handle_notifications(
        self, conn: asyncpg.Connection, notifications: Sequence[Notification]
    ) -> None:
        # The newest version of each instance the batch holds (a newer one in memory will do):
        # the stored turns themselves are not read, so none is decoded here.
        touched: dict[UUID, int] = {}
        for notification in notifications:
            id_ = UUID(str(notification.originator_id))
            touched[id_] = max(touched.get(id_, 0), notification.originator_version)
        await ReadModel.apply(conn, await asyncio.to_thread(self._load, touched))
        await refresh_pending_approvals(conn)

    async def run(self) -> None:
        async with self._pool.acquire() as conn:
            await refresh_pending_approvals(conn)
        await super().run()

    async def process_next_batch(self) -> int:
        handled = await super().process_next_batch()
        if handled:
            self.advanced.set()  # after the commit, so the timer loop sees the new timers
        return handled

    def _load(
        self, touched: dict[UUID, int]
    ) -> list[tuple[InstanceState, UUID, int, datetime, datetime]]:
        # The latest state known, not the state at each notification: the rows and timers follow
        # the instance as it is now, so a batch behind the instance never re-arms a spent timer.
        loaded = []
        for id_, version in touched.items():
            instance = self._workflow.instance(id_, at_least=version)
            loaded.append(
                (instance.state, id_, instance.version, instance.created_on, instance.modified_on)
            )
        return loaded
