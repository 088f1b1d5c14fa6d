"""The JSON log line: trace and span ids of the current span, the request id of the context."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider

from flowcase.events.tracing import request_scope
from flowcase.runtime import create_app
from flowcase.runtime.telemetry import JsonLogFormatter, RepeatedClientErrors

# A provider of its own: real span ids, whatever the process-wide provider is.
tracer = TracerProvider().get_tracer("test")


def _line(message: str = "hello %s", *args: object, **extra: object) -> dict[str, str]:
    record = logging.LogRecord("flowcase.test", logging.WARNING, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return json.loads(JsonLogFormatter().format(record))


def test_a_broker_outage_logs_a_few_lines_a_minute_with_the_count_of_the_rest() -> None:
    now = [0.0]
    repeated = RepeatedClientErrors(window=30.0, clock=lambda: now[0])

    def logged(name: str, msg: str, *args: object) -> logging.LogRecord | None:
        record = logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)
        return record if repeated.filter(record) else None

    refused = "Unable connect to node with id %s: %s"
    kept = []
    for tick in range(600):  # 60 s of a reconnect every 100 ms, from two clients' loggers
        now[0] = tick / 10
        kept += [logged("aiokafka", refused, 1, "refused"), logged("aiokafka.conn", refused, 1, "")]
        assert logged("flowcase.intake", "a line of our own") is not None
    lines = [json.loads(JsonLogFormatter().format(r)) for r in kept if r is not None]

    assert [line.get("left_out", 0) for line in lines] == [0, 0, 299, 299]
    assert lines[2]["message"] == "Unable connect to node with id 1: refused"


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


# A service as `run_service` sets it up (logs, then traces), with one route that logs and answers
# with the trace context a message it published would carry in its Kafka headers.
_SERVICE = """
import asyncio, json, logging
import httpx
from flowcase.events.tracing import inject_trace_context
from flowcase.runtime import create_app
from flowcase.runtime.telemetry import configure_logging, configure_tracing

configure_logging()
configure_tracing("flowcase-test")
app = create_app(title="t", description="d")

@app.post("/v1/requests")
async def submit() -> dict[str, str]:
    logging.getLogger("flowcase.test").info("accepted")
    return {key: value.decode() for key, value in inject_trace_context([])}

async def main() -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        print(json.dumps({"headers": (await c.post("/v1/requests")).json()}))

asyncio.run(main())
"""


def test_without_an_exporter_a_requests_log_line_carries_the_trace_id_it_propagates() -> None:
    # A process of its own: the tracer provider is set once per process, as in a service.
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", _SERVICE], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    (logged,) = [line for line in lines if line.get("message") == "accepted"]
    (answer,) = [line for line in lines if "headers" in line]
    assert logged.get("trace_id"), f"no trace id on {logged}"
    _, trace_id, span_id, _ = answer["headers"]["traceparent"].split("-")
    assert (logged["trace_id"], logged["span_id"]) == (trace_id, span_id)


_INSTRUMENTED = """
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from flowcase.runtime.telemetry import configure_tracing

configure_tracing("flowcase-test")
print(
    AsyncPGInstrumentor().is_instrumented_by_opentelemetry,
    PsycopgInstrumentor().is_instrumented_by_opentelemetry,
)
"""


@pytest.mark.parametrize(
    ("otel", "instrumented"),
    [({}, "False False"), ({"OTEL_TRACES_EXPORTER": "console"}, "True True")],
)
def test_sql_statements_make_spans_only_where_spans_are_read(
    otel: dict[str, str], instrumented: str
) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", _INSTRUMENTED],
        env={**env, **otel},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == instrumented
