"""The case worker API: open cases, act on them, read them, audit them, search them.

Every command is based on the version of the case the caller read, either as the `If-Match`
header (the `ETag` a read or a command returned, e.g. `"4"`) or as the body's `expected_version`;
its actor is the token's subject. Agents and supervisors work the cases of their teams (an
unassigned case belongs to the triage team); assignments and overrides are supervisors'; admins
do everything. Another team's case is 404, as if it did not exist. Errors are RFC 9457 problem
details.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from flowcase.case import errors
from flowcase.case.application import Recorded
from flowcase.case.case_search import MAX_LIMIT, CaseSearch, Filters, InvalidCursor
from flowcase.case.case_service import CaseService
from flowcase.case.catalogue_mapping import to_catalogue
from flowcase.case.http_models import (
    AddNote,
    AddTask,
    ApplyOverride,
    Assign,
    AttachEvidence,
    AuditEntry,
    AuditView,
    CasePage,
    CaseSummary,
    CaseView,
    ChangeStatus,
    Claim,
    Command,
    CommandResult,
    CompleteTask,
    History,
    HistoryEntry,
    LogCommunication,
    OpenCase,
    RecordDecision,
    Resolve,
    SetMilestone,
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


def expected_version(if_match: str | None, body: Command) -> int:
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


def case_router(
    service: CaseService, search: CaseSearch, authenticator: Authenticator, *, triage_team: str
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
        who: Principal,
        response: Response,
        if_match: str | None,
        body: Command,
        method: Callable[..., Recorded],
        case_id: UUID,
        *args: Any,
        **kwargs: Any,
    ) -> CommandResult:
        version = expected_version(if_match, body)
        await visible(case_id, who)
        recorded = await service.call(
            method, case_id, *args, actor=who.subject, expected_version=version, **kwargs
        )
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
            Query(description="Cases with an open task due before this time."),
        ] = None,
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
            page = await search.search(filters, limit=limit, cursor=cursor)
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
        return CaseView.of(case)

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
        trail = await service.audit(case_id)
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
        return Verification.of(await service.verify(case_id))

    @router.post(
        "/{case_id}/assignments",
        tags=["commands"],
        summary="Assign the case to a team (and a person)",
        responses=_COMMAND,
    )
    async def assign(
        case_id: CaseId,
        body: Assign,
        response: Response,
        if_match: IfMatch = None,
        who: Principal = Depends(supervisor),
    ) -> CommandResult:
        return await command(
            who, response, if_match, body, app.assign, case_id, body.team, body.assignee
        )

    @router.post(
        "/{case_id}/claims",
        tags=["commands"],
        summary="Claim the case: the actor becomes its assignee",
        responses=_COMMAND,
    )
    async def claim(
        case_id: CaseId,
        body: Claim,
        response: Response,
        if_match: IfMatch = None,
        who: Principal = Depends(worker),
    ) -> CommandResult:
        return await command(who, response, if_match, body, app.claim, case_id)

    @router.post(
        "/{case_id}/notes", tags=["commands"], summary="Add a note (n-N)", responses=_COMMAND
    )
    async def add_note(
        case_id: CaseId,
        body: AddNote,
        response: Response,
        if_match: IfMatch = None,
        who: Principal = Depends(worker),
    ) -> CommandResult:
        return await command(who, response, if_match, body, app.add_note, case_id, body.text)

    @router.post(
        "/{case_id}/communications",
        tags=["commands"],
        summary="Log an inbound or outbound communication (m-N)",
        responses=_COMMAND,
    )
    async def log_communication(
        case_id: CaseId,
        body: LogCommunication,
        response: Response,
        if_match: IfMatch = None,
        who: Principal = Depends(worker),
    ) -> CommandResult:
        return await command(
            who,
            response,
            if_match,
            body,
            app.log_communication,
            case_id,
            body.direction,
            body.channel,
            body.parties,
            body.summary,
        )

    @router.post(
        "/{case_id}/evidence",
        tags=["commands"],
        summary="Attach evidence: a reference and its content's SHA-256 (e-N)",
        responses=_COMMAND,
    )
    async def attach_evidence(
        case_id: CaseId,
        body: AttachEvidence,
        response: Response,
        if_match: IfMatch = None,
        who: Principal = Depends(worker),
    ) -> CommandResult:
        return await command(
            who, response, if_match, body, app.attach_evidence, case_id, body.reference, body.sha256
        )

    @router.post(
        "/{case_id}/tasks",
        tags=["commands"],
        summary="Add an ad-hoc task (t-N)",
        responses=_COMMAND,
    )
    async def add_task(
        case_id: CaseId,
        body: AddTask,
        response: Response,
        if_match: IfMatch = None,
        who: Principal = Depends(worker),
    ) -> CommandResult:
        return await command(
            who, response, if_match, body, app.add_task, case_id, body.title, body.due_at
        )

    @router.post(
        "/{case_id}/tasks/{task_id}/completion",
        tags=["commands"],
        summary="Complete a task (once)",
        responses=_COMMAND,
    )
    async def complete_task(
        case_id: CaseId,
        task_id: str,
        body: CompleteTask,
        response: Response,
        if_match: IfMatch = None,
        who: Principal = Depends(worker),
    ) -> CommandResult:
        return await command(
            who, response, if_match, body, app.complete_task, case_id, task_id, body.result
        )

    @router.post(
        "/{case_id}/milestones", tags=["commands"], summary="Set a milestone", responses=_COMMAND
    )
    async def set_milestone(
        case_id: CaseId,
        body: SetMilestone,
        response: Response,
        if_match: IfMatch = None,
        who: Principal = Depends(worker),
    ) -> CommandResult:
        return await command(
            who, response, if_match, body, app.set_milestone, case_id, body.milestone
        )

    @router.post(
        "/{case_id}/status-changes",
        tags=["commands"],
        summary="Move the case along its lifecycle (409 lists the allowed statuses)",
        responses=_COMMAND,
    )
    async def change_status(
        case_id: CaseId,
        body: ChangeStatus,
        response: Response,
        if_match: IfMatch = None,
        who: Principal = Depends(worker),
    ) -> CommandResult:
        return await command(
            who, response, if_match, body, app.change_status, case_id, body.to_status
        )

    @router.post(
        "/{case_id}/decisions",
        tags=["commands"],
        summary="Record a decision with its rationale and what it relied on (d-N)",
        responses=_COMMAND,
    )
    async def record_decision(
        case_id: CaseId,
        body: RecordDecision,
        response: Response,
        if_match: IfMatch = None,
        who: Principal = Depends(worker),
    ) -> CommandResult:
        return await command(
            who,
            response,
            if_match,
            body,
            app.record_decision,
            case_id,
            body.decision,
            body.rationale,
            body.relied_on,
            gap_acknowledged=body.gap_acknowledged,
        )

    @router.post(
        "/{case_id}/overrides",
        tags=["commands"],
        summary="Apply a manual override with its rationale and what it relied on (o-N)",
        responses=_COMMAND,
    )
    async def apply_override(
        case_id: CaseId,
        body: ApplyOverride,
        response: Response,
        if_match: IfMatch = None,
        who: Principal = Depends(supervisor),
    ) -> CommandResult:
        return await command(
            who,
            response,
            if_match,
            body,
            app.apply_override,
            case_id,
            body.target,
            body.rationale,
            body.relied_on,
            gap_acknowledged=body.gap_acknowledged,
        )

    @router.post(
        "/{case_id}/resolution",
        tags=["commands"],
        summary="Resolve the case with an outcome code; the workflow closes the request",
        responses=_COMMAND,
    )
    async def resolve(
        case_id: CaseId,
        body: Resolve,
        response: Response,
        if_match: IfMatch = None,
        who: Principal = Depends(worker),
    ) -> CommandResult:
        return await command(
            who,
            response,
            if_match,
            body,
            app.resolve,
            case_id,
            body.outcome_code,
            body.rationale,
            body.relied_on,
            gap_acknowledged=body.gap_acknowledged,
        )

    return router


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
