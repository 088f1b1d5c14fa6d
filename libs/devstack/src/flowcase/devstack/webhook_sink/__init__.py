"""A local stand-in for the systems workflow actions call (identity provider, ERP, email, …).

The local stack routes every workflow connector here (`{sink}/hooks/{name}`), so routine requests
complete on one machine. It answers 200 to any call, once per idempotency key (a retried call gets
the first answer), and lists what it received at `GET /calls` for a developer to look at.
Run it as `python -m flowcase.devstack.webhook_sink` (port from FLOWCASE_HTTP_PORT).
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Header, Request

app = FastAPI(title="Flowcase webhook sink", description=__doc__)
_answers: dict[str, dict[str, Any]] = {}
_calls: deque[dict[str, Any]] = deque(maxlen=1000)


@app.post("/hooks/{connector}")
async def hook(
    connector: str, request: Request, idempotency_key: str | None = Header(default=None)
) -> dict[str, Any]:
    if idempotency_key and idempotency_key in _answers:
        return _answers[idempotency_key]
    answer = {
        "connector": connector,
        "accepted_at": datetime.now(UTC).isoformat(),
        "reference": f"{connector}-{len(_calls) + 1}",
    }
    _calls.append({**answer, "idempotency_key": idempotency_key, "body": await request.json()})
    if idempotency_key:
        _answers[idempotency_key] = answer
    return answer


@app.get("/calls")
async def calls() -> list[dict[str, Any]]:
    return list(_calls)


@app.get("/healthz")
@app.get("/readyz")
async def health() -> dict[str, str]:
    return {"status": "ok"}
