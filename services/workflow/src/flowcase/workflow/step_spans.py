"""Spans of the steps an instance ran for one trigger, and the context each turn is stored under.

The engine decides in memory and the aggregate records the turn; the span of a step covers
saving what it decided and carries the request id, process type, step and kind. A turn is
stored (`flowcase.eventstore.trace_context`) under the span of the last step it entered or
completed, where the instance now waits, escalated or ended, so the relay's `send` span of, say,
`workflow.EscalatedToCase` hangs below the step that escalated. A turn of no step (a request
rejected as it starts) is stored under the trigger's own context: the consumer's `process` span
of the message or the HTTP request's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.util.types import AttributeValue

from flowcase.eventstore.trace_context import EventKey, stored_under
from flowcase.workflow.instance import WorkflowInstance

_tracer = trace.get_tracer("flowcase.workflow")


Traced = tuple[WorkflowInstance, Context | None]
"""An instance and the context of the trigger it handled (None: the current context)."""


@contextlib.contextmanager
def step_spans(traced: Sequence[Traced]) -> Iterator[None]:
    """Open a span per step among each instance's pending events while they are saved; the steps
    of an instance are children of its trigger's context, so instances saved together in one
    transaction (a batch of consumed messages) each keep their own request's trace."""
    spans: list[trace.Span] = []
    contexts: dict[EventKey, Context] = {}
    for instance, parent in traced:
        contexts.update(_open_steps(instance, parent, spans))
    try:
        with stored_under(contexts):
            yield
    except BaseException as exc:
        for span in spans:
            span.record_exception(exc)
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)))
        raise
    finally:
        for span in spans:
            span.end()


def _open_steps(
    instance: WorkflowInstance, parent: Context | None, spans: list[trace.Span]
) -> dict[EventKey, Context]:
    state = instance.state
    common: dict[str, AttributeValue] = {
        "flowcase.request_id": str(instance.request_id),
        "flowcase.process_type": state.request_type,
        "flowcase.process": state.process,
        "flowcase.definition_version": state.definition_version,
    }
    contexts: dict[EventKey, Context] = {}
    for pending in instance.pending_events:
        step: str | None = None
        context = parent
        for stored in getattr(pending, "events", ()):
            fact: dict[str, Any] = stored["payload"]
            if not fact.get("step"):
                continue
            if fact["step"] != step:
                step = fact["step"]
                attributes: dict[str, AttributeValue] = {**common, "flowcase.step": step}
                if fact.get("kind"):
                    attributes["flowcase.step.kind"] = fact["kind"]
                span = _tracer.start_span(
                    f"workflow step {step}", context=parent, attributes=attributes
                )
                spans.append(span)
                context = trace.set_span_in_context(span, parent)
            if outcome := fact.get("outcome"):
                spans[-1].set_attribute("flowcase.step.outcome", outcome)
            if fact.get("reason_code"):
                spans[-1].set_attribute("flowcase.escalation.reason_code", fact["reason_code"])
        if context is not None:
            contexts[(pending.originator_id, pending.originator_version)] = context
    return contexts
