"""Reads the platform's topics as they fill and notes when each event of interest appeared
(adapter). Times are the records' timestamps (stamped by the producer that wrote them), so a
watcher that falls behind does not stretch the latencies it reports.

It also keeps, per partition, each record's offset and timestamp: with a consumer group's
committed offsets that tells how old the oldest event the group has not yet processed is.
"""

from __future__ import annotations

import asyncio
import json
from array import array
from bisect import bisect_left
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from flowcase.bench.background import cancel
from flowcase.bench.stages import Observations
from flowcase.events import Topic
from flowcase.events.kafka import partitions_of, seek_to_start
from flowcase.events.kafka.producer import CARRIED_TYPES_HEADER, EVENT_TYPE_HEADER
from flowcase.events.settings import KafkaSettings

WATCHED = (Topic.INTAKE_REQUESTS, Topic.WORKFLOW_EVENTS, Topic.CASE_EVENTS)
_STAGES = {"workflow.InstanceCompleted", "workflow.ApprovalRequested", "workflow.EscalatedToCase"}


class TopicWatcher:
    def __init__(
        self, kafka: KafkaSettings, on_approval_requested: Callable[[str, str, str], None]
    ) -> None:
        self.kafka = kafka
        self.seen = Observations()
        self.read = 0
        self._on_approval_requested = on_approval_requested
        self._offsets: dict[TopicPartition, array[int]] = {}
        self._timestamps: dict[TopicPartition, array[int]] = {}
        self._consumer = AIOKafkaConsumer(enable_auto_commit=False, **kafka.client_options())
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        partitions: list[TopicPartition] = []
        for topic in WATCHED:
            partitions += await partitions_of(self._consumer, self.kafka.topic(topic))
        self._consumer.assign(partitions)
        await seek_to_start(self._consumer, partitions)
        self._task = asyncio.create_task(self._read())

    async def stop(self) -> None:
        await cancel(self._task)
        await self._consumer.stop()

    def timestamp_at(self, partition: TopicPartition, offset: int) -> float | None:
        """The timestamp (seconds) of the record at `offset` or the next after it, if read."""
        offsets = self._offsets.get(partition)
        if offsets is None:
            return None
        index = bisect_left(offsets, offset)
        if index == len(offsets):
            return None
        return self._timestamps[partition][index] / 1000

    async def _read(self) -> None:
        requests = self.kafka.topic(Topic.INTAKE_REQUESTS)
        workflow = self.kafka.topic(Topic.WORKFLOW_EVENTS)
        while True:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=5000)
            for partition, records in batches.items():
                offsets = self._offsets.setdefault(partition, array("q"))
                timestamps = self._timestamps.setdefault(partition, array("q"))
                for record in records:
                    offsets.append(record.offset)
                    timestamps.append(record.timestamp)
                    if partition.topic == requests:
                        self._request(record)
                    elif partition.topic == workflow:
                        self._workflow(record)
                    else:
                        self._case(record)
                self.read += len(records)

    def _request(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if _event_type(record) != "intake.RequestSubmitted" or record.value is None:
            return
        payload = json.loads(record.value)["payload"]
        if payload.get("submission_id"):
            self.seen.accepted.setdefault(
                payload["submission_id"], (payload["request_id"], record.timestamp / 1000)
            )

    def _workflow(self, record: ConsumerRecord[bytes, bytes]) -> None:
        # Workflow events are keyed by request id: only messages holding one of the few types
        # that mark a stage are decoded at all.
        if record.key is None or record.value is None:
            return
        carried = _carried_types(record)
        if {_event_type(record), *carried}.isdisjoint(_STAGES):
            return
        request_id, at = record.key.decode(), record.timestamp / 1000
        envelope = json.loads(record.value)
        events = envelope["payload"]["events"] if carried else [envelope]
        for event in events:
            event_type, payload = event["event_type"], event["payload"]
            if event_type == "workflow.InstanceCompleted":
                self.seen.completed.setdefault(request_id, (at, payload["outcome"]))
            elif event_type == "workflow.ApprovalRequested":
                if request_id not in self.seen.approval_requested:
                    self.seen.approval_requested[request_id] = at
                self._on_approval_requested(request_id, payload["step"], payload["approver_role"])
            elif event_type == "workflow.EscalatedToCase":
                self.seen.escalated.setdefault(request_id, at)

    def _case(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if _event_type(record) != "case.CaseOpened" or record.value is None:
            return
        request_id = json.loads(record.value)["payload"].get("request_id")
        if request_id:
            self.seen.case_opened.setdefault(request_id, record.timestamp / 1000)


def _event_type(record: ConsumerRecord[bytes, bytes]) -> str | None:
    for key, value in record.headers or ():
        if key == EVENT_TYPE_HEADER:
            return value.decode()
    return None


def _carried_types(record: ConsumerRecord[bytes, bytes]) -> list[str]:
    for key, value in record.headers or ():
        if key == CARRIED_TYPES_HEADER:
            return value.decode().split(",")
    return []
