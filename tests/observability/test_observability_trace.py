"""One request, one trace: intake → workflow → case → governance, through Kafka and both relays."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from rich.console import Console

from flowcase.events.topics import Topic
from flowcase.runtime.trace_cli import journey_of, render

MESSAGING = (
    "messaging.system",
    "messaging.operation.type",
    "messaging.destination.name",
    "messaging.destination.partition.id",
    "messaging.consumer.group.name",
)


def _find(spans: list[ReadableSpan], name: str, **attributes: Any) -> ReadableSpan:
    found = [
        s
        for s in spans
        if s.name == name and all((s.attributes or {}).get(k) == v for k, v in attributes.items())
    ]
    assert found, f"no span {name} with {attributes}: {sorted({s.name for s in spans})}"
    return found[0]


def _types_sent(span: ReadableSpan) -> list[str]:
    attributes = span.attributes or {}
    carried = attributes.get("flowcase.event_types", ())
    return [str(attributes.get("flowcase.event_type"))] + [
        str(t) for t in (carried if isinstance(carried, tuple) else ())
    ]


def _parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent else None


def _ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    chain = []
    while span.parent is not None:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain


async def test_an_escalated_request_is_one_trace_from_intake_to_governance(
    platform: Any, spans: InMemorySpanExporter, until: Callable[..., Awaitable[Any]]
) -> None:
    request_id = await platform.submit(
        "access_complaint", {"system": "erp", "complaint": "I can see payroll"}
    )
    case_events = platform.topic(Topic.CASE_EVENTS)

    def governance_saw_the_case() -> list[ReadableSpan]:
        return [
            s
            for s in spans.get_finished_spans()
            if s.name == f"process {case_events}"
            and (s.attributes or {}).get("messaging.consumer.group.name") == "governance"
        ]

    async def probe() -> list[ReadableSpan]:
        return governance_saw_the_case()

    await until(probe, bool)
    finished = list(spans.get_finished_spans())
    by_id = {s.context.span_id: s for s in finished}

    server = _find(finished, "POST /v1/requests", **{"http.route": "/v1/requests"})
    assert server.kind is SpanKind.SERVER
    trace_id = server.context.trace_id
    mine = [s for s in finished if s.context.trace_id == trace_id]

    requests_topic = platform.topic(Topic.INTAKE_REQUESTS)
    workflow_events = platform.topic(Topic.WORKFLOW_EVENTS)
    submitted = _find(mine, f"send {requests_topic}")
    workflow = _find(
        mine, f"process {requests_topic}", **{"messaging.consumer.group.name": "workflow"}
    )
    step = _find(mine, "workflow step open-investigation")
    # The escalation travels in the message of the turn that escalated (alone, or with the
    # turn's other events in a workflow.InstanceAdvanced).
    [escalated] = [
        s
        for s in mine
        if s.name == f"send {workflow_events}" and "workflow.EscalatedToCase" in _types_sent(s)
    ]
    opened = _find(mine, "case open_from_escalation")
    assert opened.parent is not None
    case = by_id[opened.parent.span_id]  # the case consumer's span of the escalation's message
    assert case.name == f"process {workflow_events}"
    assert (case.attributes or {})["messaging.consumer.group.name"] == "case"
    case_opened = _find(mine, f"send {case_events}", **{"flowcase.event_type": "case.CaseOpened"})
    governance = [s for s in governance_saw_the_case() if s.context.trace_id == trace_id]
    assert governance, "governance's process span is not in the request's trace"

    # The parent/child chain, each hop the direct child of the one before.
    assert submitted.kind is SpanKind.PRODUCER
    assert server in _ancestors(submitted, by_id)
    assert _parent_of(workflow) == submitted.context.span_id
    assert _parent_of(step) == workflow.context.span_id
    assert _parent_of(escalated) == step.context.span_id
    assert _parent_of(case) == escalated.context.span_id
    assert _parent_of(case_opened) == opened.context.span_id
    governance = [
        s for s in governance if s.parent and s.parent.span_id == case_opened.context.span_id
    ]
    assert governance, "governance's process span is not the child of the CaseOpened send"
    assert any(link.context.span_id == case_opened.context.span_id for link in governance[0].links)

    # Semantic-convention attributes on every Kafka hop, and the journey's own on the work.
    for consumer in (workflow, case, governance[0]):
        assert consumer.kind is SpanKind.CONSUMER
        assert all(key in (consumer.attributes or {}) for key in MESSAGING), consumer.attributes
        assert (consumer.attributes or {})["messaging.system"] == "kafka"
    for producer in (submitted, escalated, case_opened):
        attributes = producer.attributes or {}
        assert attributes["messaging.system"] == "kafka"
        assert attributes["messaging.operation.type"] == "send"
        assert "messaging.kafka.offset" in attributes
        assert attributes["flowcase.request_id"] == request_id
    assert (workflow.attributes or {})["messaging.kafka.message.key"] == request_id
    assert (workflow.attributes or {})["flowcase.request_id"] == request_id
    batch_size = (governance[0].attributes or {})["messaging.batch.message_count"]
    assert isinstance(batch_size, int)
    assert batch_size >= 1
    step_attributes = step.attributes or {}
    assert step_attributes["flowcase.request_id"] == request_id
    assert step_attributes["flowcase.process_type"] == "access_complaint"
    assert step_attributes["flowcase.step"] == "open-investigation"
    opened_attributes = opened.attributes or {}
    assert opened_attributes["flowcase.request_id"] == request_id
    assert opened_attributes["flowcase.process_type"] == "access_complaint"
    assert opened_attributes["flowcase.case_id"]


async def test_flowcase_trace_tells_the_journey_from_the_services_records(
    platform: Any, until: Callable[..., Awaitable[Any]]
) -> None:
    request_id = await platform.submit(
        "access_complaint", {"system": "crm", "complaint": "I lost access"}
    )
    status = await until(
        lambda: platform.http["intake"].get(f"/v1/requests/{request_id}"),
        lambda r: r.status_code == 200 and r.json().get("case_id"),
    )
    case_id = status.json()["case_id"]
    history = await until(
        lambda: platform.http["case"].get(f"/v1/cases/{case_id}/history"),
        lambda r: r.status_code == 200,
    )
    instance = await platform.http["workflow"].get(f"/v1/instances/{request_id}")

    journey = journey_of(request_id, status.json(), instance.json(), history.json())
    console = Console(record=True, width=200)
    render(journey, console)
    text = console.export_text()

    assert journey.summary["case_id"] == case_id
    assert {hop.service for hop in journey.hops} == {"intake", "workflow", "case"}
    events = [hop.event_type for hop in journey.hops]
    assert events[0] == "intake.RequestSubmitted"
    assert events.index("workflow.EscalatedToCase") < events.index("case.CaseOpened")
    # Every recorded event once, though intake's timeline reports the same ones again.
    for service, recorded in (
        ("workflow", instance.json()["events"]),
        ("case", history.json()["events"]),
    ):
        assert len([hop for hop in journey.hops if hop.service == service]) == len(recorded)
    assert [s.step for s in journey.steps][-1] == "open-investigation"
    for shown in ("flowcase.intake.requests", "flowcase.workflow.events", "flowcase.case.events"):
        assert shown in text
    assert "route-to-team" in text
