"""The JSON log line: trace and span ids of the current span, the request id of the context."""

from __future__ import annotations

import json
import logging
import sys

import httpx
from opentelemetry.sdk.trace import TracerProvider

from flowcase.events.tracing import request_scope
from flowcase.runtime import create_app
from flowcase.runtime.telemetry import JsonLogFormatter

# A provider of its own: real span ids, whatever the process-wide provider is.
tracer = TracerProvider().get_tracer("test")


def _line(message: str = "hello %s", *args: object, **extra: object) -> dict[str, str]:
    record = logging.LogRecord("flowcase.test", logging.WARNING, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return json.loads(JsonLogFormatter().format(record))


def test_a_line_outside_any_span_has_no_trace_fields() -> None:
    line = _line("hello %s", "world")
    assert line["message"] == "hello world"
    assert line["level"] == "warning"
    assert line["logger"] == "flowcase.test"
    assert line["time"].endswith("+00:00")
    assert {"trace_id", "span_id", "request_id"}.isdisjoint(line)


def test_a_line_inside_a_span_and_a_request_carries_all_three_ids() -> None:
    with tracer.start_as_current_span("work") as span, request_scope("r-42"):
        line = _line()
    context = span.get_span_context()
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")
    assert line["request_id"] == "r-42"
    assert span.attributes["flowcase.request_id"] == "r-42"  # type: ignore[attr-defined]


def test_an_explicit_request_id_wins_and_the_scope_ends_with_its_block() -> None:
    with request_scope("from-context"):
        assert _line(request_id="given")["request_id"] == "given"
    assert "request_id" not in _line()


def test_an_exception_is_one_field_of_the_same_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "flowcase.test",
            logging.ERROR,
            __file__,
            1,
            "failed",
            (),
            exc_info=sys.exc_info(),
        )
    line = json.loads(JsonLogFormatter().format(record))
    assert "ValueError: boom" in line["error"]


async def test_a_route_with_a_request_id_logs_in_that_requests_scope() -> None:
    app = create_app(title="t", description="d")
    seen: list[dict[str, str]] = []

    @app.get("/v1/requests/{request_id}")
    async def show(request_id: str) -> dict[str, str]:
        seen.append(_line())
        return {}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/v1/requests/abc-123")).status_code == 200
        assert (await c.get("/healthz")).status_code == 200
    assert seen[0]["request_id"] == "abc-123"
