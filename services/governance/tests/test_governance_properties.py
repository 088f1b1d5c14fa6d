"""The fold is order-independent and idempotent, on histories hypothesis makes up.

Ids, types, steps and instants come from small pools so that events collide: several events
about one request, one step, one case, often at the very same instant.
"""

from datetime import UTC, datetime, timedelta
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from flowcase.events import Envelope, Outcome
from flowcase.events.catalogue import case, intake, workflow
from flowcase.events.catalogue.workflow import OverrideKind, StepKind
from flowcase.governance.metrics import measure, process_types
from flowcase.governance.projector import fold
from flowcase.governance.windows import Period

START = datetime(2026, 11, 23, tzinfo=UTC)
instants = st.sampled_from([START + timedelta(hours=h) for h in (0, 1, 1, 5, 30, 200)])
request_ids = st.sampled_from([UUID(int=n) for n in (1, 2, 3)])
case_ids = st.sampled_from([UUID(int=n) for n in (101, 102)])
types = st.sampled_from(["invoice", "complaint"])
steps = st.sampled_from(["validate", "approve"])
kinds = st.sampled_from(list(StepKind))
texts = st.none() | st.sampled_from(["", "because", "per policy"])

payloads = st.one_of(
    st.builds(
        intake.RequestSubmitted,
        request_id=request_ids,
        request_type=types,
        requester=st.just("r"),
        priority=st.just("normal"),
        submitted_at=instants,
        channel=st.just("http"),
        payload=st.just({}),
    ),
    st.builds(
        workflow.InstanceStarted,
        request_id=request_ids,
        instance_id=st.uuids(),
        request_type=types,
        process=st.just("p"),
        definition_version=st.integers(1, 2),
    ),
    st.builds(
        workflow.StepEntered,
        request_id=request_ids,
        step=steps,
        kind=kinds,
        sla_due_at=st.none() | instants,
    ),
    st.builds(
        workflow.StepCompleted,
        request_id=request_ids,
        step=steps,
        kind=kinds,
        outcome=st.just("ok"),
    ),
    st.builds(
        workflow.SlaBreached,
        request_id=request_ids,
        step=steps,
        sla_seconds=st.just(60.0),
        due_at=instants,
    ),
    st.builds(
        workflow.ApprovalDecided,
        request_id=request_ids,
        step=steps,
        decision=st.just("approved"),
        rationale=texts,
    ),
    st.builds(
        workflow.OverrideApplied,
        request_id=request_ids,
        override=st.sampled_from(list(OverrideKind)),
        rule=st.none() | st.sampled_from(["a < 1", "b"]),
        definition_version=st.integers(1, 2),
        reason=st.just("r"),
    ),
    st.builds(
        workflow.EscalatedToCase,
        request_id=request_ids,
        request_type=types,
        process=st.just("p"),
        definition_version=st.integers(1, 2),
        reason_code=st.just("rule"),
        reason=st.just("r"),
        step=steps,
        intake_payload=st.just({}),
        history=st.just([]),
    ),
    st.builds(
        workflow.InstanceCompleted,
        request_id=request_ids,
        outcome=st.sampled_from(list(Outcome)),
        case_id=st.none() | case_ids,
    ),
    st.builds(
        case.CaseOpened,
        case_id=case_ids,
        request_id=st.none() | request_ids,
        request_type=st.none() | types,
        origin=st.sampled_from(["escalation", "manual"]),
        title=st.just("t"),
    ),
    st.builds(
        case.DecisionRecorded,
        case_id=case_ids,
        decision_id=st.sampled_from(["d-1", "d-2"]),
        decision=st.just("d"),
        rationale=texts,
        relied_on=st.lists(st.just("n-1"), max_size=1),
        gap_acknowledged=st.booleans(),
    ),
    st.builds(
        case.CaseOverrideApplied,
        case_id=case_ids,
        override_id=st.just("o-1"),
        target=st.just("sla"),
        rationale=texts,
    ),
    st.builds(
        case.CaseResolved,
        case_id=case_ids,
        request_id=st.none() | request_ids,
        outcome_code=st.just("done"),
        rationale=texts,
    ),
)

envelopes = st.builds(
    lambda payload, at, actor, event_id: Envelope.wrap(
        payload, source="test", occurred_at=at, actor=actor, event_id=event_id
    ),
    payloads,
    instants,
    st.none() | st.sampled_from(["agent", "supervisor"]),
    st.uuids(),
)
histories = st.lists(envelopes, max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_folding_in_any_order_gives_the_same_facts(data):
    events = data.draw(histories)
    shuffled = data.draw(st.permutations(events))
    assert fold(shuffled) == fold(events)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_redelivered_events_change_nothing(data):
    events = data.draw(histories)
    again = data.draw(st.lists(st.sampled_from(events), max_size=20)) if events else []
    assert fold(events + again) == fold(events)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_live_projection_catching_up_equals_a_replay(data):
    # Live: some events, then the rest arriving late into the stored facts. Replay: all at once.
    events = data.draw(histories)
    cut = data.draw(st.integers(0, len(events)))
    assert fold(events[cut:], into=fold(events[:cut])) == fold(events)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_the_metrics_do_not_depend_on_arrival_order(data):
    events = data.draw(histories)
    shuffled = data.draw(st.permutations(events))
    everything = Period(START, START + timedelta(days=30))
    facts, facts_shuffled = fold(events), fold(shuffled)
    assert process_types(facts) == process_types(facts_shuffled)
    for process_type in process_types(facts):
        assert measure(facts, process_type, everything) == measure(
            facts_shuffled, process_type, everything
        )
