"""W3C trace context in Kafka headers, so a consumer's work continues the producer's trace."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter

Headers = list[tuple[str, bytes]]


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


def extract_trace_context(headers: Sequence[tuple[str, bytes]] | None) -> Context:
    return propagate.extract(headers or [], getter=_HeaderGetter())
