"""Reading what is on a topic, from the beginning, without joining a consumer group."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from flowcase.events.settings import KafkaSettings


async def read_topic(
    settings: KafkaSettings, topic: str, *, count: int, timeout: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Wait for at least `count` records on `topic` and return all records read by then.

    After `count` arrive it keeps reading briefly, so a test that expects exactly `count` also
    sees an unexpected extra one.
    """
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **settings.client_options())
    await consumer.start()
    try:
        partitions = None
        deadline = time.monotonic() + timeout
        while not partitions and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                await consumer._client.force_metadata_update()  # the topic may be brand new
                await asyncio.sleep(0.2)
        if not partitions:
            raise TimeoutError(f"topic {topic} has no partitions after {timeout}s")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[ConsumerRecord[bytes, bytes]] = []
        settle_until: float | None = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for tp_records in batch.values():
                records.extend(tp_records)
            if len(records) >= count:
                settle_until = settle_until or time.monotonic() + 0.5
                if time.monotonic() >= settle_until:
                    break
        if len(records) < count:
            raise TimeoutError(f"{topic}: {len(records)} of {count} records after {timeout}s")
        return records
    finally:
        await consumer.stop()
