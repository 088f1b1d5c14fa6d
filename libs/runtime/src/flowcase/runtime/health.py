"""Liveness (`/healthz`: the process answers) and readiness (`/readyz`: its dependencies do)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.responses import JSONResponse


@dataclass(frozen=True)
class ReadinessCheck:
    """A named check; it returns None when ready, or the reason it is not."""

    name: str
    check: Callable[[], Awaitable[str | None]]


def health_router(checks: Sequence[ReadinessCheck], *, timeout: float = 3.0) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness: the process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: Kafka, PostgreSQL and the service's own prerequisites answer",
        responses={503: {"description": "Not ready; `checks` says which dependency and why"}},
    )
    async def readyz() -> JSONResponse:
        async def run(check: ReadinessCheck) -> str | None:
            try:
                return await asyncio.wait_for(check.check(), timeout)
            except Exception as exc:
                return f"{type(exc).__name__}: {exc}"

        results = await asyncio.gather(*(run(c) for c in checks))
        report = {c.name: (problem or "ok") for c, problem in zip(checks, results, strict=True)}
        ready = all(problem is None for problem in results)
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": report},
            status_code=200 if ready else 503,
        )

    return router
