"""Creating the platform's topics (idempotently) on a broker; deleting a suffixed copy of them."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from flowcase.events.settings import KafkaSettings
from flowcase.events.topics import TOPIC_SPECS, TopicSpec


async def ensure_topics(
    settings: KafkaSettings,
    specs: Iterable[TopicSpec] = TOPIC_SPECS,
    *,
    partitions: int = 3,
    replication_factor: int = 1,
) -> list[str]:
    """Create each topic that does not exist yet (named with the settings' suffix).

    Returns the names created.
    """
    admin = AIOKafkaAdminClient(**settings.client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name=settings.topic(spec.topic),
                num_partitions=partitions,
                replication_factor=replication_factor,
                topic_configs={"cleanup.policy": "compact"} if spec.compacted else {},
            )
            for spec in specs
        ]
        missing = [t for t in wanted if t.name not in existing]
        if not missing:
            return []
        response = await admin.create_topics(missing)
        created = []
        # The listing can lag a creation that just happened (or a concurrent starter's): the
        # broker's answer per topic, not the listing, says what this call created.
        for name, code, *_ in response.topic_errors:
            if code == 0:
                created.append(name)
            elif code != TopicAlreadyExistsError.errno:
                raise for_code(code)(f"creating topic {name} failed")
        return created
    finally:
        await admin.close()


async def delete_topics(settings: KafkaSettings) -> list[str]:
    """Delete every topic named with the settings' suffix (a test's or a benchmark's own copies);
    the names deleted. Without a suffix it deletes nothing: the platform's topics stay."""
    if not settings.topic_suffix:
        return []
    admin = AIOKafkaAdminClient(**settings.client_options())
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if t.endswith(settings.topic_suffix)]
        if doomed:
            await admin.delete_topics(doomed)
        return doomed
    finally:
        await admin.close()
