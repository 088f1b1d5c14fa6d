"""From catalogue events to facts: what each event states, and the fold over a history.

`project` reads one envelope and returns the facts it states, each keyed only by ids carried in
that event; it never looks at other events. The store (in memory here, PostgreSQL in the
adapter) merges them under their keys, and because every merge is order-free and idempotent
(see `facts`), redelivered, late and out-of-order events give the same facts as a clean replay.
Events governance has no use for state nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from flowcase.events import Envelope
from flowcase.events.catalogue import case, intake, workflow
from flowcase.events.catalogue.case import CaseOrigin
from flowcase.governance.facts import (
    AuditKind,
    AuditRecord,
    CaseFact,
    Fact,
    Facts,
    First,
    Last,
    OverrideFact,
    RequestFact,
    StepFact,
)

T = TypeVar("T")


def project(envelope: Envelope) -> tuple[Fact, ...]:
    """The facts one event states."""
    at, event_id = envelope.occurred_at, envelope.event_id

    def first(value: T) -> First[T]:
        return First(value, at, event_id)

    def last(value: T) -> Last[T]:
        return Last(value, at, event_id)

    match envelope.payload:
        case intake.RequestSubmitted() as p:
            # The payload's submitted_at is the request's own event time, kept through backfills.
            return (
                RequestFact(
                    p.request_id,
                    request_type=first(p.request_type),
                    submitted_at=p.submitted_at,
                    submission_id=first(p.submission_id) if p.submission_id else None,
                ),
            )
        case workflow.InstanceStarted() as p:
            return (
                RequestFact(
                    p.request_id,
                    request_type=first(p.request_type),
                    definition_version=last(p.definition_version),
                    due_at=last(p.due_at) if p.due_at else None,
                ),
            )
        case workflow.InstanceMigrated() as p:
            # The step it waited at ends here; a step of the same name entered on the new
            # version merges into it, as a step entered again does.
            return (
                RequestFact(p.request_id, definition_version=last(p.to_version)),
                StepFact(p.request_id, p.step, completed_at=at),
            )
        case workflow.StepEntered() as p:
            return (StepFact(p.request_id, p.step, kind=first(p.kind), entry=first(p.sla_due_at)),)
        case workflow.StepCompleted() as p:
            return (StepFact(p.request_id, p.step, kind=first(p.kind), completed_at=at),)
        case workflow.SlaBreached() as p:
            return (StepFact(p.request_id, p.step, sla_breached=True),)
        case workflow.ApprovalDecided() as p:
            return (
                AuditRecord(
                    record_id=f"request/{p.request_id}/approval/{p.step}",
                    kind=AuditKind.DECISION,
                    at=at,
                    event_id=event_id,
                    actor=envelope.actor,
                    rationale=p.rationale,
                    relied_on=tuple(p.relied_on),
                    gap_acknowledged=False,
                    request_id=p.request_id,
                ),
            )
        case workflow.OverrideApplied() as p:
            return (
                OverrideFact(
                    override_id=p.override_id,
                    request_id=p.request_id,
                    at=at,
                    kind=p.override,
                    step=p.step,
                    rule=p.rule,
                    definition_version=p.definition_version,
                ),
                AuditRecord(
                    record_id=f"request/{p.request_id}/override/{p.override_id}",
                    kind=AuditKind.OVERRIDE,
                    at=at,
                    event_id=event_id,
                    actor=envelope.actor,
                    rationale=p.reason,
                    relied_on=tuple(p.relied_on),
                    gap_acknowledged=False,
                    request_id=p.request_id,
                ),
            )
        case workflow.EscalatedToCase() as p:
            return (
                RequestFact(
                    p.request_id,
                    request_type=first(p.request_type),
                    definition_version=last(p.definition_version),
                    escalated_at=at,
                    due_at=last(p.due_at) if p.due_at else None,
                ),
            )
        case workflow.InstanceCompleted() as p:
            facts: tuple[Fact, ...] = (RequestFact(p.request_id, outcome=first(p.outcome)),)
            if p.case_id is not None:
                facts += (CaseFact(p.case_id, request_id=first(p.request_id)),)
            return facts
        case case.CaseOpened() as p:
            request_type = first(p.request_type) if p.request_type else None
            facts = (
                CaseFact(
                    p.case_id,
                    request_id=first(p.request_id) if p.request_id else None,
                    request_type=request_type,
                    opened_at=at,
                    source_id=first(p.source_id) if p.source_id else None,
                ),
            )
            # A case opened from an escalation proves the escalation, even in a history that
            # holds only case events (an import from a case system).
            if p.request_id is not None and p.origin is CaseOrigin.ESCALATION:
                facts += (RequestFact(p.request_id, request_type=request_type, escalated_at=at),)
            return facts
        case case.ClockResumed() as p if p.request_id is not None:
            # A paused clock moved the promise on: what happens next is judged by the new time.
            return (RequestFact(p.request_id, due_at=last(p.due_at)),)
        case case.DecisionRecorded() as p:
            return (_case_record(envelope, p, f"decision/{p.decision_id}", AuditKind.DECISION),)
        case case.CaseOverrideApplied() as p:
            return (_case_record(envelope, p, f"override/{p.override_id}", AuditKind.OVERRIDE),)
        case case.CaseResolved() as p:
            return (
                CaseFact(
                    p.case_id,
                    request_id=first(p.request_id) if p.request_id else None,
                    resolved_at=at,
                ),
                _case_record(envelope, p, "resolution", AuditKind.RESOLUTION),
            )
    return ()


def _case_record(
    envelope: Envelope,
    payload: case.DecisionRecorded | case.CaseOverrideApplied | case.CaseResolved,
    local_id: str,
    kind: AuditKind,
) -> AuditRecord:
    return AuditRecord(
        record_id=f"case/{payload.case_id}/{local_id}",
        kind=kind,
        at=envelope.occurred_at,
        event_id=envelope.event_id,
        actor=envelope.actor,
        rationale=payload.rationale,
        relied_on=tuple(payload.relied_on),
        gap_acknowledged=payload.gap_acknowledged,
        case_id=payload.case_id,
    )


def fold(envelopes: Iterable[Envelope], into: Facts | None = None) -> Facts:
    """Merge the facts of every event into `into` (a new, empty `Facts` by default)."""
    facts = Facts() if into is None else into
    for envelope in envelopes:
        for fact in project(envelope):
            facts.merge(fact)
    return facts
