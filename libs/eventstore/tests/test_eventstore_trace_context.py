"""The trace context of the work that stored an event, carried through the store to the relay."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import asyncpg
from eventsourcing.domain import Aggregate, event
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from flowcase.devstack.topic_reader import read_topic
from flowcase.events import Envelope, Topic
from flowcase.events.catalogue.case import NoteAdded
from flowcase.events.kafka import EventProducer
from flowcase.events.settings import KafkaSettings
from flowcase.events.tracing import current_request_id, extract_trace_context, request_scope
from flowcase.eventstore import Relay, TrackedApplication, postgres_env, stable_event_id
from flowcase.eventstore.trace_context import TRACE_KEY, stored_under

tracer = trace.get_tracer("test")


class Pad(Aggregate):
    @event("Opened")
    def __init__(self) -> None:
        self.lines: list[str] = []

    # Declared, not named in @event("Written"), so that the type checker knows the class.
    class Written(Aggregate.Event):
        text: str

    @event(Written)
    def write(self, text: str) -> None:
        self.lines.append(text)


class Pads(TrackedApplication):
    pass


def to_envelopes(domain_event: Any) -> Sequence[Envelope]:
    if not isinstance(domain_event, Pad.Written):
        return ()
    payload = NoteAdded(case_id=domain_event.originator_id, note_id="n", text=domain_event.text)
    return (
        Envelope.wrap(
            payload,
            source="test",
            event_id=stable_event_id(domain_event.originator_id, domain_event.originator_version),
        ),
    )


def test_events_read_back_without_the_context_they_were_stored_under(
    spans: InMemorySpanExporter,
) -> None:
    pads = Pads()  # in memory: the mapper, not the database, carries the context
    pad = Pad()
    pad.write("hello")
    with tracer.start_as_current_span("save"):
        pads.save(pad)
    written = list(pads.events.get(pad.id))
    assert all(TRACE_KEY not in vars(e) for e in written)
    assert written[1].text == "hello"  # type: ignore[attr-defined]
    stored = pads.recorder.select_events(pad.id)
    _, context = pads.mapper.to_traced_domain_event(stored[1])  # type: ignore[attr-defined]
    [save] = spans.get_finished_spans()
    assert trace.get_current_span(context).get_span_context().span_id == save.context.span_id


def test_an_event_named_in_stored_under_keeps_its_own_context(
    spans: InMemorySpanExporter,
) -> None:
    pads = Pads()
    pad = Pad()
    pad.write("one")
    with tracer.start_as_current_span("outer"), tracer.start_as_current_span("step") as step:
        step_context = trace.set_span_in_context(step)
    with tracer.start_as_current_span("outer"), stored_under({(pad.id, 2): step_context}):
        pads.save(pad)
    stored = pads.recorder.select_events(pad.id)
    contexts = [pads.mapper.to_traced_domain_event(s)[1] for s in stored]  # type: ignore[attr-defined]
    ids = [trace.get_current_span(c).get_span_context().span_id for c in contexts]
    assert ids[1] == step.get_span_context().span_id
    assert ids[0] != ids[1]


async def test_the_relay_sends_each_event_in_the_trace_that_stored_it(
    database_url: str, kafka_settings: KafkaSettings, spans: InMemorySpanExporter
) -> None:
    pads = Pads(env=postgres_env(database_url))
    first, second = Pad(), Pad()
    first.write("in trace one")
    second.write("in trace two")
    with tracer.start_as_current_span("consumer one"), request_scope("r-1"):
        await asyncio.to_thread(pads.save, first)
    with tracer.start_as_current_span("consumer two"):
        await asyncio.to_thread(pads.save, second)

    async with (
        asyncpg.create_pool(database_url, min_size=1, max_size=2) as pool,
        EventProducer(kafka_settings, client_id="relay") as producer,
    ):
        relay = Relay(
            name="pads", application=pads, to_envelopes=to_envelopes, producer=producer, pool=pool
        )
        await relay.catch_up()  # a later task, with no span of its own
    records = await read_topic(kafka_settings, kafka_settings.topic(Topic.CASE_EVENTS), count=2)

    finished = {s.name: s for s in spans.get_finished_spans()}
    sends = [s for s in spans.get_finished_spans() if s.kind is SpanKind.PRODUCER]
    assert {s.parent.span_id for s in sends if s.parent} == {
        finished["consumer one"].context.span_id,
        finished["consumer two"].context.span_id,
    }
    assert {s.context.trace_id for s in sends} == {
        finished["consumer one"].context.trace_id,
        finished["consumer two"].context.trace_id,
    }
    # The headers continue the send spans, and the stored baggage still names the request.
    by_text = {r.value.decode().split('"text":"')[1].split('"')[0]: r for r in records if r.value}
    one = extract_trace_context(by_text["in trace one"].headers)
    assert trace.get_current_span(one).get_span_context().trace_id == (
        finished["consumer one"].context.trace_id
    )
    token = otel_context.attach(one)
    try:
        assert current_request_id() == "r-1"
    finally:
        otel_context.detach(token)
