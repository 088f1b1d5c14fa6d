"""W3C trace context in Kafka headers, so a consumer's work continues the producer's trace."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence

from opentelemetry import baggage, propagate, trace
from opentelemetry.context import Context, attach, detach
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.propagators.textmap import Getter, Setter

Headers = list[tuple[str, bytes]]

log = logging.getLogger(__name__)


class _HeaderGetter(Getter[Sequence[tuple[str, bytes]]]):
    def get(self, carrier: Sequence[tuple[str, bytes]], key: str) -> list[str] | None:
        values = [v.decode("latin-1") for k, v in carrier if k == key and v is not None]
        return values or None

    def keys(self, carrier: Sequence[tuple[str, bytes]]) -> list[str]:
        return [k for k, _ in carrier]


class _HeaderSetter(Setter[Headers]):
    def set(self, carrier: Headers, key: str, value: str) -> None:
        carrier[:] = [(k, v) for k, v in carrier if k != key]
        carrier.append((key, value.encode("latin-1")))


def inject_trace_context(headers: Headers, context: Context | None = None) -> Headers:
    """Add `traceparent`/`tracestate` of the current (or given) span context to the headers."""
    propagate.inject(headers, context=context, setter=_HeaderSetter())
    return headers


class _Refusals(logging.Filter):
    """Keeps the baggage propagator's complaints instead of logging them: it writes one line per
    unusable list-member, echoing each, so one hostile header became hundreds of log lines."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.messages.append(record.getMessage())
        return False


_BAGGAGE_LOG = logging.getLogger("opentelemetry.baggage.propagation")


def extract_trace_context(headers: Sequence[tuple[str, bytes]] | None) -> Context:
    """The context the headers carry. What the propagators refuse is logged once per call,
    bounded and escaped (a header is the sender's text)."""
    refusals = _Refusals()
    _BAGGAGE_LOG.addFilter(refusals)
    try:
        context = propagate.extract(headers or [], getter=_HeaderGetter())
    finally:
        _BAGGAGE_LOG.removeFilter(refusals)
    if refusals.messages:
        log.warning(
            "ignored %d unusable parts of a record's baggage header; the first: %s",
            len(refusals.messages),
            ascii(refusals.messages[0])[:200],
        )
    return context


# The request id rides in OpenTelemetry baggage: it crosses Kafka headers with the trace
# context (and the event store with the relay's stored context), and anything that logs inside
# a request's context finds it there without being handed it.
REQUEST_ID = "flowcase.request_id"


def with_request_id(request_id: object, context: Context | None = None) -> Context:
    return baggage.set_baggage(REQUEST_ID, str(request_id), context)


def current_request_id() -> str | None:
    value = baggage.get_baggage(REQUEST_ID)
    return str(value) if value else None


@contextlib.contextmanager
def request_scope(request_id: object | None) -> Iterator[None]:
    """Work for one request: its id in the current context and on the current span."""
    if not request_id:
        yield
        return
    trace.get_current_span().set_attribute(REQUEST_ID, str(request_id))
    token = attach(with_request_id(request_id))
    try:
        yield
    finally:
        detach(token)


@contextlib.contextmanager
def untraced() -> Iterator[None]:
    """No spans from the instrumented libraries (asyncpg, psycopg) inside: for background
    polling, where every query would be a trace of its own that tells nobody anything."""
    with suppress_instrumentation():
        yield
