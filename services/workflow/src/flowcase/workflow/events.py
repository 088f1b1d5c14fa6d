"""What happened to a workflow instance: the facts the engine decides and the aggregate records.

Each class is named after the catalogue payload it becomes and carries everything that payload
needs, so the relay turns one stored fact into one catalogue event on its own
(`catalogue_mapping.to_catalogue`). `at` is the event time the engine was given, never a clock
reading. Fields hold JSON-ready values only, so a fact read back from the event store equals the
fact that was written.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from flowcase.events.catalogue import Outcome, Priority, Reason, UtcDatetime
from flowcase.events.catalogue.workflow import (
    ApprovalDecision,
    EscalationReason,
    OverrideKind,
    StepKind,
    StepRecord,
)


class _Fact(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: UUID
    at: UtcDatetime


class InstanceStarted(_Fact):
    request_type: str
    process: str
    definition_version: int
    priority: Priority
    requester: str
    payload: dict[str, Any]


class StepEntered(_Fact):
    step: str
    kind: StepKind
    sla_due_at: UtcDatetime | None = None


class StepCompleted(_Fact):
    step: str
    kind: StepKind
    outcome: str
    detail: dict[str, Any] = Field(default_factory=dict)


class ApprovalRequested(_Fact):
    step: str
    approver_role: str
    rule: str
    due_at: UtcDatetime


class ApprovalDecided(_Fact):
    step: str
    decision: ApprovalDecision
    actor: str
    rationale: str | None = None
    relied_on: list[str] = Field(default_factory=list)


class SlaBreached(_Fact):
    step: str
    sla_seconds: float
    due_at: UtcDatetime


class ActionFailed(_Fact):
    step: str
    attempts: int
    error: str


class OverrideApplied(_Fact):
    override_id: UUID
    override: OverrideKind
    step: str | None = None
    rule: str | None = None
    definition_version: int
    target: str | None = None
    actor: str
    reason: str
    relied_on: list[str] = Field(default_factory=list)


class EscalatedToCase(_Fact):
    request_type: str
    process: str
    definition_version: int
    reason_code: EscalationReason
    reason: str
    step: str
    priority: Priority
    requester: str
    intake_payload: dict[str, Any]
    history: tuple[StepRecord, ...]


class InstanceCompleted(_Fact):
    outcome: Outcome
    case_id: UUID | None = None
    reasons: tuple[Reason, ...] = ()


WorkflowEvent = (
    InstanceStarted
    | StepEntered
    | StepCompleted
    | ApprovalRequested
    | ApprovalDecided
    | SlaBreached
    | ActionFailed
    | OverrideApplied
    | EscalatedToCase
    | InstanceCompleted
)

EVENT_TYPES: dict[str, type[WorkflowEvent]] = {
    cls.__name__: cls
    for cls in (
        InstanceStarted,
        StepEntered,
        StepCompleted,
        ApprovalRequested,
        ApprovalDecided,
        SlaBreached,
        ActionFailed,
        OverrideApplied,
        EscalatedToCase,
        InstanceCompleted,
    )
}
