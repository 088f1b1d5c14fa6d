"""The FastAPI application every service starts from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from swagger_ui_bundle import swagger_ui_path

from flowcase.events.boundary import read_json, text_problem, unusable_values
from flowcase.runtime.health import ReadinessCheck, health_router
from flowcase.runtime.metrics import HttpMetrics, metrics_router
from flowcase.runtime.problems import (
    FieldError,
    Problem,
    document_problems_as_problem_json,
    install_problem_handlers,
    invalid_fields,
    problem_response,
)
from flowcase.runtime.telemetry import RequestIdFromPath

# Swagger UI's scripts and styles, served by the service itself rather than from a CDN, so the
# docs page works where the browser reaches nothing else (an air-gapped site, a laptop offline).
DOCS_ASSETS = "/docs/assets"


class BodyLimit:
    """413 for a body over the limit, judged by Content-Length or by reading at most limit+1.

    Pure ASGI (not BaseHTTPMiddleware): it sits on every request's path.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if declared.isdigit() and int(declared) > self.max_bytes:
                await self._refuse(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        # A chunked body: read it (stopping just past the limit) and replay it to the app.
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return dict(await receive())
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        response = problem_response(
            Problem(
                title="Content Too Large",
                status=413,
                detail=f"the body exceeds the limit of {self.max_bytes} bytes",
                instance=scope["path"],
            )
        )
        await response(scope, receive, send)


def create_app(
    *,
    title: str,
    description: str,
    version: str = "0.1.0",
    readiness: Sequence[ReadinessCheck] = (),
    lifespan: Any = None,
    max_body_bytes: int = 256 * 1024,
    openapi_tags: list[dict[str, Any]] | None = None,
) -> FastAPI:
    # FastAPI's own /docs and /redoc load their assets from a CDN; /docs is served below instead,
    # and ReDoc not at all (no package ships its bundle alone).
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        openapi_tags=openapi_tags,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(only_usable_parameters), Depends(only_usable_json)],
    )
    install_problem_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(HttpMetrics)
    app.add_middleware(RequestIdFromPath)
    app.include_router(health_router(readiness))
    app.include_router(metrics_router())
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics")
    document_problems_as_problem_json(app)
    serve_docs(app)
    return app


def _query_parameters(route: APIRoute) -> frozenset[str]:
    """The query parameters of the route and of every dependency it has (kept on the route: a
    route compares by value, so it cannot key a cache)."""
    known: frozenset[str] | None = getattr(route, "_flowcase_query_parameters", None)
    if known is not None:
        return known
    names: set[str] = set()
    dependants = [route.dependant]
    while dependants:
        dependant = dependants.pop()
        names.update(parameter.alias for parameter in dependant.query_params)
        dependants.extend(dependant.dependencies)
    known = frozenset(names)
    route._flowcase_query_parameters = known  # type: ignore[attr-defined]
    return known


async def only_usable_parameters(request: Request) -> None:
    """A query parameter the operation does not take is a 422 naming it: a misspelt filter
    (`?stauts=open`) would otherwise be ignored and answer with everything. So is a query or
    path parameter whose text no store takes (a NUL: PostgreSQL refuses it with a 500)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    errors = [
        FieldError(field=f"path.{name}", reason=problem)
        for name, value in request.path_params.items()
        if isinstance(value, str) and (problem := text_problem(value))
    ]
    if request.query_params:
        unknown = sorted(set(request.query_params) - _query_parameters(route))
        errors += [
            FieldError(field=f"query.{name[:100]}", reason="not a parameter of this operation")
            for name in unknown[:20]
        ]
        errors += [
            FieldError(field=f"query.{name[:100]}", reason=problem)
            for name, value in request.query_params.multi_items()
            if name not in unknown and (problem := text_problem(value))
        ][:20]
    if errors:
        raise invalid_fields(errors)


async def only_usable_json(request: Request) -> None:
    """A JSON body holding what no store or encoder downstream can take (NaN, a NUL, a lone
    surrogate, an absurd number or depth: `flowcase.events.boundary`) is a 422 naming each field,
    before a route stores it and fails there with a 500."""
    route = request.scope.get("route")
    # A route that reads its body itself (intake's submit) judges it by the same policy, once.
    if not isinstance(route, APIRoute) or not route.dependant.body_params:
        return
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        return
    body = await request.body()
    if not body:
        return
    try:
        document = read_json(body)
    except (ValueError, RecursionError):
        return  # not JSON at all: the route's own parsing answers that
    if unusable := unusable_values(document):
        raise invalid_fields(
            [FieldError(field=field or "body", reason=reason) for field, reason in unusable]
        )


def serve_docs(app: FastAPI) -> None:
    """Swagger UI at /docs, its assets under DOCS_ASSETS; like /openapi.json, without a token
    (an API's operations take theirs through Authorize)."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        # Behind a proxy that strips a path prefix, the page's links must carry it again.
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon-32x32.png",
            # Bearer tokens only: no OAuth2 flow to come back from.
            oauth2_redirect_url=None,
        )
