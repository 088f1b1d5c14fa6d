"""Consumer lag of every platform consumer group, sampled once a second (adapter).

Lag is the messages on a group's partitions past its committed offset. For governance it is also
told in seconds: the age of the oldest event it has not committed yet (now minus that record's
timestamp, which the topic watcher read), i.e. how far behind its figures are. A group commits
after each processed batch, so this is the lag as a crash would leave it: honest, and cheap
(the broker's offsets, no request to the service).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from flowcase.bench.background import cancel
from flowcase.bench.samples import Sample
from flowcase.bench.topic_watch import WATCHED, TopicWatcher
from flowcase.events.settings import KafkaSettings

GOVERNANCE_GROUP = "governance"


class LagSampler:
    def __init__(self, kafka: KafkaSettings, watcher: TopicWatcher, every: float = 1.0) -> None:
        self.kafka = kafka
        self.watcher = watcher
        self.every = every
        self.messages: list[Sample] = []  # by group
        self.governance_seconds: list[Sample] = []
        self._admin = AIOKafkaAdminClient(**kafka.client_options())
        self._consumer = AIOKafkaConsumer(enable_auto_commit=False, **kafka.client_options())
        self._task: asyncio.Task[None] | None = None
        self.paused = False
        """While set, no sample is taken (the idle phase measures the platform alone)."""

    async def start(self) -> None:
        await self._admin.start()
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        await cancel(self._task)
        await self._consumer.stop()
        await self._admin.close()

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            # A sample that fails (the broker busy electing, a group rebalancing) is skipped.
            if not self.paused:
                with contextlib.suppress(Exception):
                    await self.sample()
            await asyncio.sleep(max(0.0, self.every - (time.monotonic() - started)))

    async def next_sample(
        self, seconds: float, accept: Callable[[Sample], bool] = lambda _: True
    ) -> Sample | None:
        """The first sample taken from now on that `accept`s, waiting at most `seconds` (None:
        no such sample came in time)."""
        since = time.time()
        deadline = time.monotonic() + seconds
        while True:
            latest = self.messages[-1] if self.messages else None
            if latest is not None and latest.at > since and accept(latest):
                return latest
            if time.monotonic() >= deadline:
                return None
            # Another task takes the samples; polling the list is the simplest wait.
            await asyncio.sleep(0.2)

    async def sample(self) -> None:
        groups = [
            group_id
            for group_id, _ in await self._admin.list_consumer_groups()
            if not group_id.startswith("_")
        ]
        committed = {g: await self._admin.list_consumer_group_offsets(g) for g in groups}
        partitions = sorted({tp for offsets in committed.values() for tp in offsets})
        ends = await self._consumer.end_offsets(partitions)
        now = time.time()
        lag = {
            group: float(
                sum(max(ends[tp] - meta.offset, 0) for tp, meta in offsets.items() if tp in ends)
            )
            for group, offsets in sorted(committed.items())
        }
        self.messages.append(Sample(now, lag))
        if GOVERNANCE_GROUP in committed:
            behind = self._seconds_behind(committed[GOVERNANCE_GROUP], ends, now)
            self.governance_seconds.append(Sample(now, {GOVERNANCE_GROUP: behind}))

    def _seconds_behind(
        self,
        committed: dict[TopicPartition, OffsetAndMetadata],
        ends: dict[TopicPartition, int],
        now: float,
    ) -> float:
        watched = {self.kafka.topic(t) for t in WATCHED}
        behind = 0.0
        for tp, meta in committed.items():
            if tp.topic not in watched or meta.offset >= ends.get(tp, 0):
                continue
            oldest = self.watcher.timestamp_at(tp, meta.offset)
            if oldest is not None:
                behind = max(behind, now - oldest)
        return round(behind, 3)
