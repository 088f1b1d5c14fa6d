"""The projection of the event store into the service's tables (a worker).

It reads the notification log after its recorded position, like the relay does for Kafka, and
for every instance a batch touched writes the instance's row and the timers its latest state
needs (`InstanceState.timers()`, the engine's own rule), then the new position, all in one
transaction. So timers are derived from the event store: an event saved is a timer armed, even
if the service dies right after saving, and a restart goes on from the recorded position.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from uuid import UUID

from flowcase.workflow.application import WorkflowApplication
from flowcase.workflow.read_model import ReadModel
from flowcase.workflow.state import InstanceState

log = logging.getLogger(__name__)

NAME = "instances"


class InstanceProjection:
    def __init__(
        self,
        application: WorkflowApplication,
        read_model: ReadModel,
        *,
        batch_size: int = 500,
        idle_wait: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self._app = application
        self._read_model = read_model
        self._batch_size = batch_size
        self._idle_wait = idle_wait
        self._max_backoff = max_backoff
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.position = 0
        self.caught_up = asyncio.Event()
        """Set once the projection has read the whole log as it was when it started."""
        self.advanced = asyncio.Event()
        """Set after every batch, for a timer loop that waits on new timers."""

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        pool = self._read_model.pool
        async with pool.acquire() as conn:
            self.position = await ReadModel.position(conn, NAME)
        channel = self._app.recorder.channel_name
        listening = await pool.acquire()
        await listening.add_listener(channel, self._on_notify)
        failures = 0
        try:
            while not self._stopping.is_set():
                try:
                    projected = await self.project_next_batch()
                    failures = 0
                except Exception as exc:
                    failures += 1
                    delay = min(0.1 * 2**failures, self._max_backoff)
                    log.warning("projection failed, retrying in %.1fs: %r", delay, exc)
                    await asyncio.sleep(delay)
                    continue
                if projected == 0:
                    self.caught_up.set()
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._idle_wait)
        finally:
            await listening.remove_listener(channel, self._on_notify)
            await pool.release(listening)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def project_next_batch(self) -> int:
        notifications = await asyncio.to_thread(
            self._app.recorder.select_notifications,
            self.position,
            self._batch_size,
            inclusive_of_start=False,
        )
        if not notifications:
            return 0
        touched = list(dict.fromkeys(n.originator_id for n in notifications))
        instances = await asyncio.to_thread(self._load, touched)
        position = notifications[-1].id
        async with self._read_model.pool.acquire() as conn, conn.transaction():
            await ReadModel.apply(conn, NAME, position, instances)
        self.position = position
        self.advanced.set()
        return len(notifications)

    def _load(self, ids: list[UUID]) -> list[tuple[InstanceState, UUID, int, datetime, datetime]]:
        # The latest state, not the state at each notification: the rows and timers follow the
        # instance as it is now, so a batch behind the instance never re-arms a spent timer.
        loaded = []
        for id_ in ids:
            instance = self._app.instance(id_)
            loaded.append(
                (instance.state, id_, instance.version, instance.created_on, instance.modified_on)
            )
        return loaded
