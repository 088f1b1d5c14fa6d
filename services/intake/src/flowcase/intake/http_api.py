"""The HTTP adapter: the intake API under /v1 (errors as RFC 9457 problem details)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from flowcase.events.catalogue.base import within_years
from flowcase.events.catalogue.intake import Submission
from flowcase.events.catalogue.workflow import StepSummary
from flowcase.intake.rate_limit import RateLimiter, whole_seconds
from flowcase.intake.request_types import RequestTypes
from flowcase.intake.status import RequestState, RequestStatus, TimelineEntry
from flowcase.intake.status_service import StatusService
from flowcase.intake.submission_service import (
    DuplicateConflict,
    InvalidSubmission,
    SubmissionService,
    Unavailable,
)
from flowcase.runtime import FieldError, ProblemError
from flowcase.runtime.auth import AUTH_RESPONSES, Authenticator, Principal, Role, requires
from flowcase.runtime.problems import PROBLEM_JSON, PROBLEM_RESPONSES, invalid_fields

MAX_PAGE = 200
_REQUEST_ID = "0b5e6a0e-8f3c-4c1e-9a57-6d2f3c4b5a69"
_CASE_ID = "c2a9e1f0-4b3d-5e6f-8a7b-9c0d1e2f3a4b"

OPENAPI_TAGS = [
    {"name": "requests", "description": "Submit requests and follow each one to its outcome."},
    {
        "name": "request types",
        "description": "What can be submitted, as the workflow publishes it.",
    },
]


class SubmissionReceipt(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"request_id": _REQUEST_ID, "status_url": f"/v1/requests/{_REQUEST_ID}"}]
        }
    )

    request_id: UUID = Field(description="The id that follows the request through every service.")
    status_url: str = Field(description="Where the request's status and timeline are read.")


class TimelineItem(BaseModel):
    occurred_at: datetime
    event_type: str
    status: RequestStatus = Field(description="The request's status once this event applied.")
    summary: str
    event_id: UUID


class RequestSummary(BaseModel):
    request_id: UUID
    status: RequestStatus
    request_type: str | None = Field(description="Unknown only until intake's own event arrives.")
    requester: str | None
    priority: str | None
    channel: str | None = Field(description="`http` or `kafka`.")
    submission_id: str | None
    submitted_at: datetime | None
    case_id: UUID | None = Field(description="The case the request escalated to, if any.")
    status_url: str
    submitted_by: str | None = Field(
        description="Who submitted it: the token's subject over HTTP (a client or the requester)."
    )


_SUMMARY_EXAMPLE: dict[str, Any] = {
    "request_id": _REQUEST_ID,
    "status": "escalated",
    "request_type": "invoice_approval",
    "requester": "ap-clerk-7",
    "priority": "normal",
    "channel": "http",
    "submission_id": "crm-48213",
    "submitted_at": "2026-11-24T09:15:00Z",
    "case_id": _CASE_ID,
    "status_url": f"/v1/requests/{_REQUEST_ID}",
    "submitted_by": "crm-connector",
}


class RequestDetail(RequestSummary):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_SUMMARY_EXAMPLE,
                    "timeline": [
                        {
                            "occurred_at": "2026-11-24T09:15:00Z",
                            "event_type": "intake.RequestSubmitted",
                            "status": "submitted",
                            "summary": "submitted over http by ap-clerk-7",
                            "event_id": "3d1c6f0e-2a4b-5c6d-8e7f-9a0b1c2d3e4f",
                        },
                        {
                            "occurred_at": "2026-11-24T09:15:01Z",
                            "event_type": "workflow.InstanceStarted",
                            "status": "in_workflow",
                            "summary": "workflow invoice-approval v2 started",
                            "event_id": "4e2d7a1f-3b5c-5d6e-9f8a-0b1c2d3e4f5a",
                        },
                        {
                            "occurred_at": "2026-11-24T09:20:00Z",
                            "event_type": "case.CaseOpened",
                            "status": "escalated",
                            "summary": f"case {_CASE_ID} opened: Invoice over budget",
                            "event_id": "5f3e8b2a-4c6d-5e7f-8a9b-1c2d3e4f5a6b",
                        },
                    ],
                }
            ]
        }
    )

    timeline: list[TimelineItem] = Field(description="What happened to the request, oldest first.")


class RequestPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [_SUMMARY_EXAMPLE], "next_cursor": "djE6NDI"}]}
    )

    items: list[RequestSummary] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class RequestType(BaseModel):
    request_type: str
    process: str
    version: int
    title: str
    description: str
    request_schema: dict[str, Any] = Field(description="JSON Schema (2020-12) of the payload.")
    steps: list[StepSummary]


class RequestTypeList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "request_type": "invoice_approval",
                            "process": "invoice-approval",
                            "version": 2,
                            "title": "Invoice approval",
                            "description": "",
                            "request_schema": {
                                "type": "object",
                                "required": ["invoice_id", "amount"],
                                "properties": {
                                    "invoice_id": {"type": "string"},
                                    "amount": {"type": "number", "exclusiveMinimum": 0},
                                },
                            },
                            "steps": [{"name": "route-to-team", "kind": "route"}],
                        }
                    ]
                }
            ]
        }
    )

    items: list[RequestType]


def _inline_defs(schema: dict[str, Any]) -> dict[str, Any]:
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    result: dict[str, Any] = inline(schema)
    return result


def _problem(status: int, example: dict[str, Any]) -> dict[str, Any]:
    """The shared problem response of `status`, with an example of this endpoint's own."""
    return {**PROBLEM_RESPONSES[status], "content": {PROBLEM_JSON: {"example": example}}}


_UNAVAILABLE = _problem(
    503,
    {
        "type": "about:blank",
        "title": "Service Unavailable",
        "status": 503,
        "detail": "Kafka did not acknowledge the request within 5 s: the request is not "
        "accepted; retry it (with an Idempotency-Key, retrying is safe)",
        "instance": "/v1/requests",
    },
)
_NOT_FOUND = _problem(
    404,
    {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": f"no request {_REQUEST_ID}",
        "instance": f"/v1/requests/{_REQUEST_ID}",
    },
)
_INVALID_QUERY = _problem(
    422,
    {
        "type": "about:blank",
        "title": "Unprocessable Content",
        "status": 422,
        "detail": "1 field is invalid",
        "errors": [{"field": "cursor", "reason": "not a cursor this API issued"}],
    },
)


def _not_json(content_type: str | None) -> str | None:
    """Why a body of this Content-Type is not one intake reads, or None: JSON (RFC 8259) is
    UTF-8, so `application/json` or a `+json` type, with no charset or UTF-8."""
    needed = "the body must be JSON in UTF-8 (Content-Type: application/json)"
    if not content_type:
        return f"{needed}: no Content-Type was given"
    media_type, _, parameters = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return f"{needed}, not {media_type[:100] or 'an empty type'}"
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            return f"{needed}, not charset {charset[:40]}"
    return None


def _submission_body() -> dict[str, Any]:
    """The request body as documented; the route reads it itself, to judge it in one pass."""
    schema = _inline_defs(Submission.model_json_schema())
    # The model's examples, as its JSON schema carries them.
    example = schema["examples"][0]
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": schema,
                    "examples": {
                        "request": {"summary": "A request", "value": example},
                        "backfill": {
                            "summary": "A backfilled request, with its original time",
                            "value": {
                                "request_type": "password_reset",
                                "requester": "helpdesk",
                                "priority": "high",
                                "submitted_at": "2026-10-01T08:00:00Z",
                                "payload": {"account": "jdoe"},
                            },
                        },
                    },
                }
            },
        }
    }


def status_url(request_id: UUID) -> str:
    return f"/v1/requests/{request_id}"


def _summary_fields(state: RequestState) -> dict[str, Any]:
    return {
        "request_id": state.request_id,
        "status": state.status,
        "request_type": state.request_type,
        "requester": state.requester,
        "priority": state.priority,
        "channel": state.channel,
        "submission_id": state.submission_id,
        "submitted_at": state.submitted_at,
        "case_id": state.case_id,
        "status_url": status_url(state.request_id),
        "submitted_by": state.submitted_by,
    }


def _timeline_item(entry: TimelineEntry) -> TimelineItem:
    return TimelineItem(
        occurred_at=entry.occurred_at,
        event_type=entry.event_type,
        status=entry.status,
        summary=entry.summary,
        event_id=entry.event_id,
    )


MAX_POSITION = 2**63 - 1


def _utc_within_years(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return within_years(value if value.tzinfo is not None else value.replace(tzinfo=UTC))


def encode_cursor(before: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{before}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, _, position = text.partition(":")
        # A position is a bigint in the store: a longer one is no cursor this API issued.
        if version != "v1" or not position.isdigit() or int(position) > MAX_POSITION:
            raise ValueError(text)
        return int(position)
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise ProblemError(
            422,
            "Unprocessable Content",
            "1 field is invalid",
            errors=[FieldError(field="cursor", reason="not a cursor this API issued")],
        ) from exc


def _owner(who: Principal) -> str | None:
    """Whose requests the caller reads: their own (requested or submitted), or all (admin)."""
    return None if Role.ADMIN in who.roles else who.subject


def intake_router(
    *,
    submissions: SubmissionService,
    status: StatusService,
    request_types: RequestTypes,
    request_types_loaded: Callable[[], bool],
    retry_after_seconds: int,
    authenticator: Authenticator,
    rate_limiter: RateLimiter,
) -> APIRouter:
    """Requesters and clients submit and read their own requests; admins read all of them."""
    router = APIRouter(prefix="/v1", responses=AUTH_RESPONSES)
    retry_after = {"Retry-After": str(retry_after_seconds)}
    submitter = requires(authenticator, Role.REQUESTER, Role.CLIENT)

    async def rate_limited(who: Principal = Depends(submitter)) -> Principal:
        wait = rate_limiter.take(who.subject)
        if wait:
            raise ProblemError(
                429,
                "Too Many Requests",
                f"more than {rate_limiter.burst} submissions at once or "
                f"{rate_limiter.rate:g} per second from {who.subject}; retry later",
                headers={"Retry-After": str(whole_seconds(wait))},
            )
        return who

    @router.post(
        "/requests",
        tags=["requests"],
        status_code=202,
        summary="Submit a request",
        description=(
            "Judges the submission against its request type's published schema and answers "
            "202 only once Kafka has stored the `intake.RequestSubmitted` event (acks=all). "
            "Requesters submit as themselves (`requester` is the token's subject); clients "
            "submit on behalf of the requester they name, and are recorded as `submitted_by`. "
            "Each client has a rate limit: past it, 429 with Retry-After. "
            "With an `Idempotency-Key`, the same key and body (per requester) return the same "
            "request id and publish once, across restarts; the key with another body is a "
            "409. A `submission_id` already accepted (over HTTP or the raw topic) is the same "
            "request again."
        ),
        response_description="Accepted: the request is stored on `flowcase.intake.requests`.",
        responses={
            202: {
                "headers": {
                    "Location": {"description": "The status URL", "schema": {"type": "string"}},
                    "Idempotent-Replayed": {
                        "description": "`true` when an earlier identical submission answered",
                        "schema": {"type": "string"},
                    },
                }
            },
            409: _problem(
                409,
                {
                    "type": "about:blank",
                    "title": "Conflict",
                    "status": 409,
                    "detail": "the Idempotency-Key 'k-1' of ap-clerk-7 was used for a different "
                    f"submission (request {_REQUEST_ID})",
                    "instance": "/v1/requests",
                    "request_id": _REQUEST_ID,
                },
            ),
            413: _problem(
                413,
                {
                    "type": "about:blank",
                    "title": "Content Too Large",
                    "status": 413,
                    "detail": "the body exceeds the limit of 262144 bytes",
                    "instance": "/v1/requests",
                },
            ),
            415: _problem(
                415,
                {
                    "type": "about:blank",
                    "title": "Unsupported Media Type",
                    "status": 415,
                    "detail": "the body must be JSON in UTF-8 (Content-Type: application/json), "
                    "not text/plain",
                    "instance": "/v1/requests",
                },
            ),
            422: _problem(
                422,
                {
                    "type": "about:blank",
                    "title": "Unprocessable Content",
                    "status": 422,
                    "detail": "2 fields are invalid",
                    "instance": "/v1/requests",
                    "errors": [
                        {"field": "payload.amount", "reason": "'ten' is not of type 'number'"},
                        {"field": "payload.invoice_id", "reason": "Field required"},
                    ],
                },
            ),
            429: {
                **_problem(
                    429,
                    {
                        "type": "about:blank",
                        "title": "Too Many Requests",
                        "status": 429,
                        "detail": "more than 40 submissions at once or 20 per second from "
                        "crm-connector; retry later",
                        "instance": "/v1/requests",
                    },
                ),
                "headers": {"Retry-After": {"schema": {"type": "integer"}}},
            },
            503: {**_UNAVAILABLE, "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
        },
        openapi_extra=_submission_body(),
    )
    async def submit(
        request: Request,
        response: Response,
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                min_length=1,
                max_length=200,
                description="Makes retries safe: the same key and body are one request.",
            ),
        ] = None,
        who: Principal = Depends(rate_limited),
    ) -> SubmissionReceipt:
        if problem := _not_json(request.headers.get("content-type")):
            raise ProblemError(415, "Unsupported Media Type", problem)
        try:
            receipt = await submissions.submit(
                await request.body(),
                submitted_by=who.subject,
                as_requester=not who.has(Role.CLIENT),
                idempotency_key=idempotency_key,
            )
        except InvalidSubmission as exc:
            raise invalid_fields(
                [FieldError(field=r.field, reason=r.reason) for r in exc.reasons]
            ) from exc
        except DuplicateConflict as exc:
            raise ProblemError(409, "Conflict", exc.detail, request_id=str(exc.request_id)) from exc
        except Unavailable as exc:
            raise ProblemError(503, "Service Unavailable", exc.detail, headers=retry_after) from exc
        url = status_url(receipt.request_id)
        response.headers["Location"] = url
        if receipt.replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return SubmissionReceipt(request_id=receipt.request_id, status_url=url)

    @router.get(
        "/requests/{request_id}",
        tags=["requests"],
        summary="The status and timeline of one request",
        responses={404: _NOT_FOUND, 422: _INVALID_QUERY},
    )
    async def get_request(
        request_id: Annotated[UUID, Path(description="The id a submission returned.")],
        who: Principal = Depends(submitter),
    ) -> RequestDetail:
        found = await status.request(request_id)
        owner = _owner(who)
        # Another's request is not found, so ids cannot be probed.
        if found is None or (owner is not None and not found[0].belongs_to(owner)):
            raise ProblemError(404, "Not Found", f"no request {request_id}")
        state, timeline = found
        return RequestDetail(
            **_summary_fields(state), timeline=[_timeline_item(e) for e in timeline]
        )

    @router.get(
        "/requests",
        tags=["requests"],
        summary="Requests by status, type and submission time, newest first",
        description="The caller's own requests (requested or submitted by them); an admin's "
        "list holds every request.",
        responses={422: _INVALID_QUERY},
    )
    async def list_requests(
        status_filter: Annotated[
            RequestStatus | None, Query(alias="status", description="Only this status.")
        ] = None,
        request_type: Annotated[
            str | None, Query(alias="type", description="Only this request type.")
        ] = None,
        since: Annotated[
            datetime | None,
            AfterValidator(_utc_within_years),
            Query(description="Only requests submitted at or after this time (UTC if no zone)."),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size.")] = 50,
        cursor: Annotated[
            str | None, Query(description="The `next_cursor` of the previous page.")
        ] = None,
        who: Principal = Depends(submitter),
    ) -> RequestPage:
        page = await status.page(
            status=status_filter,
            request_type=request_type,
            since=since,
            before=decode_cursor(cursor) if cursor else None,
            limit=limit,
            owner=_owner(who),
        )
        return RequestPage(
            items=[RequestSummary(**_summary_fields(s)) for s in page.items],
            next_cursor=encode_cursor(page.next_before) if page.next_before else None,
        )

    @router.get(
        "/request-types",
        tags=["request types"],
        summary="The request types and their payload schemas, as currently published",
        description="Readable by every authenticated caller.",
        dependencies=[Depends(authenticator)],
        responses={
            503: _problem(
                503,
                {
                    "type": "about:blank",
                    "title": "Service Unavailable",
                    "status": 503,
                    "detail": "the request types are still loading",
                    "instance": "/v1/request-types",
                },
            )
        },
    )
    async def list_request_types() -> RequestTypeList:
        if not request_types_loaded():
            raise ProblemError(
                503,
                "Service Unavailable",
                "the request types are still loading",
                headers=retry_after,
            )
        return RequestTypeList(
            items=[
                RequestType(**t.definition.model_dump(include=set(RequestType.model_fields)))
                for t in request_types
            ]
        )

    return router
