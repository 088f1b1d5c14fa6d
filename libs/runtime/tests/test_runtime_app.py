from __future__ import annotations

import asyncio
import os
import signal
import socket

import httpx
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from flowcase.runtime import HttpSettings, ProblemError, ReadinessCheck, create_app, serve


class Body(BaseModel):
    name: str
    amount: float


def _app(ready: bool = True):
    async def check() -> str | None:
        return None if ready else "broker unreachable"

    app = create_app(
        title="t", description="d", readiness=[ReadinessCheck("kafka", check)], max_body_bytes=100
    )

    @app.post("/things")
    async def make(body: Body) -> dict[str, str]:
        return {"name": body.name}

    @app.get("/search")
    async def search(status: str | None = None, limit: int = 10) -> dict[str, object]:
        return {"status": status, "limit": limit}

    @app.get("/conflict")
    async def conflict() -> None:
        raise ProblemError(409, "Conflict", "stale version", allowed=["open"])

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    return app


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t"
    )


async def test_invalid_input_is_a_problem_listing_every_field() -> None:
    async with _client(_app()) as client:
        response = await client.post("/things", json={"amount": "lots"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 422
    assert {e["field"] for e in body["errors"]} == {"name", "amount"}


async def test_a_query_parameter_the_operation_does_not_take_is_a_problem_naming_it() -> None:
    async with _client(_app()) as client:
        known = await client.get("/search", params={"status": "open", "limit": 5})
        misspelt = await client.get("/search", params={"stauts": "open", "limit": 5, "x": "1"})
    assert known.status_code == 200
    assert known.json() == {"status": "open", "limit": 5}
    assert misspelt.status_code == 422
    assert misspelt.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in misspelt.json()["errors"]] == ["query.stauts", "query.x"]


async def test_a_json_body_no_store_could_take_is_a_problem_naming_each_field() -> None:
    """NaN would be stored as invalid JSON, a NUL refused by PostgreSQL's text, a lone surrogate
    by UTF-8: each a 500 later, unless refused here."""
    body = b'{"name": "a\\u0000b", "amount": NaN, "extra": {"\\ud800": 1}}'
    async with _client(_app()) as client:
        refused = await client.post(
            "/things", content=body, headers={"Content-Type": "application/json"}
        )
        fine = await client.post("/things", json={"name": "a", "amount": 1.5})
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in refused.json()["errors"]] == ["name", "amount", "extra"]
    assert fine.status_code == 200


async def test_a_body_that_is_not_utf8_is_invalid_input_naming_the_body() -> None:
    """FastAPI answers 400 for a body it cannot even decode, a status the API does not
    document; it is invalid input like any other (found by the schemathesis run)."""
    async with _client(_app()) as client:
        response = await client.post(
            "/things", content=b'{"name": "\xff"}', headers={"content-type": "application/json"}
        )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert error["field"] == ""
    assert "UTF-8" in error["reason"]


async def test_a_body_over_the_limit_is_413_whether_declared_or_streamed() -> None:
    async with _client(_app()) as client:
        declared = await client.post(
            "/things", content=b"x" * 101, headers={"content-type": "application/json"}
        )

        async def chunks():
            for _ in range(5):
                yield b"x" * 30

        streamed = await client.post(
            "/things", content=chunks(), headers={"content-type": "application/json"}
        )
        small = await client.post("/things", json={"name": "a", "amount": 1})
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert small.status_code == 200


async def test_problem_error_carries_extra_members_and_unexpected_errors_hide_internals() -> None:
    async with _client(_app()) as client:
        conflict = await client.get("/conflict")
        boom = await client.get("/boom")
        missing = await client.get("/nowhere")
    assert conflict.status_code == 409
    assert conflict.json()["allowed"] == ["open"]
    assert boom.status_code == 500
    assert "secret" not in boom.text
    assert missing.status_code == 404
    assert missing.json()["title"] == "Not Found"


async def test_readiness_reports_the_failing_check() -> None:
    async with _client(_app(ready=False)) as client:
        live = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert live.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"kafka": "broker unreachable"}


class _Worker:
    def __init__(self) -> None:
        self.stopped = asyncio.Event()
        self.http_was_down_when_stopped: bool | None = None
        self.port = 0

    async def run(self) -> None:
        await self.stopped.wait()

    def stop(self) -> None:
        with socket.socket() as sock:
            self.http_was_down_when_stopped = sock.connect_ex(("127.0.0.1", self.port)) != 0
        self.stopped.set()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_sigterm_drains_http_then_stops_the_workers() -> None:
    worker = _Worker()
    worker.port = _free_port()
    task = asyncio.create_task(serve(_app(), HttpSettings(port=worker.port), [worker]))
    async with httpx.AsyncClient() as client:
        for _ in range(100):
            try:
                if (await client.get(f"http://127.0.0.1:{worker.port}/healthz")).status_code == 200:
                    break
            except httpx.HTTPError:
                await asyncio.sleep(0.05)
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(task, 30) == 0
    assert worker.http_was_down_when_stopped is True


async def test_a_failing_worker_stops_the_service_with_an_error() -> None:
    class Failing:
        async def run(self) -> None:
            raise RuntimeError("consumer lost")

        def stop(self) -> None:
            pass

    code = await asyncio.wait_for(serve(_app(), HttpSettings(port=_free_port()), [Failing()]), 30)
    assert code == 1


async def test_metrics_count_requests_by_route_template() -> None:
    async with _client(_app()) as client:
        for name in ("a", "b"):
            await client.post("/things", json={"name": name, "amount": 1})
        await client.get("/healthz")
        exposition = (await client.get("/metrics")).text
    assert 'flowcase_http_requests_total{method="POST",route="/things",status="200"}' in exposition
    assert 'route="/healthz"' not in exposition
    assert "flowcase_http_request_duration_seconds_bucket" in exposition


def test_problem_responses_are_documented_under_their_media_type() -> None:
    from flowcase.runtime.problems import PROBLEM_RESPONSES

    app = _app()

    @app.get("/documented", responses={409: PROBLEM_RESPONSES[409]})
    async def documented() -> None:
        return None

    responses = app.openapi()["paths"]["/documented"]["get"]["responses"]
    assert list(responses["409"]["content"]) == ["application/problem+json"]
    assert responses["409"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }


def test_problems_of_an_html_page_are_documented_as_problem_json() -> None:
    """FastAPI files a page's extra responses under the page's media type; the problems are
    sent as problem+json all the same (found by the schemathesis run of the dashboard)."""
    from flowcase.runtime.problems import PROBLEM_RESPONSES

    app = _app()

    @app.get("/page", response_class=HTMLResponse, responses={422: PROBLEM_RESPONSES[422]})
    async def page() -> HTMLResponse:
        return HTMLResponse("<p>hi</p>")

    responses = app.openapi()["paths"]["/page"]["get"]["responses"]
    assert list(responses["422"]["content"]) == ["application/problem+json"]
    assert list(responses["200"]["content"]) == ["text/html"]


def test_fastapis_own_validation_error_is_documented_as_the_problem_sent() -> None:
    """FastAPI documents a 422 of its own (`HTTPValidationError`, application/json) on every
    operation with input; the handlers send a problem (found by the schemathesis run)."""
    document = _app().openapi()
    responses = document["paths"]["/things"]["post"]["responses"]

    assert responses["422"]["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert {"Problem", "FieldError"} <= document["components"]["schemas"].keys()
