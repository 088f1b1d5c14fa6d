"""Reading a topic from its start without a consumer group: the partitions, the start, the end.

aiokafka's `seek_to_beginning` only changes the reset strategy of a partition still awaiting
one. A freshly assigned partition resets to the consumer's default (`latest`) in the
background; when that request is already in flight, its answer lands after the seek and puts
the position at the end, and `seek_to_beginning` returns as if it had worked. On a loaded
machine the window is wide: a reader then sees an empty topic. An explicit `seek` to the
beginning offsets ends the wait for any reset, so an answer still in flight is ignored.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from flowcase.events.kafka.consumer import Record
from flowcase.events.settings import KafkaSettings


async def partitions_of(
    consumer: AIOKafkaConsumer, topic: str, *, timeout: float = 60.0
) -> list[TopicPartition]:
    """The topic's partitions, asking the broker until it tells them (a consumer without
    subscriptions knows no topic until it asks; a brand-new topic takes a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return [TopicPartition(topic, p) for p in sorted(partitions)]
        if time.monotonic() > deadline:
            # Said as it is: an empty answer would read as a topic that lost every record.
            raise TimeoutError(f"the broker told no partitions of {topic} within {timeout:.0f} s")
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.2)


async def seek_to_start(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
    """Position each assigned partition at its first record (in place of `seek_to_beginning`)."""
    beginnings = await consumer.beginning_offsets(partitions)
    for tp in partitions:
        consumer.seek(tp, beginnings[tp])


async def read_to_end_offsets(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition], *, timeout: float = 60.0
) -> list[Record]:
    """The records from the consumer's positions up to the partitions' end offsets as they are
    now (what the broker has acknowledged), in order per partition.

    The bound is on progress: it fails only when `timeout` seconds pass without a record read.
    """
    ends = await consumer.end_offsets(partitions)
    records: list[Record] = []
    stalled_at = time.monotonic() + timeout
    while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
        if time.monotonic() > stalled_at:
            raise TimeoutError(
                f"{partitions[0].topic}: read {len(records)} records, then nothing for "
                f"{timeout:.0f} s"
            )
        batch = await consumer.getmany(timeout_ms=500, max_records=5000)
        for tp_records in batch.values():
            kept = [r for r in tp_records if r.offset < ends[TopicPartition(r.topic, r.partition)]]
            records.extend(kept)
            if kept:
                stalled_at = time.monotonic() + timeout
    return records


async def read_to_end(
    settings: KafkaSettings, topic: str, *, timeout: float = 60.0
) -> list[Record]:
    """Every record on the topic now: up to the end offsets seen once positioned at the start.

    The bound is on progress: it fails only when `timeout` seconds pass without a record read.
    """
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **settings.client_options())
    try:
        await consumer.start()
        tps = await partitions_of(consumer, topic, timeout=timeout)
        consumer.assign(tps)
        await seek_to_start(consumer, tps)
        return await read_to_end_offsets(consumer, tps, timeout=timeout)
    finally:
        await stop_consumer(consumer)


async def stop_consumer(consumer: AIOKafkaConsumer) -> None:
    # aiokafka's stop right after start may await a task it cancelled before it ran.
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
