"""Readiness probes of the workflow service's dependencies (adapters)."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer

from flowcase.events.settings import KafkaSettings


class KafkaProbe:
    """Asks the broker for its topics through a client of its own (no group, no offsets)."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._consumer = AIOKafkaConsumer(
            group_id=None, client_id="workflow-readiness", **settings.client_options()
        )
        self._started = False

    async def __call__(self) -> str | None:
        if not self._started:
            await self._consumer.start()
            self._started = True
        await self._consumer.topics()
        return None

    async def close(self) -> None:
        if self._started:
            await self._consumer.stop()
