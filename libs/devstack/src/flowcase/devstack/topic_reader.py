"""Waiting for records on a topic, read from the beginning without joining a consumer group
(`flowcase.events.kafka.read_to_end` reads what is there now)."""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer

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
