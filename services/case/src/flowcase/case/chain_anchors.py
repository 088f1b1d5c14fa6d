"""Anchoring each case's chain head outside the case database.

The audit chain (`flowcase.case.chain`) is keyless: whoever can write the case database can
rewrite a case's tail and recompute every hash. This follower of the event store's notification
log publishes, for every batch, the head of each case the batch touched (`case.ChainHeadAnchored`:
case id, version, chain hash, and the head event's time as `occurred_at`) on the compacted topic
`flowcase.case.chain-heads`, keyed by case id, so the broker keeps each case's latest head for
good, out of reach of the database's writers. `flowcase case verify` checks the stored chains
against these anchors, and so do the API's verification and audit (`anchor_of`).

An anchor only moves forward along the chain it anchored: a case's new events must continue the
chain from its anchored head (`chain.extend`), so a chain rewritten in the database does not get
anchored in its place by rewinding this follower's position, by re-inserting the rewritten rows
under new notification ids, or by appending to it. Such a case is refused (logged and counted in
`flowcase_case_chain_anchors_refused_total`) and its anchor stays where it was, where `verify`
finds the mismatch. To know every case's anchor, the follower reads the topic up to its end before
each batch, holding the batch's position lock: whatever any replica anchored before was
acknowledged before its batch committed, so nothing anchored is missed.

Events newer than a case's anchor, the follower's lag behind the store, are protected by the
chain alone.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from eventsourcing.persistence import Notification

from flowcase.case.application import CaseApplication
from flowcase.case.catalogue_mapping import SOURCE
from flowcase.case.chain import ChainAnchor, NotAnExtension, extend
from flowcase.case.errors import AnchorsUnreadable
from flowcase.case.prometheus import ANCHORS_REFUSED
from flowcase.events.catalogue.case import ChainHeadAnchored
from flowcase.events.codec import EventDecodeError, decode
from flowcase.events.envelope import Envelope
from flowcase.events.kafka import (
    EventProducer,
    partitions_of,
    read_to_end_offsets,
    seek_to_start,
    stop_consumer,
)
from flowcase.events.kafka.consumer import Record
from flowcase.events.settings import KafkaSettings
from flowcase.events.topics import Topic
from flowcase.eventstore import stable_event_id
from flowcase.eventstore.follower import LogFollower
from flowcase.runtime.starting import described

log = logging.getLogger(__name__)

ANCHORS_NAME = "case-chain-anchors"


def anchor_envelope(case_id: UUID, head: ChainAnchor, occurred_at: datetime) -> Envelope:
    return Envelope.wrap(
        ChainHeadAnchored(case_id=case_id, version=head.version, chain_hash=head.chain_hash),
        source=SOURCE,
        occurred_at=occurred_at,
        # The same id for the same head, whichever replica or retry publishes it.
        event_id=uuid.uuid5(stable_event_id(case_id, head.version), "chain-head"),
    )


def anchors_on(records: Iterable[Record]) -> dict[UUID, ChainAnchor]:
    """The latest anchor of each case among records of the chain-heads topic (in order per
    partition, as read)."""
    anchors: dict[UUID, ChainAnchor] = {}
    for record in records:
        try:
            payload = decode(record.value or b"").payload
        except EventDecodeError as exc:
            log.error("skipping an unusable record on %s: %s", record.topic, exc.detail)
            continue
        if isinstance(payload, ChainHeadAnchored):
            anchors[payload.case_id] = ChainAnchor(payload.version, payload.chain_hash)
    return anchors


class ChainAnchorPublisher(LogFollower):
    def __init__(
        self,
        *,
        application: CaseApplication,
        producer: EventProducer,
        kafka: KafkaSettings,
        pool: asyncpg.Pool,
        name: str = ANCHORS_NAME,
    ) -> None:
        super().__init__(name=name, application=application, pool=pool)
        self._cases = application
        self._producer = producer
        self._kafka = kafka
        self._topic = kafka.topic(Topic.CASE_CHAIN_HEADS)
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._anchors: dict[UUID, ChainAnchor] = {}
        # A batch and the API's verifications read the topic through the one consumer.
        self._reading = asyncio.Lock()

    async def anchor_of(self, case_id: UUID) -> ChainAnchor | None:
        """The case's anchor as the topic holds it now (read to its end first); None when the
        case is not anchored yet. `AnchorsUnreadable` when the topic cannot be read."""
        try:
            await self._read_anchors()
        except (KafkaError, OSError, TimeoutError) as exc:
            raise AnchorsUnreadable(described(exc)) from exc
        return self._anchors.get(case_id)

    async def handle_notifications(
        self, conn: asyncpg.Connection, notifications: Sequence[Notification]
    ) -> None:
        await self._read_anchors()
        by_case: dict[UUID, list[Notification]] = {}
        for notification in notifications:
            case_id = notification.originator_id
            assert isinstance(case_id, UUID)  # the recorder's column is a uuid
            by_case.setdefault(case_id, []).append(notification)
        envelopes = []
        for case_id, stored in by_case.items():
            anchor = self._anchors.get(case_id)
            # Decoded leniently: a row that no longer decodes is refused here, not retried for
            # ever with the whole batch.
            records = [self._cases.chain_record(notification) for notification in stored]
            try:
                head = extend(case_id, anchor, records)
            except NotAnExtension as exc:
                ANCHORS_REFUSED.inc()
                log.error(
                    "not anchoring case %s: %s; its anchor stays at version %s",
                    case_id,
                    exc,
                    anchor.version if anchor else "none",
                )
                continue
            if head != anchor:
                at_head = next(r for r in records if r.version == head.version)
                envelopes.append(anchor_envelope(case_id, head, at_head.state["timestamp"]))
        if envelopes:
            # Acknowledged before the position moves past these events; the next batch reads
            # them back from the topic.
            await self._producer.publish_all(envelopes)

    async def _read_anchors(self) -> None:
        async with self._reading:
            if self._consumer is None:
                self._consumer = await self._positioned_at_start()
            try:
                records = await read_to_end_offsets(self._consumer, self._partitions)
            except BaseException:
                # The positions may have moved past records not applied: read all again next.
                await self._forget_anchors()
                raise
            self._anchors.update(anchors_on(records))

    async def _positioned_at_start(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            enable_auto_commit=False,
            client_id="flowcase-case-chain-anchors",
            **self._kafka.client_options(),
        )
        try:
            await consumer.start()
            self._partitions = await partitions_of(consumer, self._topic)
            consumer.assign(self._partitions)
            await seek_to_start(consumer, self._partitions)
        except BaseException:
            await stop_consumer(consumer)
            raise
        return consumer

    async def _forget_anchors(self) -> None:
        consumer, self._consumer = self._consumer, None
        self._anchors = {}
        if consumer is not None:
            await stop_consumer(consumer)

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            await self._forget_anchors()
