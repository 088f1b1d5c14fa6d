"""The trace context of the work that stored an event, kept in the stored event itself.

The relay publishes an event later, in another task (or another process after a restart), so
the context of the consumer or HTTP request that caused it cannot travel on the call stack. The
mapper writes the W3C carrier (`traceparent`, `tracestate`, `baggage`) of the context current at
save time into the stored state under `TRACE_KEY`, in the same row and so in the same
transaction as the event; reading strips it again, so aggregates, projections and the case
audit chain see exactly the state they wrote, and the relay alone asks for it
(`to_traced_domain_event`) to make each `send` span a child of that context.

By default an event is stored under the context current when it is saved; `stored_under` names
a context per event instead (the workflow's step spans use it). Snapshots carry none.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from eventsourcing.domain import CanSnapshotAggregate, DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent
from opentelemetry import propagate, trace
from opentelemetry.context import Context

# A dotted key: no attribute of a domain event can be named like it.
TRACE_KEY = "flowcase.trace"

EventKey = tuple[Any, int]
"""An event's originator id and version."""

_contexts: ContextVar[Mapping[EventKey, Context] | None] = ContextVar(
    "flowcase_event_trace_contexts", default=None
)


@contextlib.contextmanager
def stored_under(contexts: Mapping[EventKey, Context]) -> Iterator[None]:
    """Store the named events under these contexts (the others under the current one)."""
    token = _contexts.set(contexts)
    try:
        yield
    finally:
        _contexts.reset(token)


def _carrier_of(domain_event: DomainEventProtocol[Any]) -> dict[str, str]:
    named = _contexts.get()
    context = None
    if named:
        context = named.get((domain_event.originator_id, domain_event.originator_version))
    if not trace.get_current_span(context).get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    return carrier


class TracingMapper(Mapper[Any]):
    def to_stored_event(self, domain_event: DomainEventProtocol[Any]) -> StoredEvent:
        if isinstance(domain_event, CanSnapshotAggregate):
            return super().to_stored_event(domain_event)
        carrier = _carrier_of(domain_event)
        if not carrier:
            return super().to_stored_event(domain_event)
        # A copy carries the context: the domain event the aggregate holds stays as it was.
        copy = object.__new__(type(domain_event))
        object.__setattr__(copy, "__dict__", {**vars(domain_event), TRACE_KEY: carrier})
        return super().to_stored_event(copy)

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[Any]:
        return self.to_traced_domain_event(stored_event)[0]

    def to_traced_domain_event(
        self, stored_event: StoredEvent
    ) -> tuple[DomainEventProtocol[Any], Context | None]:
        """The domain event and the context it was stored under (None for an event stored
        without one, such as those stored before this mapper existed)."""
        domain_event = super().to_domain_event(stored_event)
        carrier = vars(domain_event).pop(TRACE_KEY, None)
        return domain_event, propagate.extract(carrier) if carrier else None
