"""Consuming Kafka into an event-sourced application, exactly once in effect.

The new events and the record of the consumed message (topic, partition and offset as an
`eventsourcing` tracking record) commit in one transaction. A redelivered message finds its
tracking record and changes nothing.
"""

from __future__ import annotations

from typing import Any

from aiokafka.structs import ConsumerRecord
from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.persistence import Mapper, ProcessRecorder, Tracking

from flowcase.eventstore.metrics import EVENTSTORE_APPEND_SECONDS
from flowcase.eventstore.trace_context import TracingMapper


def tracking_of(record: ConsumerRecord[Any, Any]) -> Tracking:
    return Tracking(
        application_name=f"{record.topic}:{record.partition}", notification_id=record.offset
    )


class TrackedApplication(Application[Any]):
    """An Application whose recorder also keeps tracking records of consumed messages, and
    whose stored events keep the trace context they were saved under (`trace_context`)."""

    def construct_mapper(self) -> Mapper[Any]:
        return self.factory.mapper(
            transcoder=self.construct_transcoder(), mapper_class=TracingMapper
        )

    def construct_recorder(self) -> ProcessRecorder:
        return self.factory.process_recorder()

    @property
    def process_recorder(self) -> ProcessRecorder:
        assert isinstance(self.recorder, ProcessRecorder)
        return self.recorder

    def consumed(self, tracking: Tracking) -> bool:
        """Whether the message at this position was already processed."""
        last = self.last_consumed(tracking.application_name)
        return last is not None and last >= tracking.notification_id

    def last_consumed(self, partition: str) -> int | None:
        """The offset of the last message processed from this partition (`topic:partition`,
        as `tracking_of` names it): a batch asks once, not per message."""
        return self.process_recorder.max_tracking_id(partition)

    def save_tracked(self, *aggregates: Any, tracking: Tracking) -> None:
        """Save the aggregates' new events together with the tracking record, atomically."""
        processing: ProcessingEvent[Any] = ProcessingEvent(tracking=tracking)
        processing.collect_events(*aggregates)
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)

    def _record(self, processing_event: ProcessingEvent[Any]) -> Any:
        # Every append goes through here, tracked or not: the one place to time it.
        with EVENTSTORE_APPEND_SECONDS.time():
            return super()._record(processing_event)
