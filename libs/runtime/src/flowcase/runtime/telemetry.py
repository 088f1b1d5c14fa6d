"""Traces and logs, configured only by the standard OTEL_* environment variables.

With nothing configured, no spans leave the process, but every span still has real trace and
span ids, which the log lines and the Kafka headers carry. `OTEL_TRACES_EXPORTER=console` prints
spans; an `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_TRACES_EXPORTER=otlp`) sends them over OTLP,
with the protocol, sampler and resource attributes the OTel SDK reads from its own variables.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from starlette.routing import Match

from flowcase.events.tracing import current_request_id, request_scope


def _exporter() -> SpanExporter | None:
    choice = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if choice == "console":
        return ConsoleSpanExporter()
    if choice == "otlp" or (choice == "" and os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")):
        protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
        )
        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
                OTLPSpanExporter,
            )
        return OTLPSpanExporter()
    return None


def configure_tracing(service_name: str) -> None:
    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; the name is a fallback.
    resource = Resource.create({"service.name": service_name}).merge(Resource.create())
    # The SDK's provider even when no span is exported: the API's no-op tracer gives a request
    # no trace id, so its log lines could not be found by one, nor its messages carry one.
    exporter = _exporter()
    # With no exporter nothing reads a recorded span: unless a sampler is chosen, a new trace is
    # not sampled, so its spans cost little more than the no-op tracer's and still have their
    # ids (a trace an exporting service sampled upstream stays sampled on its way on).
    unread = exporter is None and "OTEL_TRACES_SAMPLER" not in os.environ
    if not unread:
        # Database spans join the request's trace when spans leave the process. Unread, they
        # would be a wrapper around every statement (a tenth of the workflow's CPU in a drain)
        # that no trace ever shows: the context a message carries comes from the spans around.
        AsyncPGInstrumentor().instrument()
        # psycopg is the event store's driver: only the event-sourced services install it.
        if importlib.util.find_spec("psycopg") is not None:
            from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

            PsycopgInstrumentor().instrument()
    provider = TracerProvider(
        resource=resource, sampler=ParentBased(ALWAYS_OFF) if unread else None
    )
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, with the current trace and span ids and the request id (given
    as `extra`, or else the one of the request whose context is current)."""

    def format(self, record: logging.LogRecord) -> str:
        context = trace.get_current_span().get_span_context()
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if context.is_valid:
            line["trace_id"] = format(context.trace_id, "032x")
            line["span_id"] = format(context.span_id, "016x")
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            line["request_id"] = str(request_id)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        if left_out := getattr(record, "left_out", 0):
            line["left_out"] = left_out
        return json.dumps(line)


class RepeatedClientErrors(logging.Filter):
    """While a broker is away, aiokafka logs every reconnect attempt and metadata retry as an
    ERROR: about 40 lines a second for one consumer and one producer, hundreds for a service with
    several (measured). The first line of a kind (logger and message template) in each `window`
    of seconds is logged; the rest of that window are counted, and the next line logged carries
    the count (`left_out`), so an outage reads as a few lines a minute, not a flood."""

    def __init__(self, window: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._window = window
        self._clock = clock
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka"):
            return True
        key = (record.name, str(record.msg))
        now = self._clock()
        logged_at, left_out = self._seen.get(key, (None, 0))
        if logged_at is not None and now - logged_at < self._window:
            self._seen[key] = (logged_at, left_out + 1)
            return False
        self._seen[key] = (now, 0)
        record.left_out = left_out
        return True


def configure_logging(level: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonLogFormatter())
    handler.addFilter(RepeatedClientErrors())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("FLOWCASE_LOG_LEVEL", "INFO").upper())
    # aiokafka reports each routine coordinator retry during start-up as a warning.
    logging.getLogger("aiokafka").setLevel(max(root.level, logging.ERROR))


class RequestIdFromPath:
    """ASGI middleware: a request to a route with a `{request_id}` path parameter runs in that
    request's scope (`request_scope`), so its logs and server span name the journey."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        request_id = _path_request_id(scope) if scope["type"] == "http" else None
        with request_scope(request_id):
            await self.app(scope, receive, send)


def _path_request_id(scope: dict[str, Any]) -> str | None:
    for route in scope["app"].router.routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            value = child.get("path_params", {}).get("request_id")
            return str(value) if value else None
    return None
