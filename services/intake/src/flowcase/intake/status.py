"""Where a request is: the status read model's rules (pure).

Events about one request reach intake from three topics (its own requests, workflow events, case
events), so they can arrive out of order across topics. Each event becomes an `Observation`;
`advance` folds it into the request's state without ever moving the status backwards:

    submitted → in_workflow ⇄ waiting_for_approval → escalated
              → completed | rejected | resolved_by_case

A status of a later phase always wins; within a phase the newer event (by event time) wins; a
terminal status never changes. Every observation still joins the timeline.

A request the workflow dead-letters can never start, so it would stay `submitted` for ever: the
dead letter rejects it, with the reason the workflow gave (`DeadLetter`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid5

from flowcase.events.catalogue import case, intake, workflow
from flowcase.events.catalogue.common import Outcome
from flowcase.events.envelope import Envelope


class RequestStatus(StrEnum):
    SUBMITTED = "submitted"
    IN_WORKFLOW = "in_workflow"
    WAITING_FOR_APPROVAL = "waiting_for_approval"
    ESCALATED = "escalated"
    COMPLETED = "completed"
    REJECTED = "rejected"
    RESOLVED_BY_CASE = "resolved_by_case"

    @property
    def phase(self) -> int:
        return _PHASE[self]

    @property
    def terminal(self) -> bool:
        return self.phase == _TERMINAL_PHASE


_TERMINAL_PHASE = 3
_PHASE = {
    RequestStatus.SUBMITTED: 0,
    RequestStatus.IN_WORKFLOW: 1,
    RequestStatus.WAITING_FOR_APPROVAL: 1,
    RequestStatus.ESCALATED: 2,
    RequestStatus.COMPLETED: _TERMINAL_PHASE,
    RequestStatus.REJECTED: _TERMINAL_PHASE,
    RequestStatus.RESOLVED_BY_CASE: _TERMINAL_PHASE,
}

_OUTCOME_STATUS = {
    Outcome.COMPLETED: RequestStatus.COMPLETED,
    Outcome.REJECTED: RequestStatus.REJECTED,
    Outcome.RESOLVED_BY_CASE: RequestStatus.RESOLVED_BY_CASE,
}


@dataclass(frozen=True)
class Observation:
    """What one event says about one request."""

    request_id: UUID
    event_id: UUID
    event_type: str
    occurred_at: datetime
    summary: str
    # The status the event puts the request in (subject to the rules of `advance`) …
    status: RequestStatus | None = None
    # … or, for events that only show the request has reached a phase, the least status it implies.
    at_least: RequestStatus | None = None
    request_type: str | None = None
    requester: str | None = None
    priority: str | None = None
    channel: str | None = None
    submission_id: str | None = None
    submitted_at: datetime | None = None
    case_id: UUID | None = None
    # Who submitted it (the token's subject over HTTP): with the requester, whose request it is.
    submitted_by: str | None = None


@dataclass(frozen=True)
class RequestState:
    request_id: UUID
    status: RequestStatus
    # Event time of the observation that set the status: a within-phase move needs a newer one.
    status_since: datetime
    request_type: str | None = None
    requester: str | None = None
    priority: str | None = None
    channel: str | None = None
    submission_id: str | None = None
    submitted_at: datetime | None = None
    case_id: UUID | None = None
    submitted_by: str | None = None

    def belongs_to(self, subject: str) -> bool:
        """Whether `subject` may read the request: its requester, or who submitted it."""
        return subject in (self.requester, self.submitted_by)


def advance(state: RequestState | None, seen: Observation) -> RequestState:
    """The state after one more observation (which the caller has not applied before)."""
    if state is None:
        state = RequestState(
            request_id=seen.request_id,
            status=RequestStatus.SUBMITTED,
            status_since=datetime.min.replace(tzinfo=UTC),
        )
    state = replace(
        state,
        request_type=state.request_type or seen.request_type,
        requester=state.requester or seen.requester,
        priority=state.priority or seen.priority,
        channel=state.channel or seen.channel,
        submission_id=state.submission_id or seen.submission_id,
        # The submission's own time is the one the requester gave; nothing else overrides it.
        submitted_at=seen.submitted_at or state.submitted_at,
        case_id=state.case_id or seen.case_id,
        submitted_by=state.submitted_by or seen.submitted_by,
    )
    if seen.status is not None and _moves_to(state, seen.status, seen.occurred_at):
        return replace(state, status=seen.status, status_since=seen.occurred_at)
    if seen.at_least is not None and state.status.phase < seen.at_least.phase:
        return replace(state, status=seen.at_least, status_since=seen.occurred_at)
    return state


def _moves_to(state: RequestState, status: RequestStatus, occurred_at: datetime) -> bool:
    if state.status.terminal:
        return False
    if status.phase != state.status.phase:
        return status.phase > state.status.phase
    return occurred_at >= state.status_since


@dataclass(frozen=True)
class DeadLetter:
    """A request the workflow set aside as it found it on the dead-letter topic: the request's
    own envelope, and the reason and error the workflow gave."""

    envelope: Envelope
    reason: str
    error: str
    failed_at: datetime


DEAD_LETTERED = "deadletter"
"""The timeline's name for a dead letter (it is no event of the catalogue)."""
_SUMMARY_LIMIT = 500


def observe_dead_letter(dead: DeadLetter) -> Observation | None:
    """A dead-lettered request is rejected; any other dead letter says nothing of a request."""
    submitted = dead.envelope.payload
    if not isinstance(submitted, intake.RequestSubmitted):
        return None
    summary = f"not started by the workflow ({dead.reason}): {dead.error}"
    return Observation(
        request_id=submitted.request_id,
        # Its own id: the envelope's is the submission's, already in the timeline.
        event_id=uuid5(dead.envelope.event_id, DEAD_LETTERED),
        event_type=DEAD_LETTERED,
        occurred_at=dead.failed_at,
        summary=summary[:_SUMMARY_LIMIT],
        status=RequestStatus.REJECTED,
    )


def observe(envelope: Envelope, *, request_id: UUID | None) -> Observation | None:
    """What an event says about a request, or None when it says nothing the model keeps.

    `request_id` is the request the event concerns; for case events after `CaseOpened` the caller
    looks it up from the case id.
    """
    payload = envelope.payload
    if request_id is None:
        return None

    def seen(**fields: Any) -> Observation:
        return Observation(
            request_id=request_id,
            event_id=envelope.event_id,
            event_type=envelope.event_type,
            occurred_at=envelope.occurred_at,
            **fields,
        )

    match payload:
        case intake.RequestSubmitted():
            return seen(
                summary=f"submitted over {payload.channel.value} by {payload.requester}",
                status=RequestStatus.SUBMITTED,
                request_type=payload.request_type,
                requester=payload.requester,
                priority=payload.priority.value,
                channel=payload.channel.value,
                submission_id=payload.submission_id,
                submitted_at=payload.submitted_at,
                submitted_by=envelope.actor,
            )
        case workflow.InstanceStarted():
            return seen(
                summary=f"workflow {payload.process} v{payload.definition_version} started",
                status=RequestStatus.IN_WORKFLOW,
                request_type=payload.request_type,
                priority=payload.priority.value,
            )
        case workflow.StepEntered():
            return seen(
                summary=f"step {payload.step} ({payload.kind.value}) entered",
                status=RequestStatus.IN_WORKFLOW,
            )
        case workflow.ApprovalRequested():
            return seen(
                summary=f"waiting for approval by {payload.approver_role} at step {payload.step}",
                status=RequestStatus.WAITING_FOR_APPROVAL,
            )
        case workflow.ApprovalDecided():
            return seen(
                summary=f"approval {payload.decision.value} at step {payload.step}",
                status=RequestStatus.IN_WORKFLOW,
            )
        case workflow.StepCompleted():
            return seen(
                summary=f"step {payload.step} completed: {payload.outcome}",
                at_least=RequestStatus.IN_WORKFLOW,
            )
        case workflow.SlaBreached():
            return seen(
                summary=f"SLA of step {payload.step} breached",
                at_least=RequestStatus.IN_WORKFLOW,
            )
        case workflow.PromiseBroken():
            return seen(
                summary=f"past its promised time ({payload.due_at.isoformat()})"
                + (f" at step {payload.step}" if payload.step else ""),
                at_least=RequestStatus.IN_WORKFLOW,
            )
        case workflow.ActionFailed():
            return seen(
                summary=f"action at step {payload.step} failed after {payload.attempts} attempts",
                at_least=RequestStatus.IN_WORKFLOW,
            )
        case workflow.OverrideApplied():
            return seen(
                summary=f"override {payload.override.value}: {payload.reason}",
                at_least=RequestStatus.IN_WORKFLOW,
            )
        case workflow.InstanceMigrated():
            return seen(
                summary=f"moved from v{payload.from_version} to v{payload.to_version} "
                f"(step {payload.step} -> {payload.to_step}): {payload.reason}",
                at_least=RequestStatus.IN_WORKFLOW,
            )
        case workflow.EscalatedToCase():
            return seen(
                summary=f"escalated to a case ({payload.reason_code.value}): {payload.reason}",
                status=RequestStatus.ESCALATED,
                request_type=payload.request_type,
                requester=payload.requester,
            )
        case workflow.InstanceCompleted():
            reasons = "; ".join(f"{r.field}: {r.reason}" for r in payload.reasons)
            return seen(
                summary=f"workflow ended: {payload.outcome.value}"
                + (f" ({reasons})" if reasons else ""),
                status=_OUTCOME_STATUS[payload.outcome],
                case_id=payload.case_id,
            )
        case case.CaseOpened():
            return seen(
                summary=f"case {payload.case_id} opened: {payload.title}",
                status=RequestStatus.ESCALATED,
                case_id=payload.case_id,
                request_type=payload.request_type,
            )
        case case.CaseAssigned():
            return seen(
                summary=f"case assigned to team {payload.team}"
                + (f" ({payload.assignee})" if payload.assignee else ""),
                at_least=RequestStatus.ESCALATED,
            )
        case case.CaseClaimed():
            return seen(
                summary=f"case claimed by {payload.assignee}",
                at_least=RequestStatus.ESCALATED,
            )
        case case.StatusChanged():
            return seen(
                summary=f"case {payload.from_status.value} → {payload.to_status.value}",
                at_least=RequestStatus.ESCALATED,
            )
        case case.DecisionRecorded():
            return seen(
                summary=f"case decision: {payload.decision}",
                at_least=RequestStatus.ESCALATED,
            )
        case case.CaseOverrideApplied():
            return seen(
                summary=f"case override of {payload.target}",
                at_least=RequestStatus.ESCALATED,
            )
        case case.CaseResolved():
            return seen(
                summary=f"case resolved: {payload.outcome_code}",
                status=RequestStatus.RESOLVED_BY_CASE,
                case_id=payload.case_id,
            )
    return None


@dataclass(frozen=True)
class TimelineEntry:
    event_id: UUID
    event_type: str
    occurred_at: datetime
    # The request's status once this event was applied.
    status: RequestStatus
    summary: str
