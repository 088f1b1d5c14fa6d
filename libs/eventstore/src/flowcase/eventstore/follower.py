"""Following an event-sourced application's notification log, batch by batch.

The relay (to Kafka) and a service's read-model projections are all followers: each reads the
stored events after its recorded position, handles them, and records the new position. The
position row lives in the service's database and is locked for the whole batch, so replicas of
a service (or a rebuild beside it) never interleave and never move a position backwards; a
follower that writes to that database commits its rows and its position in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
from eventsourcing.application import Application
from eventsourcing.persistence import Notification

from flowcase.events.tracing import untraced
from flowcase.eventstore.metrics import FOLLOWER_RETRYING, FOLLOWER_SET_ASIDE

log = logging.getLogger(__name__)

SET_ASIDE_AFTER = 3
"""Attempts at one event, each failing for the event's fault, before it is set aside."""
NOT_READY_AFTER = 3
"""Consecutive failed attempts after which a retrying follower makes its service not ready."""


class DeadLetters(Protocol):
    """Where a follower sets aside a stored event it can never handle."""

    async def set_aside(
        self, follower: str, notification: Notification, error: BaseException
    ) -> None: ...


def the_event_at_fault(exc: BaseException) -> bool:
    """Whether a handler's failure is the event's own doing, so that trying again cannot help: a
    value PostgreSQL refuses (its class 22, "data exception": a NUL in text, a number or a date
    out of range), or a Python value error while mapping it. Anything else, including every
    other PostgreSQL error (a lock, a full disk, a read-only server), is the infrastructure's."""
    if isinstance(exc, asyncpg.PostgresError):
        return isinstance(exc, asyncpg.DataError)
    return isinstance(exc, ValueError | TypeError | LookupError | ArithmeticError)


class LogFollower:
    def __init__(
        self,
        *,
        name: str,
        application: Application[Any],
        pool: asyncpg.Pool,
        batch_size: int = 500,
        idle_wait: float = 5.0,
        max_backoff: float = 30.0,
        dead_letters: DeadLetters | None = None,
    ) -> None:
        self.name = name
        self._app = application
        self._pool = pool
        self._batch_size = batch_size
        self._dead_letters = dead_letters
        self._tried: Sequence[Notification] = ()
        self._failures = 0
        self._failing_since: datetime | None = None
        self._last_error: BaseException | None = None
        self._idle_wait = idle_wait
        self._max_backoff = max_backoff
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._table_ready = False
        self.caught_up = asyncio.Event()
        """Set once the follower has handled the whole log as it was when it started."""

    async def handle(self, conn: asyncpg.Connection, events: Sequence[Any]) -> None:
        """Handle one batch of stored domain events, inside the batch's transaction."""
        raise NotImplementedError

    async def handle_notifications(
        self, conn: asyncpg.Connection, notifications: Sequence[Notification]
    ) -> None:
        """Handle one batch as stored; a follower that needs more than the domain events (the
        relay: their trace context) overrides this instead of `handle`."""
        await self.handle(conn, [self._app.mapper.to_domain_event(n) for n in notifications])

    @staticmethod
    async def create_table(conn: asyncpg.Connection) -> None:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS flowcase_log_position "
            "(follower text PRIMARY KEY, position bigint NOT NULL)"
        )

    async def _ensure_table(self) -> None:
        if self._table_ready:
            return
        # Sibling followers start at the same moment, and CREATE TABLE IF NOT EXISTS races in
        # PostgreSQL (a unique violation in the catalogue, or worse): one at a time, it cannot.
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('flowcase_log_position'))")
            await self.create_table(conn)
        self._table_ready = True

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def position(self) -> int:
        await self._ensure_table()
        async with self._pool.acquire() as conn:
            stored = await conn.fetchval(
                "SELECT position FROM flowcase_log_position WHERE follower = $1", self.name
            )
        return int(stored or 0)

    async def backlog(self) -> int:
        """Events stored but not yet handled by this follower."""
        last = await asyncio.to_thread(self._app.recorder.max_notification_id)
        return max((last or 0) - await self.position(), 0)

    async def process_next_batch(self) -> int:
        """Handle the stored events after the recorded position; return how many (an event set
        aside counts as handled)."""
        await self._ensure_table()
        try:
            return await self._handle_next(self._batch_size)
        except Exception as exc:
            if self._dead_letters is None or not self._tried or not the_event_at_fault(exc):
                raise
            failed = len(self._tried)
            log.warning("%s: a batch of %d failed, one event at a time: %r", self.name, failed, exc)
        handled = 0
        for _ in range(failed):
            moved = await self._handle_one()
            if not moved:
                break
            handled += moved
        return handled

    async def _handle_one(self) -> int:
        """The next event alone, set aside when it fails for its own fault at every attempt."""
        assert self._dead_letters is not None
        for attempt in range(1, SET_ASIDE_AFTER + 1):
            try:
                return await self._handle_next(1)
            except Exception as exc:
                if not self._tried or not the_event_at_fault(exc):
                    raise
                error = exc
            if attempt < SET_ASIDE_AFTER:
                await asyncio.sleep(0.1 * attempt)
        (notification,) = self._tried
        await self._dead_letters.set_aside(self.name, notification, error)
        async with self._pool.acquire() as conn:
            # Only forward: a replica (or a rebuild) that moved the position meanwhile keeps
            # its own. (The row may not exist yet: the first event of all was the one.)
            await conn.execute(
                "INSERT INTO flowcase_log_position AS p (follower, position) VALUES ($1, $2) "
                "ON CONFLICT (follower) DO UPDATE SET position = EXCLUDED.position "
                "WHERE p.position < EXCLUDED.position",
                self.name,
                notification.id,
            )
        FOLLOWER_SET_ASIDE.labels(self.name).inc()
        log.error(
            "%s set aside stored event %d (%s of %s, version %s) after %d attempts: %r",
            self.name,
            notification.id,
            notification.topic,
            notification.originator_id,
            notification.originator_version,
            SET_ASIDE_AFTER,
            error,
        )
        return 1

    async def _handle_next(self, limit: int) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO flowcase_log_position (follower, position) VALUES ($1, 0) "
                "ON CONFLICT (follower) DO NOTHING",
                self.name,
            )
            position = await conn.fetchval(
                "SELECT position FROM flowcase_log_position WHERE follower = $1 FOR UPDATE",
                self.name,
            )
            self._tried = ()
            notifications = await asyncio.to_thread(
                self._app.recorder.select_notifications,
                position,
                limit,
                inclusive_of_start=False,
            )
            if not notifications:
                return 0
            self._tried = notifications
            await self.handle_notifications(conn, notifications)
            await conn.execute(
                "UPDATE flowcase_log_position SET position = $2 WHERE follower = $1",
                self.name,
                notifications[-1].id,
            )
        return len(notifications)

    async def readiness(self) -> str | None:
        """None while the follower moves; why it is stuck once it has failed a few times in a
        row (a readiness check)."""
        if self._failures < NOT_READY_AFTER:
            return None
        assert self._failing_since is not None  # set with the first failure
        return (
            f"retrying since {self._failing_since.isoformat(timespec='seconds')} "
            f"({self._failures} attempts): {self._last_error!r}"
        )

    async def catch_up(self) -> int:
        """Handle everything stored so far; return how many events."""
        total = 0
        while handled := await self.process_next_batch():
            total += handled
        return total

    async def rewind(self, conn: asyncpg.Connection) -> None:
        """Back to position 0, in the caller's transaction (a rebuild empties its rows with it).

        The position row's lock waits out a batch in progress elsewhere.
        """
        await conn.execute(
            "INSERT INTO flowcase_log_position (follower, position) VALUES ($1, 0) "
            "ON CONFLICT (follower) DO UPDATE SET position = 0",
            self.name,
        )

    async def run(self) -> None:
        # The store NOTIFYs its channel on every append: listening wakes the follower at once,
        # so the idle wait is only the fallback for a notification that never came.
        channel = self._app.recorder.channel_name  # type: ignore[attr-defined]
        listening: asyncpg.Connection | None = None
        try:
            while not self._stopping.is_set():
                # Cleared before the batch: an append notified while it runs is not lost.
                self._wake.clear()
                try:
                    # Background work: its queries are nobody's request, and most find nothing.
                    with untraced():
                        if listening is None or _lost(listening):
                            # First, or again after PostgreSQL dropped the listening connection.
                            listening = await self._listen(channel, listening)
                        handled = await self.process_next_batch()
                except Exception as exc:
                    # The position did not move; try again, never give up.
                    delay = self._failed(exc)
                    log.warning("%s failed, retrying in %.1fs: %r", self.name, delay, exc)
                    await asyncio.sleep(delay)
                    continue
                self._moved()
                if handled == 0:
                    self.caught_up.set()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._idle_wait)
        finally:
            if listening is not None:
                with untraced():
                    await self._release(channel, listening)

    async def _listen(
        self, channel: str, previous: asyncpg.Connection | None
    ) -> asyncpg.Connection:
        if previous is not None:
            await self._release(channel, previous)
        listening = await self._pool.acquire()
        try:
            await listening.add_listener(channel, self._on_notify)
            # A listener PostgreSQL drops wakes the follower too, to listen again at once.
            listening.add_termination_listener(self._on_notify)
        except BaseException:
            await self._pool.release(listening)
            raise
        return listening

    async def _release(self, channel: str, listening: asyncpg.Connection) -> None:
        with contextlib.suppress(Exception):
            if not _lost(listening):
                listening.remove_termination_listener(self._on_notify)
                await listening.remove_listener(channel, self._on_notify)
        with contextlib.suppress(Exception):
            await self._pool.release(listening)

    def _failed(self, exc: BaseException) -> float:
        """Note a failed attempt; the wait before the next."""
        self._failures += 1
        self._last_error = exc
        if self._failing_since is None:
            self._failing_since = datetime.now(UTC)
        FOLLOWER_RETRYING.labels(self.name).set(1)
        return min(0.1 * 2**self._failures, self._max_backoff)

    def _moved(self) -> None:
        if self._failures:
            self._failures, self._failing_since, self._last_error = 0, None, None
            FOLLOWER_RETRYING.labels(self.name).set(0)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()


def _lost(connection: asyncpg.Connection) -> bool:
    """Whether a pooled connection no longer listens: closed, or taken back by its pool (which
    it does to a connection PostgreSQL dropped; the proxy then refuses every call)."""
    try:
        return connection.is_closed()
    except asyncpg.InterfaceError:
        return True
