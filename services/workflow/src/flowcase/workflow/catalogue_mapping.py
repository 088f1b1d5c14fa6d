"""Between the workflow and the shared event catalogue, both ways.

Out: each stored turn becomes one message: its one event's envelope, or a
`workflow.InstanceAdvanced` carrying the envelopes of its events (catalogue payloads already,
each with the turn's time and, for a person's act, its actor). In: the catalogue events the service
consumes become engine triggers.
"""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import DomainEventProtocol

from flowcase.events.catalogue import case, intake
from flowcase.events.catalogue import workflow as catalogue
from flowcase.events.envelope import Envelope
from flowcase.eventstore import stable_event_id
from flowcase.workflow.definition import ApprovalStep, ProcessDefinition, SlaStep
from flowcase.workflow.instance import turn_of
from flowcase.workflow.triggers import CloseByCase, Submit

SOURCE = "workflow"
_DEFINITIONS = uuid5(NAMESPACE_URL, "urn:flowcase:workflow:definition")
_TURNS = uuid5(NAMESPACE_URL, "urn:flowcase:workflow:turn")


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
    """The message the relay publishes for one stored turn: the envelope of its one event, or a
    `workflow.InstanceAdvanced` carrying the envelopes of its events. Every id follows from the
    event's place in the store, so a re-published event is recognisably the same."""
    turn = turn_of(stored)
    events = [
        Envelope.wrap(
            payload,
            source=SOURCE,
            request_id=payload.request_id,
            occurred_at=turn.at,
            actor=turn.actor_of(payload),
            event_id=stable_event_id(stored.originator_id, stored.originator_version, index),
        )
        for index, payload in enumerate(turn.events)
    ]
    if len(events) == 1:
        return events
    request_id = turn.events[0].request_id
    advanced = catalogue.InstanceAdvanced(
        request_id=request_id, events=[event.model_dump(mode="json") for event in events]
    )
    return [
        Envelope.wrap(
            advanced,
            source=SOURCE,
            request_id=request_id,
            occurred_at=turn.at,
            event_id=uuid5(_TURNS, f"{stored.originator_id}/{stored.originator_version}"),
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
