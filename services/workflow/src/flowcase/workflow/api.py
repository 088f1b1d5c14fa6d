"""The HTTP API of the workflow service (an adapter): instances and their history, approvals,
manual overrides, and the published definitions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Body, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from flowcase.events.catalogue import Priority
from flowcase.events.catalogue.base import BoundedDatetime
from flowcase.events.catalogue.workflow import (
    ApprovalDecision,
    DefinitionPublished,
    EscalationReason,
    StepRecord,
)
from flowcase.runtime import ProblemError
from flowcase.runtime.auth import AUTH_RESPONSES, Authenticator, Principal, Role, requires
from flowcase.runtime.problems import PROBLEM_RESPONSES
from flowcase.workflow.application import InstanceNotFound
from flowcase.workflow.catalogue_mapping import definition_published
from flowcase.workflow.definition_files import InvalidDefinition, parse_definition
from flowcase.workflow.engine import TriggerRefused
from flowcase.workflow.migration import InvalidPlan, MigrationPlan, Move
from flowcase.workflow.read_model import ReadModel
from flowcase.workflow.registry import DefinitionRegistry, UnknownRequestType
from flowcase.workflow.service import WorkflowService
from flowcase.workflow.state import InstanceState, Status, Turn, instance_id
from flowcase.workflow.triggers import DecideApproval, ForceCompletion, ForceRoute, SkipStep
from flowcase.workflow.what_if import Change, Figures

TAGS = [
    {"name": "instances", "description": "Workflow instances: one per request."},
    {"name": "approvals", "description": "Approve or deny a pending approval."},
    {"name": "overrides", "description": "Go around the defined path, with a reason."},
    {"name": "definitions", "description": "Process definitions and their versions."},
    {"name": "migrations", "description": "Move running instances to another version."},
]

# A what-if by API reads every request of the period from the store in the request's time:
# beyond this many, the period is to be narrowed (or `flowcase processes what-if` used).
MAX_WHAT_IF_REQUESTS = 20_000

# Each instance of a migration is a transaction of its own: a page this long answers in seconds.
MAX_MIGRATION_PAGE = 5_000

# Deep offsets scan the whole list: past this, narrow the filters instead.
MAX_OFFSET = 10_000

_REQUEST_ID = "0b5e6a0e-8f3c-4c1e-9a57-6d2f3c4b5a69"

RequestId = Annotated[UUID, Path(description="The request's id (the instance follows it).")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Responses


class WhatIfAsked(_Model):
    definition: str = Field(
        min_length=1,
        max_length=200_000,
        description="The proposed definition, as its YAML file holds it.",
    )
    since: BoundedDatetime | None = Field(
        default=None, description="Only requests whose instance started at or after this."
    )
    until: BoundedDatetime | None = Field(
        default=None, description="Only requests whose instance started before this."
    )
    changes: int = Field(
        default=20, ge=0, le=1000, description="How many changed requests to list."
    )


class WhatIfReport(_Model):
    process: str
    proposed_version: int
    happened: Figures = Field(description="The requests as they ran.")
    proposed: Figures = Field(description="The same requests as the proposal would run them.")
    changed: int = Field(description="How many requests' outcome the proposal changes.")
    changes: list[Change] = Field(description="The first of them, in the order they started.")
    not_predicted: list[str] = Field(description="What history stands in for, and how.")


class MigrationAsked(_Model):
    request_type: str = Field(min_length=1, max_length=100)
    from_version: int = Field(ge=1)
    to_version: int = Field(ge=1, description="Published on every workflow process already.")
    plan: MigrationPlan = Field(default_factory=MigrationPlan)
    reason: str = Field(
        min_length=1, max_length=2000, description="Why: kept in each moved instance's history."
    )
    dry_run: bool = Field(default=False, description="Say what would move, and change nothing.")
    migration_id: UUID | None = Field(
        default=None,
        description="The run this call continues (its pages share one id); a new one if absent.",
    )
    after: UUID | None = Field(
        default=None, description="Go on after this request id: the last page's `next`."
    )
    limit: int = Field(default=500, ge=1, le=MAX_MIGRATION_PAGE, description="Instances per call.")


class MigrationReport(_Model):
    migration_id: UUID
    request_type: str
    from_version: int
    to_version: int
    dry_run: bool
    waiting: int = Field(
        description="Instances of the old version waiting at a step when this call began."
    )
    moves: list[Move] = Field(description="What was done (or would be) to each, by request id.")
    next: UUID | None = Field(description="Pass as `after` to go on; null when done.")


class InstanceSummary(_Model):
    request_id: UUID
    request_type: str
    process: str = Field(description="Empty when no definition serves the request type.")
    definition_version: int = Field(description="0 when no definition serves the request type.")
    status: Status
    current_step: str | None
    escalation: EscalationReason | None
    team: str | None
    priority: Priority
    requester: str
    started_at: datetime
    updated_at: datetime


class InstancePage(_Model):
    items: list[InstanceSummary]
    limit: int
    offset: int


class PendingApprovalView(_Model):
    step: str
    role: str
    rule: str
    due_at: datetime


class RecordedEvent(_Model):
    type: str = Field(description="The catalogue event, without its `workflow.` prefix.")
    at: datetime
    actor: str | None = Field(default=None, description="Who acted, for a person's act.")
    fact: dict[str, Any]


class InstanceView(_Model):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "request_id": _REQUEST_ID,
                    "instance_id": "8a1d7c55-2e0b-5f3a-9c4d-1b2e3f4a5b6c",
                    "request_type": "invoice_approval",
                    "process": "invoice-approval",
                    "definition_version": 1,
                    "status": "running",
                    "current_step": "finance-approval",
                    "team": "accounts-payable",
                    "queue": None,
                    "pending_approval": {
                        "step": "finance-approval",
                        "role": "finance-manager",
                        "rule": "payload.amount >= 1000",
                        "due_at": "2026-11-26T09:15:00Z",
                    },
                    "escalation": None,
                    "payload": {"invoice_id": "INV-2291", "amount": 1840.5, "vendor": "Acme"},
                    "history": [
                        {
                            "step": "check-invoice",
                            "kind": "validate",
                            "entered_at": "2026-11-24T09:15:00Z",
                            "completed_at": "2026-11-24T09:15:00Z",
                            "outcome": "valid",
                        }
                    ],
                    "events": [
                        {
                            "type": "StepCompleted",
                            "at": "2026-11-24T09:15:00Z",
                            "fact": {"step": "check-invoice", "outcome": "valid"},
                        }
                    ],
                }
            ]
        },
    )

    request_id: UUID
    instance_id: UUID
    request_type: str
    process: str
    definition_version: int
    status: Status
    current_step: str | None
    team: str | None
    queue: str | None
    pending_approval: PendingApprovalView | None
    escalation: EscalationReason | None
    payload: dict[str, Any]
    history: list[StepRecord] = Field(description="Every step entered, in order.")
    events: list[RecordedEvent] = Field(description="Every recorded event, in order.")


class DefinitionVersions(_Model):
    request_type: str
    process: str
    title: str
    current_version: int
    versions: list[int]


# Requests


class ApprovalBody(_Model):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "decision": "approved",
                    "rationale": "Within the quarterly budget",
                    "relied_on": ["budget-2026-q4"],
                }
            ]
        },
    )

    decision: ApprovalDecision
    rationale: str | None = Field(default=None, max_length=4000)
    relied_on: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list,
        max_length=100,
        description="Ids of the documents or records the decision relied on.",
    )


class _OverrideBody(_Model):
    reason: str = Field(min_length=1, max_length=4000, description="Why; required.")
    relied_on: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=100
    )
    override_id: UUID | None = Field(
        default=None,
        description="Choose one to retry safely: an override whose id was applied is not "
        "applied again.",
    )


class SkipStepBody(_OverrideBody):
    override: Literal["skip_step"]
    step: str = Field(min_length=1, description="The step the instance waits at.")


class ForceRouteBody(_OverrideBody):
    override: Literal["force_route"]
    team: str = Field(min_length=1, max_length=200)


class ForceCompletionBody(_OverrideBody):
    override: Literal["force_completion"]


OverrideBody = Annotated[
    SkipStepBody | ForceRouteBody | ForceCompletionBody, Field(discriminator="override")
]

_OVERRIDE_EXAMPLES = {
    "skip_step": {
        "summary": "Skip the step the instance waits at",
        "value": {
            "override": "skip_step",
            "step": "finance-approval",
            "reason": "Approved by phone; the approver is travelling",
            "relied_on": ["call-2026-11-24-0915"],
            "override_id": "6d1f0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
        },
    },
    "force_route": {
        "summary": "Send the request to another team",
        "value": {
            "override": "force_route",
            "team": "treasury",
            "reason": "Vendor is on the treasury watch list",
        },
    },
    "force_completion": {
        "summary": "Complete the instance now",
        "value": {
            "override": "force_completion",
            "reason": "Handled outside the system",
        },
    },
}


def api_router(
    service: WorkflowService,
    read_model: ReadModel,
    registry: DefinitionRegistry,
    authenticator: Authenticator,
) -> APIRouter:
    """Agents and supervisors read the instances of their teams (the team an instance was routed
    to); supervisors decide approvals and apply overrides for them; every caller reads the
    definitions; admins do everything. Another team's instance is 404. Who decides or overrides
    is the token's subject."""
    router = APIRouter(prefix="/v1", responses=AUTH_RESPONSES)
    reader = requires(authenticator, Role.AGENT, Role.SUPERVISOR)
    supervisor = requires(authenticator, Role.SUPERVISOR)
    ops_leader = requires(authenticator, Role.OPS_LEADER)
    admin = requires(authenticator, Role.ADMIN)

    @router.get(
        "/instances",
        tags=["instances"],
        summary="List instances, newest first",
        response_model=InstancePage,
        responses={422: PROBLEM_RESPONSES[422]},
    )
    async def list_instances(
        request_type: Annotated[str | None, Query(max_length=100)] = None,
        status: Status | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
        who: Principal = Depends(reader),
    ) -> InstancePage:
        rows = await read_model.instances(
            request_type=request_type,
            status=status.value if status else None,
            teams=None if Role.ADMIN in who.roles else who.teams,
            limit=limit,
            offset=offset,
        )
        return InstancePage(
            items=[InstanceSummary.model_validate(row, from_attributes=True) for row in rows],
            limit=limit,
            offset=offset,
        )

    @router.get(
        "/instances/{request_id}",
        tags=["instances"],
        summary="One instance, with its step history and every recorded event",
        response_model=InstanceView,
        responses={404: PROBLEM_RESPONSES[404], 422: PROBLEM_RESPONSES[422]},
    )
    async def get_instance(request_id: RequestId, who: Principal = Depends(reader)) -> InstanceView:
        return await _view(request_id, who)

    @router.post(
        "/instances/{request_id}/approvals/{step}",
        tags=["approvals"],
        summary="Approve or deny the approval pending at a step",
        description="A denial escalates the request to a case (`approval_denied`). The caller "
        "must hold the role the definition asks of this approval (`pending_approval.role`, a "
        "role in the token besides the platform's; an admin may decide any) and must not be the "
        "request's requester: else 403. 409 when the step is not waiting for an approval now.",
        response_model=InstanceView,
        responses={
            403: PROBLEM_RESPONSES[403],
            404: PROBLEM_RESPONSES[404],
            409: PROBLEM_RESPONSES[409],
            422: PROBLEM_RESPONSES[422],
        },
    )
    async def decide_approval(
        request_id: RequestId,
        step: Annotated[str, Path(min_length=1, max_length=200)],
        body: ApprovalBody,
        who: Principal = Depends(supervisor),
    ) -> InstanceView:
        _may_decide(await _visible(request_id, who), step, who)
        trigger = DecideApproval(
            step=step,
            decision=body.decision,
            actor=who.subject,
            rationale=body.rationale,
            relied_on=tuple(body.relied_on),
        )
        await _apply(request_id, trigger)
        return await _view(request_id, who)

    @router.post(
        "/instances/{request_id}/overrides",
        tags=["overrides"],
        summary="Skip a step, force a route or force completion",
        description="Recorded as `workflow.OverrideApplied` with the actor, the reason and "
        "the rule it went around. 409 when the override does not apply now (a finished or "
        "escalated instance, a step the instance is not at, no route decided yet).",
        response_model=InstanceView,
        responses={
            404: PROBLEM_RESPONSES[404],
            409: PROBLEM_RESPONSES[409],
            422: PROBLEM_RESPONSES[422],
        },
    )
    async def apply_override(
        request_id: RequestId,
        body: Annotated[OverrideBody, Body(openapi_examples=_OVERRIDE_EXAMPLES)],
        who: Principal = Depends(supervisor),
    ) -> InstanceView:
        await _visible(request_id, who)
        common: dict[str, Any] = {
            "actor": who.subject,
            "reason": body.reason,
            "relied_on": tuple(body.relied_on),
        }
        if body.override_id is not None:
            common["override_id"] = body.override_id
        trigger: SkipStep | ForceRoute | ForceCompletion
        match body:
            case SkipStepBody():
                trigger = SkipStep(step=body.step, **common)
            case ForceRouteBody():
                trigger = ForceRoute(team=body.team, **common)
            case ForceCompletionBody():
                trigger = ForceCompletion(**common)
        await _apply(request_id, trigger)
        # A forced route may hand the instance to another team; the caller still sees the result.
        return _instance_view(await service.state(request_id), await service.turns(request_id))

    @router.get(
        "/definitions",
        tags=["definitions"],
        summary="Every request type with its current and published versions",
        response_model=list[DefinitionVersions],
        dependencies=[Depends(authenticator)],
    )
    async def list_definitions() -> list[DefinitionVersions]:
        listed = []
        for request_type in registry.request_types():
            current = registry.current(request_type)
            listed.append(
                DefinitionVersions(
                    request_type=request_type,
                    process=current.name,
                    title=current.title,
                    current_version=current.version,
                    versions=registry.versions(request_type),
                )
            )
        return listed

    @router.get(
        "/definitions/{request_type}/versions/{version}",
        tags=["definitions"],
        summary="One definition version as published (steps and the request schema)",
        response_model=DefinitionPublished,
        responses={404: PROBLEM_RESPONSES[404], 422: PROBLEM_RESPONSES[422]},
        dependencies=[Depends(authenticator)],
    )
    async def get_definition(
        request_type: Annotated[str, Path(max_length=100)],
        version: Annotated[int, Path(ge=1)],
    ) -> DefinitionPublished:
        try:
            return definition_published(registry.get(request_type, version))
        except UnknownRequestType as exc:
            raise ProblemError(404, "Not Found", str(exc)) from None

    @router.post(
        "/what-if",
        tags=["definitions"],
        summary="What a proposed definition would have done to the requests of a period",
        description="Each request of the proposal's type started in the period is decided again "
        "by the engine under the proposal (nothing is stored or sent) beside what happened: "
        "approvals as they were where the same step asked the same role (else pending), "
        "actions failing only where they failed, timers firing only where they fired, "
        "overrides not replayed. For ops leaders.",
        response_model=WhatIfReport,
        responses={422: PROBLEM_RESPONSES[422]},
    )
    async def what_if_(asked: WhatIfAsked, who: Principal = Depends(ops_leader)) -> WhatIfReport:
        try:
            definition = parse_definition(asked.definition, "definition")
        except InvalidDefinition as exc:
            raise ProblemError(422, "Unprocessable Content", str(exc)) from None
        request_ids = await read_model.started(definition.request_type, asked.since, asked.until)
        if len(request_ids) > MAX_WHAT_IF_REQUESTS:
            raise ProblemError(
                422,
                "Unprocessable Content",
                f"{len(request_ids)} requests started in that period; at most "
                f"{MAX_WHAT_IF_REQUESTS} by API: narrow the period, or run "
                "`flowcase processes what-if`",
            )
        report = await service.what_if(definition, request_ids)
        return WhatIfReport(
            process=report.process,
            proposed_version=report.proposed_version,
            happened=report.happened,
            proposed=report.proposed,
            changed=len(report.changes),
            changes=report.changes[: asked.changes],
            not_predicted=list(report.not_predicted),
        )

    @router.post(
        "/migrations",
        tags=["migrations"],
        summary="Move the instances waiting on one version to another (or rehearse it)",
        description="Each running instance of `from_version` goes on at the step the plan maps "
        "the step it waits at to (the same name unless renamed), recorded in its history as "
        "`workflow.InstanceMigrated` with who and why. One that cannot move (it waits on an "
        "action, its step has no counterpart or another kind, its payload fails the new "
        "schema, an SLA clock would never stop) is left as it is, with the reason. Each "
        "instance moves in a transaction of its own: a run cut short is finished by running it "
        "again. Pages of `limit` instances: go on with `after`. For admins.",
        response_model=MigrationReport,
        responses={404: PROBLEM_RESPONSES[404], 422: PROBLEM_RESPONSES[422]},
    )
    async def migrate(asked: MigrationAsked, who: Principal = Depends(admin)) -> MigrationReport:
        try:
            page = await service.migrate(
                asked.request_type,
                asked.from_version,
                asked.to_version,
                asked.plan,
                actor=who.subject,
                reason=asked.reason,
                migration_id=asked.migration_id or uuid4(),
                dry_run=asked.dry_run,
                after=asked.after,
                limit=asked.limit,
            )
        except UnknownRequestType as exc:
            raise ProblemError(404, "Not Found", str(exc)) from None
        except InvalidPlan as exc:
            raise ProblemError(422, "Unprocessable Content", f"plan: {exc}") from None
        return MigrationReport(
            migration_id=page.migration_id,
            request_type=asked.request_type,
            from_version=asked.from_version,
            to_version=asked.to_version,
            dry_run=asked.dry_run,
            waiting=page.waiting,
            moves=page.moves,
            next=page.next,
        )

    async def _apply(request_id: UUID, trigger: Any) -> None:
        try:
            await service.apply(request_id, trigger)
        except InstanceNotFound as exc:
            raise ProblemError(404, "Not Found", str(exc)) from None
        except TriggerRefused as exc:
            raise ProblemError(409, "Conflict", str(exc)) from None

    async def _visible(request_id: UUID, who: Principal) -> InstanceState:
        """The instance, if it is of the caller's teams; else 404 as if it did not exist."""
        try:
            state = await service.state(request_id)
        except InstanceNotFound as exc:
            raise ProblemError(404, "Not Found", str(exc)) from None
        if not who.sees_team(state.route.team if state.route else None):
            raise ProblemError(404, "Not Found", f"no workflow instance for request {request_id}")
        return state

    async def _view(request_id: UUID, who: Principal) -> InstanceView:
        state = await _visible(request_id, who)
        return _instance_view(state, await service.turns(request_id))

    return router


def _may_decide(state: InstanceState, step: str, who: Principal) -> None:
    """Segregation of duties: nobody decides an approval of their own request, and only a
    holder of the role the definition names decides it (admins: any role)."""
    if who.subject == state.requester:
        raise ProblemError(
            403, "Forbidden", f"{who.subject} requested this and may not decide its approval"
        )
    pending = state.approval
    if pending is None or pending.step != step:
        return  # nothing to decide here: the engine answers 409
    if Role.ADMIN not in who.roles and pending.role not in who.business_roles:
        held = ", ".join(sorted(who.business_roles)) or "none"
        raise ProblemError(
            403,
            "Forbidden",
            f"the approval at {step} needs the role {pending.role} (the token's roles besides "
            f"the platform's: {held})",
        )


def _instance_view(state: InstanceState, turns: list[Turn]) -> InstanceView:
    approval = state.approval
    return InstanceView(
        request_id=state.request_id,
        instance_id=instance_id(state.request_id),
        request_type=state.request_type,
        process=state.process,
        definition_version=state.definition_version,
        status=state.status,
        current_step=state.current_step,
        team=state.route.team if state.route else None,
        queue=state.route.queue if state.route else None,
        pending_approval=(
            PendingApprovalView(
                step=approval.step, role=approval.role, rule=approval.rule, due_at=approval.due_at
            )
            if approval
            else None
        ),
        escalation=state.escalation,
        payload=dict(state.payload),
        history=list(state.history),
        events=[
            RecordedEvent(
                type=type(event).__name__,
                at=turn.at,
                actor=turn.actor_of(event),
                fact=event.model_dump(mode="json", exclude={"request_id"}),
            )
            for turn in turns
            for event in turn.events
        ],
    )
