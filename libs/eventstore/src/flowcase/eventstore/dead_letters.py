"""Stored events a log follower set aside, on the dead-letter topic (the `DeadLetters` port).

Each is the stored event byte for byte (the notification's state), keyed by its aggregate's id,
with the headers every dead letter carries: `flowcase.dlq.original_topic` names the store's
notification log (`eventstore:<application>`), `.original_offset` the notification id, and
`.consumer_group` the follower; `flowcase.event_type` gives the stored event's topic.
"""

from __future__ import annotations

from eventsourcing.persistence import Notification

from flowcase.events.kafka import EventProducer, dead_letter_headers
from flowcase.events.kafka.producer import EVENT_TYPE_HEADER
from flowcase.events.settings import KafkaSettings
from flowcase.events.topics import Topic

REASON = "handler-failed"


class DeadLetterTopic:
    def __init__(self, producer: EventProducer, kafka: KafkaSettings, *, store: str) -> None:
        self._producer = producer
        self._topic = kafka.topic(Topic.DEADLETTER)
        self._log = f"eventstore:{store}"

    async def set_aside(
        self, follower: str, notification: Notification, error: BaseException
    ) -> None:
        headers = [
            (EVENT_TYPE_HEADER, notification.topic.encode()),
            *dead_letter_headers(
                REASON,
                repr(error),
                topic=self._log,
                partition=0,
                offset=notification.id,
                group=follower,
            ),
        ]
        # Not caught: until the broker has it, the follower's position stays before the event.
        await self._producer.send_raw(
            self._topic,
            notification.state,
            key=str(notification.originator_id).encode(),
            headers=headers,
        )
