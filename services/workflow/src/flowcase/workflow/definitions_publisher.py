"""Publishes the current version of every definition on the compacted definitions topic (a
worker), keyed by request type, so intake validates submissions against what runs here.

It publishes at every start (the envelope ids are stable per version, so a version published
again is recognisably the same) and retries until Kafka has acknowledged every one; readiness
waits for that.
"""

from __future__ import annotations

import asyncio
import logging

from flowcase.events.kafka import EventProducer
from flowcase.workflow.catalogue_mapping import definition_envelope
from flowcase.workflow.registry import DefinitionRegistry

log = logging.getLogger(__name__)


class DefinitionsPublisher:
    def __init__(self, producer: EventProducer, registry: DefinitionRegistry) -> None:
        self._producer = producer
        self._registry = registry
        self._stopping = asyncio.Event()
        self.published = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        delay = 0.2
        while not self._stopping.is_set() and not self.published.is_set():
            try:
                await self.publish()
            except Exception as exc:
                log.warning("publishing definitions failed, retrying in %.1fs: %r", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        await self._stopping.wait()

    async def publish(self) -> None:
        current = [self._registry.current(t) for t in self._registry.request_types()]
        await self._producer.publish_all([definition_envelope(d) for d in current])
        log.info("published %d definitions", len(current))
        self.published.set()

    async def readiness(self) -> str | None:
        return None if self.published.is_set() else "definitions not yet published"
