"""Between the workflow's own events and the shared event catalogue, both ways.

Out: each domain event becomes exactly one catalogue payload, with the event time and the actor
for its envelope. In: the catalogue events the service consumes become engine triggers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import DomainEventProtocol

from flowcase.events.catalogue import EventPayload, case, intake
from flowcase.events.catalogue import workflow as catalogue
from flowcase.events.envelope import Envelope
from flowcase.eventstore import stable_event_id
from flowcase.workflow.definition import ApprovalStep, ProcessDefinition, SlaStep
from flowcase.workflow.events import (
    ActionFailed,
    ApprovalDecided,
    ApprovalRequested,
    EscalatedToCase,
    InstanceCompleted,
    InstanceStarted,
    OverrideApplied,
    SlaBreached,
    StepCompleted,
    StepEntered,
    WorkflowEvent,
)
from flowcase.workflow.instance import fact_of, instance_id
from flowcase.workflow.triggers import CloseByCase, Submit

SOURCE = "workflow"
_DEFINITIONS = uuid5(NAMESPACE_URL, "urn:flowcase:workflow:definition")


class Catalogued(NamedTuple):
    """A catalogue payload and what its envelope needs besides: event time and actor."""

    payload: EventPayload
    occurred_at: datetime
    actor: str | None


def to_catalogue(event: WorkflowEvent) -> Catalogued:
    fields = event.model_dump(exclude={"at"})
    actor: str | None = None
    payload: EventPayload
    match event:
        case InstanceStarted():
            payload = catalogue.InstanceStarted(
                request_id=event.request_id,
                instance_id=instance_id(event.request_id),
                request_type=event.request_type,
                process=event.process,
                definition_version=event.definition_version,
                priority=event.priority,
            )
        case StepEntered():
            payload = catalogue.StepEntered(**fields)
        case StepCompleted():
            payload = catalogue.StepCompleted(**fields)
        case ApprovalRequested():
            payload = catalogue.ApprovalRequested(**fields)
        case ApprovalDecided():
            actor = fields.pop("actor")
            payload = catalogue.ApprovalDecided(**fields)
        case SlaBreached():
            payload = catalogue.SlaBreached(**fields)
        case ActionFailed():
            payload = catalogue.ActionFailed(**fields)
        case OverrideApplied():
            actor = fields.pop("actor")
            payload = catalogue.OverrideApplied(**fields)
        case EscalatedToCase():
            payload = catalogue.EscalatedToCase(**fields)
        case InstanceCompleted():
            payload = catalogue.InstanceCompleted(**fields)
    return Catalogued(payload, event.at, actor)


def definition_published(definition: ProcessDefinition) -> catalogue.DefinitionPublished:
    """What intake needs to know of a definition: its request type, schema and steps."""
    return catalogue.DefinitionPublished(
        request_type=definition.request_type,
        process=definition.name,
        version=definition.version,
        title=definition.title,
        description=definition.description,
        request_schema=definition.request_schema,
        steps=[
            catalogue.StepSummary(name=step.name, kind=step.kind, sla_seconds=_sla_seconds(step))
            for step in definition.steps
        ],
    )


def submit_from(submitted: intake.RequestSubmitted) -> Submit:
    return Submit(
        request_id=submitted.request_id,
        request_type=submitted.request_type,
        requester=submitted.requester,
        priority=submitted.priority,
        payload=submitted.payload,
    )


def close_from(resolved: case.CaseResolved) -> tuple[UUID, CloseByCase] | None:
    """The request to close and how, or None for a case that no request escalated into."""
    if resolved.request_id is None:
        return None
    return resolved.request_id, CloseByCase(case_id=resolved.case_id)


def _sla_seconds(step: object) -> float | None:
    if isinstance(step, SlaStep):
        return step.within.total_seconds()
    if isinstance(step, ApprovalStep):
        return step.timeout.total_seconds()
    return None


def to_envelopes(stored: DomainEventProtocol[Any]) -> list[Envelope]:
    """The envelope the relay publishes for one stored event: its id follows from the event's
    place in the store, so a re-published event is recognisably the same."""
    fact = fact_of(stored)
    catalogued = to_catalogue(fact)
    return [
        Envelope.wrap(
            catalogued.payload,
            source=SOURCE,
            request_id=fact.request_id,
            occurred_at=catalogued.occurred_at,
            actor=catalogued.actor,
            event_id=stable_event_id(stored.originator_id, stored.originator_version),
        )
    ]


def definition_envelope(definition: ProcessDefinition) -> Envelope:
    """The `DefinitionPublished` envelope of a definition version, with an id of its own so a
    version published again (at every start) is recognisably the same."""
    return Envelope.wrap(
        definition_published(definition),
        source=SOURCE,
        event_id=uuid5(_DEFINITIONS, f"{definition.request_type}/{definition.version}"),
    )
