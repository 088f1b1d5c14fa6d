"""The FastAPI application every service starts from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request, Response
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from flowcase.runtime.health import ReadinessCheck, health_router
from flowcase.runtime.metrics import HttpMetrics, metrics_router
from flowcase.runtime.problems import Problem, install_problem_handlers, problem_response


class BodyLimit(BaseHTTPMiddleware):
    """413 for a body over the limit, judged by Content-Length or by reading at most limit+1."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        declared = request.headers.get("content-length")
        too_large = declared is not None and declared.isdigit() and int(declared) > self.max_bytes
        if not too_large and declared is None and request.method in ("POST", "PUT", "PATCH"):
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > self.max_bytes:
                    too_large = True
                    break
            if not too_large:
                request._body = body  # starlette reads the cached body downstream
        if too_large:
            return problem_response(
                Problem(
                    title="Content Too Large",
                    status=413,
                    detail=f"the body exceeds the limit of {self.max_bytes} bytes",
                    instance=request.url.path,
                )
            )
        return await call_next(request)


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
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        openapi_tags=openapi_tags,
    )
    install_problem_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(HttpMetrics)
    app.include_router(health_router(readiness))
    app.include_router(metrics_router())
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics")
    return app
