"""What can move a workflow instance: the inputs of the engine, one class per kind of trigger.

The time a trigger happened is not part of it; the engine takes it as a separate argument, so the
caller (a consumer, the API, the timer loop) decides what "now" is and a replay can reuse it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field

from flowcase.events.catalogue import Priority
from flowcase.events.catalogue.workflow import ApprovalDecision, TimersOnMigration
from flowcase.workflow.definition import ProcessDefinition


class _Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Submit(_Trigger):
    """An accepted request: starts its instance."""

    request_id: UUID
    request_type: str
    requester: str
    priority: Priority = Priority.NORMAL
    payload: dict[str, Any]


class DecideApproval(_Trigger):
    step: str
    decision: ApprovalDecision
    actor: str = Field(min_length=1)
    rationale: str | None = None
    relied_on: tuple[str, ...] = ()


class FireTimer(_Trigger):
    """A timer the engine scheduled is due. Firing one that was cancelled or already fired does
    nothing, so the timer loop may deliver at least once."""

    timer_id: str


class ReportActionSucceeded(_Trigger):
    step: str
    attempts: int = Field(default=1, ge=1)
    result: dict[str, Any] = Field(default_factory=dict)


class ReportActionFailed(_Trigger):
    """The connector gave up on the action after its retries."""

    step: str
    attempts: int = Field(ge=1)
    error: str


class _Override(_Trigger):
    """A person going around the defined path; who and why are required for the audit trail."""

    actor: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    relied_on: tuple[str, ...] = ()
    # Chosen where the override is asked for, so a retried request names the same override.
    override_id: UUID = Field(default_factory=uuid4)


class SkipStep(_Override):
    step: str = Field(description="The step the instance waits at; guards against a stale view.")


class ForceRoute(_Override):
    team: str = Field(min_length=1)


class ForceCompletion(_Override):
    pass


class CloseByCase(_Trigger):
    """The case an escalation opened was resolved."""

    case_id: UUID


class Migrate(_Trigger):
    """Move a running instance to version `to` of its definition: it goes on at the step `steps`
    maps the step it waits at to, or the step of the same name. An administrator's act, so who
    and why are required, as for an override."""

    from_version: int = Field(ge=1, description="The version the caller saw it on.")
    to: ProcessDefinition
    steps: dict[str, str] = Field(default_factory=dict, description="Renames, old step to new.")
    timers: TimersOnMigration = TimersOnMigration.CARRY
    actor: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    migration_id: UUID


Trigger = (
    Submit
    | DecideApproval
    | FireTimer
    | ReportActionSucceeded
    | ReportActionFailed
    | SkipStep
    | ForceRoute
    | ForceCompletion
    | CloseByCase
    | Migrate
)
