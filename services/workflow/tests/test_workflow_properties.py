"""Properties of the engine over random journeys through the shipped definitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from flowcase.events.catalogue import REGISTRY
from flowcase.events.catalogue.workflow import ApprovalDecision, InstanceCompleted, StepKind
from flowcase.workflow.definition_files import load_folder, shipped_folder
from flowcase.workflow.engine import Decision, TriggerRefused, decide
from flowcase.workflow.state import InstanceState, Turn, replay
from flowcase.workflow.triggers import (
    CloseByCase,
    DecideApproval,
    FireTimer,
    ForceCompletion,
    ForceRoute,
    ReportActionFailed,
    ReportActionSucceeded,
    SkipStep,
    Submit,
    Trigger,
)

T0 = datetime(2026, 11, 24, 9, tzinfo=UTC)
REQUEST_ID = UUID("0b5e6a0e-8f3c-4c1e-9a57-6d2f3c4b5a69")
DEFINITIONS = {d.request_type: d for d in load_folder(shipped_folder())}

PAYLOADS = {
    "password_reset": st.fixed_dictionaries(
        {"account": st.sampled_from(["jdoe", "j doe"]), "system": st.sampled_from(["okta", "jira"])}
    ),
    "software_access": st.fixed_dictionaries(
        {
            "software": st.sampled_from(["slack", "tableau"]),
            "justification": st.just("Needed for the quarterly review"),
            "monthly_cost": st.integers(0, 1000),
        }
    ),
    "invoice_approval": st.fixed_dictionaries(
        {
            "invoice_id": st.just("INV-1"),
            "vendor": st.just("Acme"),
            "amount": st.one_of(st.integers(-10, 80000), st.floats(0.5, 80000)),
            "currency": st.sampled_from(["USD", "EUR"]),
        }
    ),
    "purchase_order": st.fixed_dictionaries(
        {
            "supplier": st.just("Acme"),
            "department": st.sampled_from(["it", "ops"]),
            "amount": st.integers(1, 60000),
            "lines": st.just([{"sku": "X", "quantity": 2}]),
        }
    ),
    "hr_matter": st.fixed_dictionaries(
        {
            "category": st.sampled_from(["policy-question", "grievance"]),
            "description": st.just("Details"),
        }
    ),
    "multi_system_incident": st.fixed_dictionaries(
        {
            "systems": st.lists(st.sampled_from(["crm", "billing"]), min_size=1, max_size=2),
            "impact": st.sampled_from(["low", "critical"]),
            "summary": st.just("Down"),
        }
    ),
}

MOVES = [
    "approve",
    "deny",
    "succeed",
    "fail",
    "fire_timer",
    "skip",
    "force_route",
    "force_completion",
    "close_by_case",
    "late_report",
]

journeys = st.tuples(
    st.sampled_from(sorted(PAYLOADS)).flatmap(lambda t: st.tuples(st.just(t), PAYLOADS[t])),
    st.lists(st.tuples(st.sampled_from(MOVES), st.integers(0, 4 * 24 * 60)), max_size=12),
)


def trigger_for(move: str, state: InstanceState) -> Trigger:
    """A trigger that makes sense now, or a plausible stale one."""
    step = state.current_step or "nowhere"
    timers = sorted(state.timers()) or ["nowhere/sla"]
    # The API picks an override's id; a journey replayed as input must pick the same one.
    override_id = UUID(int=len(state.history) + 1)
    match move:
        case "approve" | "deny":
            decision = ApprovalDecision.APPROVED if move == "approve" else ApprovalDecision.DENIED
            return DecideApproval(step=step, decision=decision, actor="approver")
        case "succeed":
            return ReportActionSucceeded(step=step, result={"ok": True})
        case "fail":
            return ReportActionFailed(step=step, attempts=3, error="HTTP 503")
        case "fire_timer":
            return FireTimer(timer_id=timers[0])
        case "skip":
            return SkipStep(
                step=step, actor="supervisor", reason="Done by hand", override_id=override_id
            )
        case "force_route":
            return ForceRoute(
                team="audit", actor="supervisor", reason="Under review", override_id=override_id
            )
        case "force_completion":
            return ForceCompletion(
                actor="supervisor", reason="Resolved elsewhere", override_id=override_id
            )
        case "close_by_case":
            return CloseByCase(case_id=REQUEST_ID)
        case _:
            return ReportActionSucceeded(step="check-request")


def run(journey) -> tuple[list[Decision], InstanceState]:
    (request_type, payload), moves = journey
    definition = DEFINITIONS[request_type]
    submit = Submit(
        request_id=REQUEST_ID, request_type=request_type, requester="jdoe", payload=payload
    )
    decision = decide(definition, None, submit, T0)
    decisions, state, at = [decision], decision.state, T0
    for move, minutes in moves:
        assert state is not None
        at += timedelta(minutes=minutes)
        try:
            decision = decide(definition, state, trigger_for(move, state), at)
        except TriggerRefused:
            continue
        decisions.append(decision)
        state = decision.state
    assert state is not None
    return decisions, state


@settings(max_examples=150, deadline=None)
@given(journeys)
def test_replaying_the_turns_reproduces_the_state(journey) -> None:
    decisions, state = run(journey)
    assert replay(d.turn for d in decisions if d.turn.events) == state


@settings(max_examples=150, deadline=None)
@given(journeys)
def test_events_read_back_from_storage_replay_to_the_same_state(journey) -> None:
    decisions, state = run(journey)
    stored = [
        (d.turn.at, [(e.event_type, e.model_dump(mode="json")) for e in d.turn.events])
        for d in decisions
        if d.turn.events
    ]
    read_back = (
        Turn(at, tuple(REGISTRY[name].model_validate(data) for name, data in events))  # type: ignore[misc]
        for at, events in stored
    )
    assert replay(read_back) == state


@settings(max_examples=100, deadline=None)
@given(journeys)
def test_the_engine_is_deterministic(journey) -> None:
    first, _ = run(journey)
    second, _ = run(journey)
    assert first == second


@settings(max_examples=150, deadline=None)
@given(journeys)
def test_an_instance_ends_at_most_once_and_then_stays_still(journey) -> None:
    decisions, state = run(journey)
    events = [event for decision in decisions for event in decision.turn.events]
    endings = [i for i, event in enumerate(events) if isinstance(event, InstanceCompleted)]
    assert len(endings) <= 1
    if endings:
        assert endings[0] == len(events) - 1
        assert state.is_terminal
        assert state.timers() == {}
    if state.status.value == "running":
        assert state.current_kind in (StepKind.APPROVAL, StepKind.ACTION)
