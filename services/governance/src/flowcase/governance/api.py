"""The HTTP adapter: the metrics API and the dashboard (`/metrics` is the runtime's).

Ops leaders (and admins) read everything here. The API takes a bearer token; the dashboard, a page
people open in a browser, also takes it once as `?token=…`, which it moves into an HttpOnly,
SameSite=Strict cookie before redirecting to the same page without it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from flowcase.events.catalogue.base import BoundedDatetime
from flowcase.governance.alerts import AlertPolicy, alerts
from flowcase.governance.api_models import (
    AlertEntry,
    AlertList,
    ProcessDetail,
    ProcessList,
    ProcessSummary,
    Window,
)
from flowcase.governance.dashboard import (
    render,
    render_not_found,
    render_process,
    render_sign_in,
)
from flowcase.governance.reports import DEFAULT_WINDOWS, MAX_WINDOWS, Reports, Span, SpanError
from flowcase.governance.windows import Granularity
from flowcase.runtime import FieldError, ProblemError
from flowcase.runtime.auth import AUTH_RESPONSES, Authenticator, Role, requires
from flowcase.runtime.problems import PROBLEM_RESPONSES

# The cookie the dashboard keeps its token in.
TOKEN_COOKIE = "flowcase_token"

TAGS = [
    {"name": "metrics", "description": "Governance figures per process type and window."},
    {"name": "dashboard", "description": "The ops leaders' page."},
]


_HTML: dict[str, Any] = {"text/html": {}}
# What a page answers a browser: the page, its first visit's redirect, and when it is refused, a
# page saying why (not the APIs' problem JSON).
_PAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    303: {"description": "The token is now in the cookie"},
    401: {"description": "No valid token: how to sign in", "content": _HTML},
    403: {"description": "The token lacks the ops_leader role", "content": _HTML},
}

# A page's first visit carries the token in its address; the page moves it into a cookie.
PageToken = Annotated[
    str | None, Query(description="A bearer token, moved into a cookie (first visit).")
]


def _token_into_cookie(request: Request, token: str) -> Response:
    """The same page again without the token in its address, the token in a cookie."""
    query = request.url.remove_query_params("token").query
    moved = RedirectResponse(f"{request.url.path}?{query}" if query else request.url.path, 303)
    moved.set_cookie(
        TOKEN_COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
    return moved


def api_router(
    reports: Reports, authenticator: Authenticator, alert_policy: AlertPolicy | None = None
) -> APIRouter:
    router = APIRouter(responses=AUTH_RESPONSES)
    reader = [Depends(requires(authenticator, Role.OPS_LEADER))]
    # The dashboard: the same role, its token from the header or the cookie.
    browser = Authenticator(authenticator.settings, cookie=TOKEN_COOKIE)
    viewer = requires(browser, Role.OPS_LEADER)
    alert_policy = alert_policy or AlertPolicy()
    min_volume = reports.policies.advisor.min_volume

    def span_query(
        granularity: Annotated[
            Granularity, Query(description="Window length: hour, day or week (UTC).")
        ] = Granularity.DAY,
        since: Annotated[
            BoundedDatetime | None,
            Query(
                description="Start of the period (its window included), with a time zone. "
                "Default: `windows` windows back from `until`.",
                examples=["2026-11-01T00:00:00Z"],
            ),
        ] = None,
        until: Annotated[
            BoundedDatetime | None,
            Query(description="End of the period (exclusive), with a time zone. Default: now."),
        ] = None,
        windows: Annotated[
            int,
            Query(ge=1, le=MAX_WINDOWS, description="How many windows, when `since` is not set."),
        ] = DEFAULT_WINDOWS,
    ) -> Span:
        try:
            return reports.span(granularity, since=since, until=until, count=windows)
        except SpanError as exc:
            raise ProblemError(
                422,
                "Unprocessable Content",
                exc.reason,
                # Named as the runtime names query fields in validation errors.
                errors=[FieldError(field=f"query.{exc.field}", reason=exc.reason)],
            ) from exc

    @router.get(
        "/v1/processes",
        tags=["metrics"],
        summary="Every process type: headline figures and the recommendation",
        response_model=ProcessList,
        responses={422: PROBLEM_RESPONSES[422]},
        dependencies=reader,
    )
    async def list_processes(span: Span = Depends(span_query)) -> ProcessList:
        """One row per process type over the period (default: the last 7 days by day), with
        the recommendation, the reason and the figures behind it."""
        return ProcessList(processes=[ProcessSummary.of(r) for r in await reports.overview(span)])

    @router.get(
        "/v1/processes/{process_type}",
        tags=["metrics"],
        summary="One process type: time series, steps, rule overrides, audit gaps, drift",
        response_model=ProcessDetail,
        responses={404: PROBLEM_RESPONSES[404], 422: PROBLEM_RESPONSES[422]},
        dependencies=reader,
    )
    async def get_process(
        process_type: Annotated[str, Path(examples=["invoice-approval"])],
        span: Span = Depends(span_query),
    ) -> ProcessDetail:
        report = await reports.process(process_type, span)
        if report is None:
            raise ProblemError(
                404, "Not Found", f"no event names the process type {process_type!r}"
            )
        return ProcessDetail.of(report)

    @router.get(
        "/v1/alerts",
        tags=["metrics"],
        summary="Drift, exception rate over 20%, bottleneck steps and audit-trail gaps",
        response_model=AlertList,
        responses={422: PROBLEM_RESPONSES[422]},
        dependencies=reader,
    )
    async def list_alerts(span: Span = Depends(span_query)) -> AlertList:
        found = [
            AlertEntry.of(a)
            for report in await reports.overview(span)
            for a in alerts(report, min_volume, alert_policy)
        ]
        period = span.period
        return AlertList(
            period=Window(start=period.start, end=period.end),
            granularity=span.granularity,
            alerts=found,
        )

    @router.get(
        "/",
        tags=["dashboard"],
        summary="The dashboard for ops leaders",
        description="Open it once as `/?token=<bearer token>`: the token moves into an "
        "HttpOnly cookie and the page reloads without it in the address.",
        response_class=HTMLResponse,
        responses={**_PAGE_RESPONSES, 422: PROBLEM_RESPONSES[422]},
    )
    async def dashboard(
        request: Request,
        token: PageToken = None,
        span: Span = Depends(span_query),
    ) -> Response:
        if (instead := await entered(request, token)) is not None:
            return instead
        overview = await reports.overview(span)
        found = [a for r in overview for a in alerts(r, min_volume, alert_policy)]
        return HTMLResponse(
            render(overview, found, span, threshold=reports.policies.advisor.threshold)
        )

    @router.get(
        "/processes/{process_type}",
        tags=["dashboard"],
        summary="The page of one process type, linked from the dashboard",
        description="Its figures and recommendation, charts, steps, overrides by rule and "
        "version, audit gaps, drift with the windows used, and its cases. Signed in as the "
        "dashboard is (the cookie, or `?token=` once).",
        response_class=HTMLResponse,
        responses={
            **_PAGE_RESPONSES,
            404: {"description": "No event names the process type", "content": _HTML},
            422: PROBLEM_RESPONSES[422],
        },
    )
    async def process_page(
        request: Request,
        process_type: Annotated[str, Path(max_length=200)],
        token: PageToken = None,
        span: Span = Depends(span_query),
    ) -> Response:
        if (instead := await entered(request, token)) is not None:
            return instead
        found = await reports.process_page(process_type, span)
        if found is None:
            return HTMLResponse(render_not_found(process_type), status_code=404)
        report, cases = found
        return HTMLResponse(
            render_process(
                report,
                cases,
                alerts(report, min_volume, alert_policy),
                threshold=reports.policies.advisor.threshold,
            )
        )

    async def entered(request: Request, token: str | None) -> Response | None:
        """None when the page may be shown now; else what answers instead: the sign-in page,
        or the redirect that moves a first visit's token into the cookie."""
        if refused := await signed_in(request, token):
            return refused
        if token is not None:
            return _token_into_cookie(request, token)
        return None

    async def signed_in(request: Request, token: str | None) -> Response | None:
        """None when the caller may read the pages (its token from the query or the cookie);
        else the page that says why not and what to do."""
        try:
            if token is not None:
                await viewer(browser.authenticate(token))
            else:
                await viewer(await browser(request))
        except ProblemError as refused:
            if refused.problem.status not in (401, 403):
                raise
            # A person reads this, not a client: a page saying what to do, not a problem JSON.
            page = HTMLResponse(
                render_sign_in(refused.problem.status, refused.problem.detail or ""),
                status_code=refused.problem.status,
                headers=refused.headers,
            )
            page.delete_cookie(TOKEN_COOKIE)
            return page
        return None

    return router
