"""Reading a topic from its start without a consumer group: the partitions, then the start.

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
