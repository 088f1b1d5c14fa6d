"""From a stored case event to what the relay publishes: catalogue payload, actor, event time."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple
from uuid import UUID, uuid5

from flowcase.case.aggregate import Case
from flowcase.events.catalogue import case as catalogue
from flowcase.events.catalogue.base import EventPayload

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
}

# Event state that is not payload: the library's bookkeeping, the envelope's actor and time,
# and the audit chain's hash, which stays in the case service's own store.
_NOT_PAYLOAD = frozenset(
    {"originator_id", "originator_version", "originator_topic", "timestamp", "actor", "chain_hash"}
)

# Fixed forever: the event id of a published case event is derived from its case and version.
EVENT_ID_NAMESPACE = UUID("b3e8f1d2-6a4c-4e9b-a7d5-0c2f9e8b1a63")


class Publication(NamedTuple):
    payload: EventPayload
    actor: str | None
    occurred_at: datetime
    # The same for every publication of the same stored event, so a relay that restarts and
    # publishes an event twice lets consumers deduplicate it.
    event_id: UUID


def to_catalogue(event: Case.Event) -> Publication:
    model = CATALOGUE.get(type(event))
    if model is None:
        raise TypeError(f"{type(event).__qualname__} is not a catalogued case event")
    fields = {key: value for key, value in vars(event).items() if key not in _NOT_PAYLOAD}
    return Publication(
        payload=model.model_validate({"case_id": event.originator_id, **fields}),
        actor=event.actor,
        occurred_at=event.timestamp,
        event_id=uuid5(EVENT_ID_NAMESPACE, f"{event.originator_id}:{event.originator_version}"),
    )
