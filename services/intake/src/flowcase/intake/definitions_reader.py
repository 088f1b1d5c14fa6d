"""The published request types: the compacted definitions topic, read whole and then tailed.

No consumer group: every intake replica reads every partition from the beginning on start (the
topic is compacted, so that is the latest definition of each type), and is caught up once it has
read to the end offsets it saw at start. Until then it cannot judge a submission.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition

from flowcase.events.catalogue.workflow import DefinitionPublished
from flowcase.events.codec import EventDecodeError, decode
from flowcase.events.kafka import seek_to_start
from flowcase.events.settings import KafkaSettings
from flowcase.events.topics import Topic
from flowcase.intake.request_types import RequestTypes

log = logging.getLogger(__name__)


class DefinitionsReader:
    def __init__(self, settings: KafkaSettings, request_types: RequestTypes) -> None:
        self.topic = settings.topic(Topic.WORKFLOW_DEFINITIONS)
        self.request_types = request_types
        self.caught_up = asyncio.Event()
        self._consumer = AIOKafkaConsumer(
            group_id=None,
            enable_auto_commit=False,
            client_id="flowcase-intake-definitions",
            **settings.client_options(),
        )
        self._stopping = asyncio.Event()
        self._behind: dict[TopicPartition, int] = {}

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        await self._consumer.start()
        try:
            partitions = await self._partitions()
            if partitions is None:
                return
            self._consumer.assign(partitions)
            await seek_to_start(self._consumer, partitions)
            self._behind = await self._consumer.end_offsets(partitions)
            await self._check_caught_up()
            while not self._stopping.is_set():
                batches = await self._consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    for record in records:
                        self._apply(record.key, record.value)
                if not self.caught_up.is_set():
                    await self._check_caught_up()
        finally:
            await self._consumer.stop()

    async def _partitions(self) -> list[TopicPartition] | None:
        while not self._stopping.is_set():
            # A consumer without subscriptions knows no topic until it asks for the metadata.
            await self._consumer._client.force_metadata_update()
            partitions = self._consumer.partitions_for_topic(self.topic)
            if partitions:
                return [TopicPartition(self.topic, p) for p in sorted(partitions)]
            log.warning("topic %s not found (or Kafka unreachable); waiting for it", self.topic)
            await asyncio.sleep(1.0)
        return None

    async def _check_caught_up(self) -> None:
        for tp, end in list(self._behind.items()):
            if await self._consumer.position(tp) >= end:
                del self._behind[tp]
        if not self._behind:
            log.info("request types loaded: %d", len(self.request_types))
            self.caught_up.set()

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if value is None:
            if key:
                self.request_types.withdraw(key.decode())
            return
        try:
            envelope = decode(value)
        except EventDecodeError as exc:
            log.error("skipping an unusable record on %s: %s", self.topic, exc.detail)
            return
        if isinstance(envelope.payload, DefinitionPublished):
            self.request_types.publish(envelope.payload)

    async def loading_state(self) -> str | None:
        """None once caught up; else what is still being read (a readiness check)."""
        if self.caught_up.is_set():
            return None
        if not self._behind:
            return f"starting to read the request types from {self.topic}"
        return f"loading the request types from {self.topic}: {len(self._behind)} partitions behind"

    async def kafka_reachable(self) -> str | None:
        await self._consumer.topics()
        return None
