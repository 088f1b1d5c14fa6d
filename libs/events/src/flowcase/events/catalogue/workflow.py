"""Workflow: process definitions and the life of each workflow instance (keyed by request id)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from flowcase.events.catalogue.base import EventPayload, UtcDatetime, catalogued
from flowcase.events.catalogue.common import Outcome, Priority, Reason
from flowcase.events.topics import Topic

_REQUEST_ID = "0b5e6a0e-8f3c-4c1e-9a57-6d2f3c4b5a69"
_INSTANCE_ID = "8a1d7c55-2e0b-5f3a-9c4d-1b2e3f4a5b6c"


class StepKind(StrEnum):
    VALIDATE = "validate"
    ROUTE = "route"
    SLA = "sla"
    APPROVAL = "approval"
    ACTION = "action"
    NOTIFY = "notify"
    BRANCH = "branch"
    ESCALATE = "escalate"


class EscalationReason(StrEnum):
    """Why a request left the defined path and became a case."""

    NO_BRANCH_MATCHED = "no_branch_matched"
    APPROVAL_DENIED = "approval_denied"
    APPROVAL_TIMED_OUT = "approval_timed_out"
    SLA_BREACHED = "sla_breached"
    ACTION_FAILED = "action_failed"
    RULE = "rule"


class OverrideKind(StrEnum):
    SKIP_STEP = "skip_step"
    FORCE_ROUTE = "force_route"
    FORCE_COMPLETION = "force_completion"


class ApprovalDecision(StrEnum):
    APPROVED = "approved"
    DENIED = "denied"


class TimersOnMigration(StrEnum):
    """What a migration does to an instance's running clocks (its approval timeout, its SLAs)."""

    CARRY = "carry"
    """Each keeps its due time: the time already spent counts."""
    RESTART = "restart"
    """Each starts again at the migration: an approval gets the new step's whole timeout, an
    SLA its whole length."""


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StepSummary(_Part):
    name: str
    kind: StepKind
    sla_seconds: float | None = None


class StepRecord(_Part):
    """One step of an instance's history, as carried into an escalation."""

    step: str
    kind: StepKind
    entered_at: UtcDatetime
    completed_at: UtcDatetime | None = None
    outcome: str | None = None


@catalogued(
    "workflow.DefinitionPublished",
    topic=Topic.WORKFLOW_DEFINITIONS,
    key="request_type",
    examples=[
        {
            "request_type": "password_reset",
            "process": "password-reset",
            "version": 3,
            "title": "Password reset",
            "request_schema": {
                "type": "object",
                "required": ["account"],
                "properties": {"account": {"type": "string", "minLength": 1}},
            },
            "steps": [
                {"name": "check-account", "kind": "validate"},
                {"name": "acknowledge", "kind": "sla", "sla_seconds": 900},
                {"name": "reset", "kind": "action"},
                {"name": "tell-requester", "kind": "notify"},
            ],
        }
    ],
)
class DefinitionPublished(EventPayload):
    """The current version of a process definition and the schema its request type requires."""

    request_type: str
    process: str
    version: int = Field(ge=1)
    title: str
    description: str = ""
    request_schema: dict[str, Any] = Field(description="JSON Schema of the type-specific payload.")
    steps: list[StepSummary]


@catalogued(
    "workflow.InstanceStarted",
    topic=Topic.WORKFLOW_EVENTS,
    key="request_id",
    version=3,
    examples=[
        {
            "request_id": _REQUEST_ID,
            "instance_id": _INSTANCE_ID,
            "request_type": "invoice_approval",
            "process": "invoice-approval",
            "definition_version": 2,
            "priority": "normal",
            "requester": "ap-clerk@example.com",
            "payload": {"invoice_id": "INV-2291", "vendor": "Acme", "amount": 1840.5},
            "due_at": "2026-11-27T09:15:00Z",
        }
    ],
)
class InstanceStarted(EventPayload):
    """An instance began on a definition version (version 0: none serves its request type).

    Version 2 added `requester` and `payload`, so a workflow's own events replay to its state
    without intake's; version 3 `due_at`, the request's promise."""

    request_id: UUID
    instance_id: UUID
    request_type: str
    process: str
    definition_version: int
    priority: Priority = Priority.NORMAL
    requester: str | None = None
    payload: dict[str, Any] = Field(
        default_factory=dict, description="The request's type-specific payload, as submitted."
    )
    due_at: UtcDatetime | None = Field(
        default=None,
        description="When the request is promised resolved: its submission plus the "
        "definition's `resolve_within` for its priority (none when the definition promises "
        "nothing). One clock from submission to resolution, carried into a case.",
    )


@catalogued(
    "workflow.StepEntered",
    topic=Topic.WORKFLOW_EVENTS,
    key="request_id",
    examples=[
        {
            "request_id": _REQUEST_ID,
            "step": "manager-approval",
            "kind": "approval",
            "sla_due_at": "2026-11-25T09:15:00Z",
        }
    ],
)
class StepEntered(EventPayload):
    request_id: UUID
    step: str
    kind: StepKind
    sla_due_at: UtcDatetime | None = Field(
        default=None, description="When the step's SLA (or the configured default) runs out."
    )


@catalogued(
    "workflow.StepCompleted",
    topic=Topic.WORKFLOW_EVENTS,
    key="request_id",
    examples=[
        {
            "request_id": _REQUEST_ID,
            "step": "route-to-team",
            "kind": "route",
            "outcome": "accounts-payable",
            "detail": {"rule": "payload.amount < 5000"},
        }
    ],
)
class StepCompleted(EventPayload):
    request_id: UUID
    step: str
    kind: StepKind
    outcome: str = Field(description="What the step decided or did, e.g. the team routed to.")
    detail: dict[str, Any] = Field(default_factory=dict)


@catalogued(
    "workflow.ApprovalRequested",
    topic=Topic.WORKFLOW_EVENTS,
    key="request_id",
    examples=[
        {
            "request_id": _REQUEST_ID,
            "step": "manager-approval",
            "approver_role": "finance-manager",
            "rule": "payload.amount >= 1000.0",
            "due_at": "2026-11-25T09:15:00Z",
        }
    ],
)
class ApprovalRequested(EventPayload):
    request_id: UUID
    step: str
    approver_role: str
    rule: str = Field(description="The definition's rule that made this approval necessary.")
    due_at: UtcDatetime | None = None


@catalogued(
    "workflow.ApprovalDecided",
    topic=Topic.WORKFLOW_EVENTS,
    key="request_id",
    examples=[
        {
            "request_id": _REQUEST_ID,
            "step": "manager-approval",
            "decision": "approved",
            "rationale": "Within the quarterly budget",
            "relied_on": ["budget-2026-q4"],
        }
    ],
)
class ApprovalDecided(EventPayload):
    """A person approved or denied (the envelope's actor says who)."""

    request_id: UUID
    step: str
    decision: ApprovalDecision
    rationale: str | None = None
    relied_on: list[str] = Field(
        default_factory=list, description="Ids of the documents or records the approver relied on."
    )


@catalogued(
    "workflow.SlaBreached",
    topic=Topic.WORKFLOW_EVENTS,
    key="request_id",
    examples=[
        {
            "request_id": _REQUEST_ID,
            "step": "acknowledge",
            "sla_seconds": 900,
            "due_at": "2026-11-24T09:30:00Z",
        }
    ],
)
class SlaBreached(EventPayload):
    request_id: UUID
    step: str
    sla_seconds: float
    due_at: UtcDatetime


@catalogued(
    "workflow.PromiseBroken",
    topic=Topic.WORKFLOW_EVENTS,
    key="request_id",
    examples=[
        {
            "request_id": _REQUEST_ID,
            "due_at": "2026-11-27T09:15:00Z",
            "step": "finance-approval",
            "raised_to": "high",
            "reassigned_to": "finance-escalations",
        }
    ],
)
class PromiseBroken(EventPayload):
    """The request's promise (`InstanceStarted.due_at`) passed while it was still in the
    workflow. Stated once per request, by the workflow's durable timer; a request that became a
    case before its due time is the case's to state."""

    request_id: UUID
    due_at: UtcDatetime
    step: str | None = Field(default=None, description="The step the request was waiting at.")
    raised_to: Priority | None = Field(
        default=None, description="The priority the definition raises an overdue request to."
    )
    reassigned_to: str | None = Field(
        default=None, description="The team the definition reassigns an overdue request to."
    )
    queue: str | None = Field(default=None, description="And its queue, when it names one.")


@catalogued(
    "workflow.ActionFailed",
    topic=Topic.WORKFLOW_EVENTS,
    key="request_id",
    examples=[
        {
            "request_id": _REQUEST_ID,
            "step": "provision-accounts",
            "attempts": 5,
            "error": "HTTP 503 from https://idp.example/api/accounts",
        }
    ],
)
class ActionFailed(EventPayload):
    """An action's connector failed after all its retries."""

    request_id: UUID
    step: str
    attempts: int = Field(ge=1)
    error: str


@catalogued(
    "workflow.OverrideApplied",
    topic=Topic.WORKFLOW_EVENTS,
    key="request_id",
    examples=[
        {
            "request_id": _REQUEST_ID,
            "override_id": "6d1f0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
            "override": "force_route",
            "step": "route-to-team",
            "rule": "payload.amount < 5000",
            "definition_version": 2,
            "target": "treasury",
            "reason": "Vendor is on the treasury watch list",
            "relied_on": ["watch-list-2026-11"],
        }
    ],
)
class OverrideApplied(EventPayload):
    """A manual override of the defined path (the envelope's actor says who)."""

    request_id: UUID
    override_id: UUID = Field(description="Stable id: the same override published twice is one.")
    override: OverrideKind
    step: str | None = None
    rule: str | None = Field(
        default=None, description="The definition rule the override went around, when there is one."
    )
    definition_version: int
    target: str | None = Field(default=None, description="The forced route, when forcing a route.")
    reason: str = Field(min_length=1)
    relied_on: list[str] = Field(
        default_factory=list, description="Ids of the documents or records the override relied on."
    )


@catalogued(
    "workflow.InstanceMigrated",
    topic=Topic.WORKFLOW_EVENTS,
    key="request_id",
    examples=[
        {
            "request_id": _REQUEST_ID,
            "migration_id": "5e4d3c2b-1a09-4f8e-9d7c-6b5a4f3e2d1c",
            "from_version": 1,
            "to_version": 2,
            "step": "finance-approval",
            "to_step": "controller-approval",
            "steps": {"finance-approval": "controller-approval"},
            "timers": "carry",
            "reason": "Approvals above 10,000 go to the controller from December",
        }
    ],
)
class InstanceMigrated(EventPayload):
    """A running instance moved to another version of its definition (the envelope's actor
    says who moved it). The step it waited at closes with this event; the events that follow in
    the same turn enter `to_step` of `to_version`, where the instance goes on."""

    request_id: UUID
    migration_id: UUID = Field(description="The migration run: one id for every instance it moved.")
    from_version: int = Field(ge=1)
    to_version: int = Field(ge=1)
    step: str = Field(description="The step the instance waited at under `from_version`.")
    to_step: str = Field(description="The step of `to_version` it goes on at.")
    steps: dict[str, str] = Field(
        default_factory=dict,
        description="The plan's renames, old step to new; a step it does not name keeps its name.",
    )
    timers: TimersOnMigration = TimersOnMigration.CARRY
    reason: str = Field(min_length=1)


@catalogued(
    "workflow.EscalatedToCase",
    topic=Topic.WORKFLOW_EVENTS,
    key="request_id",
    version=2,
    examples=[
        {
            "request_id": _REQUEST_ID,
            "request_type": "access_complaint",
            "process": "access-complaint",
            "definition_version": 1,
            "reason_code": "rule",
            "reason": "Access complaints always need an investigation",
            "step": "escalate-complaint",
            "priority": "high",
            "requester": "jdoe",
            "intake_payload": {"system": "payroll", "complaint": "I was locked out"},
            "history": [
                {
                    "step": "check-fields",
                    "kind": "validate",
                    "entered_at": "2026-11-24T09:15:00Z",
                    "completed_at": "2026-11-24T09:15:00Z",
                    "outcome": "valid",
                }
            ],
        }
    ],
)
class EscalatedToCase(EventPayload):
    """The request left the defined path; the case service opens one case for it.

    Version 2 added `submitted_at` and `due_at`: the request's clock goes on in the case."""

    request_id: UUID
    request_type: str
    process: str
    definition_version: int
    reason_code: EscalationReason
    reason: str
    step: str
    priority: Priority = Priority.NORMAL
    requester: str | None = None
    intake_payload: dict[str, Any]
    history: list[StepRecord]
    submitted_at: UtcDatetime | None = Field(
        default=None, description="When the request was submitted: its clock started then."
    )
    due_at: UtcDatetime | None = Field(
        default=None, description="When the request is promised resolved (`InstanceStarted`)."
    )


@catalogued(
    "workflow.InstanceCompleted",
    topic=Topic.WORKFLOW_EVENTS,
    key="request_id",
    examples=[
        {"request_id": _REQUEST_ID, "outcome": "completed"},
        {
            "request_id": _REQUEST_ID,
            "outcome": "resolved_by_case",
            "case_id": "c2a9e1f0-4b3d-5e6f-8a7b-9c0d1e2f3a4b",
        },
        {
            "request_id": _REQUEST_ID,
            "outcome": "rejected",
            "reasons": [{"field": "payload.amount", "reason": "must be positive"}],
        },
    ],
)
class InstanceCompleted(EventPayload):
    """The instance reached its terminal outcome."""

    request_id: UUID
    outcome: Outcome
    case_id: UUID | None = None
    reasons: list[Reason] = Field(default_factory=list)


@catalogued(
    "workflow.InstanceAdvanced",
    topic=Topic.WORKFLOW_EVENTS,
    key="request_id",
    examples=[
        {
            "request_id": _REQUEST_ID,
            "events": [
                {
                    "event_id": "3f1e2d3c-4b5a-5697-8a9b-0c1d2e3f4a5b",
                    "event_type": "workflow.StepCompleted",
                    "schema_version": 1,
                    "occurred_at": "2026-11-24T09:15:02Z",
                    "recorded_at": "2026-11-24T09:15:02.113Z",
                    "source": "workflow",
                    "request_id": _REQUEST_ID,
                    "payload": {
                        "request_id": _REQUEST_ID,
                        "step": "reset-password",
                        "kind": "action",
                        "outcome": "succeeded",
                    },
                },
                {
                    "event_id": "7a6b5c4d-3e2f-5a1b-9c8d-7e6f5a4b3c2d",
                    "event_type": "workflow.InstanceCompleted",
                    "schema_version": 1,
                    "occurred_at": "2026-11-24T09:15:02Z",
                    "recorded_at": "2026-11-24T09:15:02.113Z",
                    "source": "workflow",
                    "request_id": _REQUEST_ID,
                    "payload": {"request_id": _REQUEST_ID, "outcome": "completed"},
                },
            ],
        }
    ],
)
class InstanceAdvanced(EventPayload):
    """What one trigger caused to one instance, in one message: the envelopes of its events, in
    order, each with its own event id (a routine request is two messages instead of twelve).
    Read it as the events it carries (`flowcase.events.expand`); its `flowcase.event_types`
    header names them, so a consumer passes over a message without decoding it."""

    request_id: UUID
    events: list[dict[str, Any]] = Field(
        min_length=2, description="The envelope of each event, as JSON, in the order they happened."
    )

    def carried_types(self) -> tuple[str, ...]:
        return tuple(str(event.get("event_type")) for event in self.events)


InstanceEvent = (
    InstanceStarted
    | StepEntered
    | StepCompleted
    | ApprovalRequested
    | ApprovalDecided
    | SlaBreached
    | PromiseBroken
    | ActionFailed
    | OverrideApplied
    | InstanceMigrated
    | EscalatedToCase
    | InstanceCompleted
)
"""What happens to one workflow instance: the events of `flowcase.workflow.events` (alone, or
several in a `workflow.InstanceAdvanced`), which the workflow also stores and folds."""
