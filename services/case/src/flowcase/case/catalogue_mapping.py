"""From a stored case event to what the relay publishes: the envelope on `flowcase.case.events`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from flowcase.case.aggregate import Case
from flowcase.events.catalogue import case as catalogue
from flowcase.events.catalogue.base import EventPayload
from flowcase.events.envelope import Envelope
from flowcase.eventstore import stable_event_id

SOURCE = "case"

CATALOGUE: dict[type[Case.Event], type[EventPayload]] = {
    Case.CaseOpened: catalogue.CaseOpened,
    Case.CaseAssigned: catalogue.CaseAssigned,
    Case.CaseClaimed: catalogue.CaseClaimed,
    Case.NoteAdded: catalogue.NoteAdded,
    Case.CommunicationLogged: catalogue.CommunicationLogged,
    Case.EvidenceAttached: catalogue.EvidenceAttached,
    Case.TaskAdded: catalogue.TaskAdded,
    Case.TaskCompleted: catalogue.TaskCompleted,
    Case.MilestoneSet: catalogue.MilestoneSet,
    Case.StatusChanged: catalogue.StatusChanged,
    Case.DecisionRecorded: catalogue.DecisionRecorded,
    Case.CaseOverrideApplied: catalogue.CaseOverrideApplied,
    Case.CaseResolved: catalogue.CaseResolved,
    Case.PromiseBroken: catalogue.PromiseBroken,
    Case.ClockPaused: catalogue.ClockPaused,
    Case.ClockResumed: catalogue.ClockResumed,
}

# Event state that is not payload: the library's bookkeeping, the envelope's actor and time,
# and the audit chain's hash, which stays in the case service's own store.
_NOT_PAYLOAD = frozenset(
    {"originator_id", "originator_version", "originator_topic", "timestamp", "actor", "chain_hash"}
)
# Every event carries the request id for the envelope; only some payloads repeat it.
_ENVELOPE_FIELD = "request_id"


class Publication(NamedTuple):
    payload: EventPayload
    actor: str | None
    occurred_at: datetime
    request_id: UUID | None
    # The same for every publication of the same stored event, so a relay that restarts and
    # publishes an event twice lets consumers deduplicate it.
    event_id: UUID


def to_catalogue(event: Case.Event) -> Publication:
    model = CATALOGUE.get(type(event))
    if model is None:
        raise TypeError(f"{type(event).__qualname__} is not a catalogued case event")
    fields: dict[str, Any] = {
        key: value for key, value in vars(event).items() if key not in _NOT_PAYLOAD
    }
    if _ENVELOPE_FIELD not in model.model_fields:
        del fields[_ENVELOPE_FIELD]
    return Publication(
        payload=model.model_validate({"case_id": event.originator_id, **fields}),
        actor=event.actor,
        occurred_at=event.timestamp,
        request_id=event.request_id,
        event_id=stable_event_id(event.originator_id, event.originator_version),
    )


def to_envelopes(event: Any) -> Sequence[Envelope]:
    """The relay's mapping: every stored case event becomes one envelope."""
    publication = to_catalogue(event)
    return (
        Envelope.wrap(
            publication.payload,
            source=SOURCE,
            request_id=publication.request_id,
            occurred_at=publication.occurred_at,
            actor=publication.actor,
            event_id=publication.event_id,
        ),
    )
