"""How far each of the platform's consumer groups is behind its topics: what a test waits on to
know the platform has done all it was given (not a fixed sleep)."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from flowcase.events import Topic
from flowcase.events.kafka import partitions_of, stop_consumer
from flowcase.events.settings import KafkaSettings

# Every service's consumer group (their default names) and the topics it reads.
GROUPS = {
    "flowcase-intake-submissions": [Topic.INTAKE_SUBMISSIONS],
    "flowcase-intake-status": [Topic.INTAKE_REQUESTS, Topic.WORKFLOW_EVENTS, Topic.CASE_EVENTS],
    "workflow": [Topic.INTAKE_REQUESTS, Topic.CASE_EVENTS],
    "case": [Topic.WORKFLOW_EVENTS],
    "governance": [
        Topic.INTAKE_REQUESTS,
        Topic.INTAKE_REJECTED,
        Topic.WORKFLOW_DEFINITIONS,
        Topic.WORKFLOW_EVENTS,
        Topic.CASE_EVENTS,
    ],
}


async def consumer_lag(settings: KafkaSettings) -> dict[str, int]:
    """Per consumer group, messages on its topics not yet committed."""
    admin = AIOKafkaAdminClient(**settings.client_options())
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **settings.client_options())
    await admin.start()
    await consumer.start()
    try:
        lag: dict[str, int] = {}
        for group, topics in GROUPS.items():
            committed = await admin.list_consumer_group_offsets(group)
            tps = [tp for t in topics for tp in await partitions_of(consumer, settings.topic(t))]
            ends = await consumer.end_offsets(tps)
            lag[group] = sum(
                max(ends[tp] - (committed[tp].offset if tp in committed else 0), 0) for tp in tps
            )
        return lag
    finally:
        await stop_consumer(consumer)
        await admin.close()
