"""A test's copies of the platform's topics are gone from the shared broker afterwards."""

from __future__ import annotations

import asyncio
import time

from aiokafka.admin import AIOKafkaAdminClient

from flowcase.devstack.endpoints import Endpoints
from flowcase.devstack.in_process import eventually
from flowcase.devstack.topic_copies import own_topics
from flowcase.events.kafka.admin import delete_topics
from flowcase.events.settings import KafkaSettings
from flowcase.events.topics import TOPIC_SPECS


async def _topics(settings: KafkaSettings) -> set[str]:
    admin = AIOKafkaAdminClient(**settings.client_options())
    await admin.start()
    try:
        return {t for t in await admin.list_topics() if t.endswith(settings.topic_suffix)}
    finally:
        await admin.close()


async def test_own_topics_are_created_and_deleted_again(stack: Endpoints) -> None:
    async with own_topics(stack) as settings:
        wanted = {settings.topic(spec.topic) for spec in TOPIC_SPECS}
        # A busy broker lists a topic it created a moment later than it answers the creation.
        await eventually(lambda: _topics(settings), lambda made: made == wanted, timeout=30)
    deadline = time.monotonic() + 30
    while (left := await _topics(settings)) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.2)  # the broker deletes in the background, and says so later
    assert left == set()


async def test_without_a_suffix_nothing_is_deleted() -> None:
    # No broker listens there: the platform's own topics are refused before any connection.
    assert await delete_topics(KafkaSettings(bootstrap="127.0.0.1:1")) == []
