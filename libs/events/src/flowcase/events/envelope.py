"""The envelope every Flowcase message travels in (DESIGN.md, "Events")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Self
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, model_validator

from flowcase.events.catalogue.base import REGISTRY, EventPayload, UtcDatetime
from flowcase.events.topics import Topic


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: UUID = Field(description="Unique id of this event; consumers deduplicate on it.")
    event_type: str = Field(description="Catalogued type, e.g. `case.DecisionRecorded`.")
    schema_version: int = Field(ge=1, description="Version of the payload schema.")
    occurred_at: UtcDatetime = Field(description="Event time (UTC): when it happened.")
    recorded_at: UtcDatetime = Field(description="When the source recorded it (UTC).")
    source: str = Field(description="The service that wrote the event.")
    request_id: UUID | None = Field(
        default=None, description="Correlation id of the whole journey of one request."
    )
    causation_id: UUID | None = Field(
        default=None, description="The event_id of the event that caused this one."
    )
    actor: str | None = Field(default=None, description="Who acted, for human actions.")
    tenant: str | None = None
    payload: SerializeAsAny[EventPayload]

    @model_validator(mode="before")
    @classmethod
    def _payload_of_its_type(cls, data: Any) -> Any:
        # A payload arriving as a dict is validated by the model its event type names.
        if isinstance(data, dict) and isinstance(data.get("payload"), dict):
            model = REGISTRY.get(data.get("event_type", ""))
            if model is None:
                raise ValueError(f"unknown event type {data.get('event_type')!r}")
            data = {**data, "payload": model.model_validate(data["payload"])}
        return data

    @model_validator(mode="after")
    def _type_matches_payload(self) -> Self:
        if self.payload.event_type != self.event_type:
            raise ValueError(
                f"event_type {self.event_type!r} does not match payload "
                f"{type(self.payload).__name__} ({self.payload.event_type!r})"
            )
        return self

    @classmethod
    def wrap(
        cls,
        payload: EventPayload,
        *,
        source: str,
        request_id: UUID | None = None,
        occurred_at: datetime | None = None,
        causation_id: UUID | None = None,
        actor: str | None = None,
        tenant: str | None = None,
        event_id: UUID | None = None,
    ) -> Envelope:
        now = datetime.now(UTC)
        return cls(
            event_id=event_id or uuid4(),
            event_type=payload.event_type,
            schema_version=payload.schema_version,
            occurred_at=occurred_at or now,
            recorded_at=now,
            source=source,
            request_id=request_id,
            causation_id=causation_id,
            actor=actor,
            tenant=tenant,
            payload=payload,
        )

    @property
    def topic(self) -> Topic:
        return self.payload.topic

    @property
    def key(self) -> bytes:
        return self.payload.entity_key.encode()
