"""The case worker API: open cases, act on them, read them, audit them, search them.

Every command is based on the version of the case the caller read, either as the `If-Match`
header (the `ETag` a read or a command returned, e.g. `"4"`) or as the body's `expected_version`;
its actor is the token's subject. Agents and supervisors work the cases of their teams (an
unassigned case belongs to the triage team); assignments and overrides are supervisors'; admins
do everything. Another team's case is 404, as if it did not exist. Errors are RFC 9457 problem
details.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, create_model

from flowcase.case import errors
from flowcase.case.case_search import MAX_LIMIT, CaseSearch, Filters, InvalidCursor, Sort
from flowcase.case.case_service import CaseService
from flowcase.case.catalogue_mapping import to_catalogue
from flowcase.case.chain import ChainAnchor
from flowcase.case.commands import (
    AddNote,
    AddTask,
    ApplyOverride,
    Assign,
    AttachEvidence,
    CaseCommand,
    ChangeStatus,
    Claim,
    CompleteTask,
    LogCommunication,
    PauseClock,
    RecordDecision,
    Resolve,
    ResumeClock,
    SetMilestone,
)
from flowcase.case.http_models import (
    AuditEntry,
    AuditView,
    CasePage,
    CaseSummary,
    CaseView,
    CommandResult,
    History,
    HistoryEntry,
    OpenCase,
    Verification,
)
from flowcase.events.catalogue.base import BoundedDatetime
from flowcase.events.catalogue.case import CaseStatus
from flowcase.runtime import FieldError, Problem, ProblemError
from flowcase.runtime.auth import AUTH_RESPONSES, Authenticator, Principal, Role, requires
from flowcase.runtime.problems import PROBLEM_RESPONSES, problem_response

OPENAPI_TAGS = [
    {"name": "cases", "description": "Open a case, read it, list and search cases."},
    {
        "name": "commands",
        "description": "What case workers do, as the token's subject. Each takes the version read "
        "(`If-Match` or `expected_version`); a stale version is 409 and records nothing.",
    },
    {"name": "audit", "description": "The hash-chained trail of a case and its verification."},
]

CaseId = Annotated[UUID, Path(description="The case id.")]
IfMatch = Annotated[
    str | None,
    Header(
        description='The ETag of the case version the caller read, e.g. `"4"`; alternative to '
        "the body's `expected_version`."
    ),
]

_READ: dict[int | str, dict[str, Any]] = {404: PROBLEM_RESPONSES[404]}
_COMMAND: dict[int | str, dict[str, Any]] = {
    status: PROBLEM_RESPONSES[status] for status in (404, 409, 422)
}


def etag(version: int) -> str:
    return f'"{version}"'


def expected_version(if_match: str | None, body: CaseCommand) -> int:
    """The version the caller read, from `If-Match` or the body; 422 if absent or unclear."""
    from_header: int | None = None
    if if_match is not None:
        tag = if_match.strip().removeprefix("W/").strip('"')
        if not tag.isdigit() or int(tag) < 1:
            raise _invalid("header.If-Match", f"{if_match!r} is not an ETag this service returned")
        from_header = int(tag)
    if from_header is None and body.expected_version is None:
        raise _invalid(
            "expected_version", "required: the version read, here or as the If-Match header"
        )
    if from_header is not None and body.expected_version not in (None, from_header):
        raise _invalid("expected_version", f"disagrees with If-Match ({from_header})")
    version = from_header if from_header is not None else body.expected_version
    assert version is not None
    return version


def _invalid(field: str, reason: str) -> ProblemError:
    return ProblemError(
        422,
        "Unprocessable Content",
        f"{field}: {reason}",
        errors=[FieldError(field=field, reason=reason)],
    )


AnchorOf = Callable[[UUID], Awaitable[ChainAnchor | None]]
"""A case's chain anchor as Kafka holds it now (`ChainAnchorPublisher.anchor_of`)."""


def case_router(
    service: CaseService,
    search: CaseSearch,
    authenticator: Authenticator,
    anchor_of: AnchorOf,
    *,
    triage_team: str,
) -> APIRouter:
    router = APIRouter(prefix="/v1/cases", responses=AUTH_RESPONSES)
    app = service.application
    worker = requires(authenticator, Role.AGENT, Role.SUPERVISOR)
    supervisor = requires(authenticator, Role.SUPERVISOR)

    def sees(who: Principal, team: str | None) -> bool:
        return who.sees_team(team or triage_team)

    async def visible(case_id: UUID, who: Principal) -> None:
        """Nothing if the case is of the caller's teams; else 404, as if it did not exist."""
        try:
            team = (await service.get_case(case_id)).team
        except errors.BrokenRecord:
            # A damaged record cannot be loaded: its team is the read model's, so that the team
            # can still read how it is damaged.
            found, team = await search.team_of(case_id)
            if not found:
                raise
        if not sees(who, team):
            raise errors.CaseNotFound(case_id)

    async def command(
        case_id: UUID, body: CaseCommand, if_match: str | None, who: Principal, response: Response
    ) -> CommandResult:
        based_on = body.model_copy(update={"expected_version": expected_version(if_match, body)})
        await visible(case_id, who)
        recorded = await service.execute(case_id, based_on, actor=who.subject)
        response.headers["ETag"] = etag(recorded.version)
        return CommandResult(
            case_id=recorded.case_id, version=recorded.version, entry_id=recorded.entry_id
        )

    @router.post(
        "",
        tags=["cases"],
        status_code=201,
        summary="Open a case directly (a person, not an escalation)",
        description="The case starts unassigned, with the triage team, like an escalation.",
        responses={422: PROBLEM_RESPONSES[422]},
    )
    async def open_case(
        body: OpenCase, response: Response, who: Principal = Depends(worker)
    ) -> CommandResult:
        case_id = await service.call(
            app.open_case,
            body.title,
            actor=who.subject,
            priority=body.priority,
            request_id=body.request_id,
            request_type=body.request_type,
            context=body.context,
        )
        response.headers["Location"] = f"/v1/cases/{case_id}"
        response.headers["ETag"] = etag(1)
        return CommandResult(case_id=case_id, version=1)

    @router.get(
        "",
        tags=["cases"],
        summary="List and search cases (the search read model), newest opened first",
        description="Only the cases of the caller's teams (unassigned ones: the triage team's).",
        responses={422: PROBLEM_RESPONSES[422]},
    )
    async def search_cases(
        status: CaseStatus | None = None,
        team: str | None = None,
        assignee: str | None = None,
        request_type: str | None = None,
        opened_before: Annotated[BoundedDatetime | None, Query()] = None,
        opened_after: Annotated[BoundedDatetime | None, Query()] = None,
        sla_due_before: Annotated[
            BoundedDatetime | None,
            Query(
                description="Cases whose deadline (the request's promise or an open task's due "
                "time, the earliest) is before this time."
            ),
        ] = None,
        sort: Annotated[
            Sort,
            Query(
                description="`opened`: newest opened first; `deadline`: the cases with a "
                "deadline, the soonest (or most overdue) first."
            ),
        ] = Sort.OPENED,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        cursor: Annotated[
            str | None, Query(description="`next_cursor` of the previous page.")
        ] = None,
        who: Principal = Depends(worker),
    ) -> CasePage:
        filters = Filters(
            status=status,
            team=team,
            assignee=assignee,
            request_type=request_type,
            opened_before=opened_before,
            opened_after=opened_after,
            sla_due_before=sla_due_before,
            visible_teams=None if Role.ADMIN in who.roles else who.teams,
            unassigned=sees(who, None),
        )
        try:
            page = await search.search(filters, limit=limit, cursor=cursor, sort=sort)
        except InvalidCursor as exc:
            raise _invalid("query.cursor", str(exc)) from None
        return CasePage(
            items=[CaseSummary.model_validate(dict(row)) for row in page.rows],
            next_cursor=page.next_cursor,
        )

    @router.get("/{case_id}", tags=["cases"], summary="The case as it is now", responses=_READ)
    async def get_case(
        case_id: CaseId, response: Response, who: Principal = Depends(worker)
    ) -> CaseView:
        case = await service.get_case(case_id)
        if not sees(who, case.team):
            raise errors.CaseNotFound(case_id)
        response.headers["ETag"] = etag(case.version)
        return CaseView.of(case, datetime.now(UTC))

    @router.get(
        "/{case_id}/history",
        tags=["cases"],
        summary="Every event of the case, as published",
        responses=_READ,
    )
    async def history(case_id: CaseId, who: Principal = Depends(worker)) -> History:
        await visible(case_id, who)
        events = await service.history(case_id)
        entries = []
        for event in events:
            publication = to_catalogue(event)
            entries.append(
                HistoryEntry(
                    version=event.originator_version,
                    event_type=publication.payload.event_type,
                    occurred_at=publication.occurred_at,
                    actor=publication.actor,
                    payload=publication.payload.model_dump(mode="json"),
                )
            )
        return History(case_id=case_id, events=entries)

    @router.get(
        "/{case_id}/audit",
        tags=["audit"],
        summary="The full stored trail with its hash chain, verified",
        responses=_READ,
    )
    async def audit(case_id: CaseId, who: Principal = Depends(worker)) -> AuditView:
        await visible(case_id, who)
        anchor = await anchor_of(case_id)
        trail = await service.audit(case_id, anchor)
        return AuditView(
            case_id=case_id,
            verification=Verification.of(trail.report),
            events=[
                AuditEntry(
                    version=record.version,
                    type=record.topic,
                    state={k: v for k, v in record.state.items() if k != "chain_hash"},
                    chain_hash=record.state.get("chain_hash"),
                    verified=position <= trail.report.verified,
                )
                for position, record in enumerate(trail.records, start=1)
            ],
        )

    @router.get(
        "/{case_id}/verify",
        tags=["audit"],
        summary="Recompute the audit chain: intact, or the first break",
        responses=_READ,
    )
    async def verify(case_id: CaseId, who: Principal = Depends(worker)) -> Verification:
        await visible(case_id, who)
        anchor = await anchor_of(case_id)
        return Verification.of(await service.verify(case_id, anchor))

    for route in COMMAND_ROUTES:
        _add_command_route(router, route, command, supervisor if route.supervisors_only else worker)

    return router


@dataclass(frozen=True)
class CommandRoute:
    """Where a command is posted (the path's other placeholders fill its fields of the same
    name), what the route says it does, and whether only supervisors may."""

    path: str
    command: type[CaseCommand]
    summary: str
    supervisors_only: bool = False


COMMAND_ROUTES = (
    CommandRoute(
        "/{case_id}/assignments", Assign, "Assign the case to a team (and a person)", True
    ),
    CommandRoute("/{case_id}/claims", Claim, "Claim the case: the actor becomes its assignee"),
    CommandRoute("/{case_id}/notes", AddNote, "Add a note (n-N)"),
    CommandRoute(
        "/{case_id}/communications",
        LogCommunication,
        "Log an inbound or outbound communication (m-N)",
    ),
    CommandRoute(
        "/{case_id}/evidence",
        AttachEvidence,
        "Attach evidence: a reference and its content's SHA-256 (e-N)",
    ),
    CommandRoute("/{case_id}/tasks", AddTask, "Add an ad-hoc task (t-N)"),
    CommandRoute("/{case_id}/tasks/{task_id}/completion", CompleteTask, "Complete a task (once)"),
    CommandRoute("/{case_id}/milestones", SetMilestone, "Set a milestone"),
    CommandRoute(
        "/{case_id}/clock/pause",
        PauseClock,
        "Stop the request's clock while the case waits on the requester, with the reason",
    ),
    CommandRoute(
        "/{case_id}/clock/resume",
        ResumeClock,
        "Start the request's clock again: its promised time moves on by the pause",
    ),
    CommandRoute(
        "/{case_id}/status-changes",
        ChangeStatus,
        "Move the case along its lifecycle (409 lists the allowed statuses)",
    ),
    CommandRoute(
        "/{case_id}/decisions",
        RecordDecision,
        "Record a decision with its rationale and what it relied on (d-N)",
    ),
    CommandRoute(
        "/{case_id}/overrides",
        ApplyOverride,
        "Apply a manual override with its rationale and what it relied on (o-N)",
        True,
    ),
    CommandRoute(
        "/{case_id}/resolution",
        Resolve,
        "Resolve the case with an outcome code; the workflow closes the request",
    ),
)

_PLACEHOLDER = re.compile(r"{(\w+)}")


def _add_command_route(
    router: APIRouter,
    route: CommandRoute,
    command: Callable[..., Awaitable[CommandResult]],
    who_may: Callable[..., Any],
) -> None:
    """POST `route.path`: the body is the command less the fields its path fills."""
    from_path = [name for name in _PLACEHOLDER.findall(route.path) if name != "case_id"]
    body_model = _body_of(route.command, tuple(from_path))

    async def endpoint(
        case_id: UUID,
        body: BaseModel,
        response: Response,
        if_match: str | None,
        who: Principal,
        **path: str,
    ) -> CommandResult:
        # A body without path fields is the command itself; else the path completes it.
        full = route.command.model_validate({**body.model_dump(), **path}) if path else body
        assert isinstance(full, CaseCommand)
        return await command(case_id, full, if_match, who, response)

    keyword = inspect.Parameter.KEYWORD_ONLY
    # FastAPI reads a route's parameters from its endpoint's signature: this one is written
    # for each command, with its body model and its path's placeholders.
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("case_id", keyword, annotation=CaseId),
            *(inspect.Parameter(name, keyword, annotation=str) for name in from_path),
            inspect.Parameter("body", keyword, annotation=body_model),
            inspect.Parameter("response", keyword, annotation=Response),
            inspect.Parameter("if_match", keyword, annotation=IfMatch, default=None),
            inspect.Parameter("who", keyword, annotation=Principal, default=Depends(who_may)),
        ],
        return_annotation=CommandResult,
    )
    router.add_api_route(
        route.path,
        endpoint,
        methods=["POST"],
        name=route.command.command_name(),
        tags=["commands"],
        summary=route.summary,
        responses=_COMMAND,
        response_model=CommandResult,
    )


def _body_of(command: type[CaseCommand], from_path: tuple[str, ...]) -> type[BaseModel]:
    """The command's model less the fields the path fills, under the command's name."""
    if not from_path:
        return command
    fields: Any = {
        name: (field.annotation, field)
        for name, field in command.model_fields.items()
        if name not in from_path
    }
    return create_model(command.__name__, __config__=command.model_config, **fields)


def install_case_problems(app: FastAPI) -> None:
    """Answer a refused command with its problem: 404, 409 (with what is allowed) or 422."""

    @app.exception_handler(errors.CaseError)
    async def _refused(request: Request, exc: errors.CaseError) -> JSONResponse:
        status, title, extra, field_errors = _problem_of(exc)
        headers = {"ETag": etag(exc.actual)} if isinstance(exc, errors.StaleVersion) else None
        return problem_response(
            Problem(
                title=title,
                status=status,
                detail=str(exc),
                instance=request.url.path,
                errors=field_errors,
            ),
            headers=headers,
            **extra,
        )


def _problem_of(exc: errors.CaseError) -> tuple[int, str, dict[str, Any], list[FieldError]]:
    extra: dict[str, Any]
    match exc:
        case errors.CaseNotFound():
            return 404, "Case not found", {}, []
        case errors.BrokenRecord():
            verify = f"/v1/cases/{exc.case_id}/verify"
            return 500, "Broken case record", {"verify": verify}, []
        case errors.AnchorsUnreadable():
            return 503, "Chain anchors unreadable", {}, []
        case errors.StaleVersion():
            extra = {"expected_version": exc.expected, "current_version": exc.actual}
            return 409, "Stale version", extra, []
        case errors.IllegalTransition():
            extra = {
                "from_status": exc.from_status.value,
                "to_status": exc.to_status.value,
                "allowed": [status.value for status in exc.allowed],
            }
            return 409, "Illegal transition", extra, []
        case errors.CaseClosed():
            return 409, "Case closed", {"allowed": [CaseStatus.OPEN.value]}, []
        case errors.CaseConflict():
            return 409, "Conflict", {}, []
        case errors.InvalidField():
            return (
                422,
                "Unprocessable Content",
                {},
                [FieldError(field=exc.field, reason=exc.reason)],
            )
        case errors.UnknownReference():
            reason = f"not in this case: {', '.join(exc.ids)}"
            return 422, "Unprocessable Content", {}, [FieldError(field=exc.field, reason=reason)]
        case errors.MissingJustification():
            reason = "required unless gap_acknowledged is true"
            return (
                422,
                "Missing justification",
                {},
                [FieldError(field=missing, reason=reason) for missing in exc.missing],
            )
    return 422, "Unprocessable Content", {}, []
