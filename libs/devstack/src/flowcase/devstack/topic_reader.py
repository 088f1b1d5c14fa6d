"""Reading what is on a topic, from the beginning, without joining a consumer group."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from flowcase.events.kafka import partitions_of, seek_to_start
from flowcase.events.kafka.consumer import Record
from flowcase.events.settings import KafkaSettings


async def read_topic(
    settings: KafkaSettings, topic: str, *, count: int, timeout: float = 30.0
) -> list[Record]:
    """Wait for at least `count` records on `topic` and return all records read by then.

    After `count` arrive it keeps reading briefly, so a test that expects exactly `count` also
    sees an unexpected extra one.
    """
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **settings.client_options())
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        tps = await partitions_of(consumer, topic, timeout=timeout)
        consumer.assign(tps)
        await seek_to_start(consumer, tps)
        records: list[Record] = []
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


async def read_to_end(
    settings: KafkaSettings, topic: str, *, timeout: float = 60.0
) -> list[Record]:
    """Every record on the topic now: up to the end offsets seen once positioned at the start.

    The bound is on progress: it fails only when `timeout` seconds pass without a record read.
    """
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **settings.client_options())
    await consumer.start()
    try:
        tps = await partitions_of(consumer, topic, timeout=timeout)
        consumer.assign(tps)
        await seek_to_start(consumer, tps)
        ends = await consumer.end_offsets(tps)
        records: list[Record] = []
        stalled_at = time.monotonic() + timeout
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            if time.monotonic() > stalled_at:
                raise TimeoutError(
                    f"{topic}: read {len(records)} records, then nothing for {timeout:.0f} s"
                )
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp_records in batch.values():
                kept = [
                    r for r in tp_records if r.offset < ends[TopicPartition(r.topic, r.partition)]
                ]
                records.extend(kept)
                if kept:
                    stalled_at = time.monotonic() + timeout
        return records
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
