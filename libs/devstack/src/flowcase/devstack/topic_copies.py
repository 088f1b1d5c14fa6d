"""Copies of the platform's topics for one test, module or run on a shared broker."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

from flowcase.devstack.endpoints import Endpoints
from flowcase.events.kafka.admin import delete_topics, ensure_topics
from flowcase.events.settings import KafkaSettings


@contextlib.asynccontextmanager
async def own_topics(stack: Endpoints) -> AsyncIterator[KafkaSettings]:
    """Every platform topic as a copy of the caller's own (compaction kept), deleted afterwards:
    a broker that serves test after test would otherwise keep thousands of partitions, and
    take minutes to start again."""
    settings = KafkaSettings(
        bootstrap=stack.kafka_bootstrap, topic_suffix=f".{uuid.uuid4().hex[:10]}"
    )
    await ensure_topics(settings)
    try:
        yield settings
    finally:
        await delete_topics(settings)
