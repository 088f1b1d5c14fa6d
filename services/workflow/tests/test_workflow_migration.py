"""Moving a running instance to another version of its definition, in the pure engine: where it
goes on, which clocks it keeps, and every reason it is left where it is."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from flowcase.events.catalogue.workflow import (
    ApprovalDecision,
    InstanceCompleted,
    InstanceMigrated,
    TimersOnMigration,
)
from flowcase.workflow.definition import ProcessDefinition
from flowcase.workflow.definition_files import parse_definition, shipped_folder
from flowcase.workflow.effects import CancelTimer, RunAction, ScheduleTimer
from flowcase.workflow.engine import AlreadyMigrated, TriggerRefused, decide
from flowcase.workflow.migration import InvalidPlan, MigrationPlan, read_plan
from flowcase.workflow.state import InstanceState, Status, replay
from flowcase.workflow.triggers import (
    DecideApproval,
    FireTimer,
    Migrate,
    ReportActionSucceeded,
    Submit,
)

START = datetime(2026, 12, 1, 9, tzinfo=UTC)
LATER = START + timedelta(hours=30)
MIGRATION = UUID("5e4d3c2b-1a09-4f8e-9d7c-6b5a4f3e2d1c")


def invoice(version: int = 1, **replacing: str) -> ProcessDefinition:
    text = (shipped_folder() / "invoice_approval.yaml").read_text()
    text = text.replace("version: 1", f"version: {version}")
    for old, new in replacing.items():
        assert old in text, old
        text = text.replace(old, new)
    return parse_definition(text, f"invoice-v{version}.yaml")


V1 = invoice()
# The approval step renamed and its timeout shortened.
V2 = invoice(
    2,
    **{
        "name: finance-approval": "name: controller-approval",
        "timeout: 2d": "timeout: 1d",
    },
)


def waiting(amount: float = 12_000.0, definition: ProcessDefinition = V1) -> InstanceState:
    """An invoice waiting for its approval since START."""
    submit = Submit(
        request_id=uuid4(),
        request_type="invoice_approval",
        requester="clerk@example.com",
        payload={"invoice_id": "INV-1", "vendor": "Acme", "amount": amount, "currency": "EUR"},
    )
    decision = decide(definition, None, submit, START)
    assert decision.state is not None
    assert decision.state.approval is not None
    return decision.state


def migrate(**changes: object) -> Migrate:
    fields: dict[str, object] = {
        "from_version": 1,
        "to": V2,
        "steps": {"finance-approval": "controller-approval"},
        "actor": "admin@example.com",
        "reason": "the controller approves from December",
        "migration_id": MIGRATION,
    }
    fields.update(changes)
    return Migrate.model_validate(fields)


def test_a_waiting_approval_goes_on_at_the_renamed_step_with_its_due_time_carried() -> None:
    before = waiting()
    decision = decide(V1, before, migrate(), LATER)
    state = decision.state
    assert state is not None

    migrated = decision.turn.events[0]
    assert isinstance(migrated, InstanceMigrated)
    assert (migrated.from_version, migrated.to_version) == (1, 2)
    assert (migrated.step, migrated.to_step) == ("finance-approval", "controller-approval")
    assert migrated.timers is TimersOnMigration.CARRY
    assert decision.turn.actor == "admin@example.com"

    assert state.definition_version == 2
    assert state.status is Status.RUNNING
    assert state.current_step == "controller-approval"
    assert state.approval is not None
    assert state.approval.role == "finance-director"
    # The time already waited counts: still due two days after START, not one after LATER.
    assert before.approval is not None
    assert state.approval.due_at == before.approval.due_at
    # The old step closed as migrated; the new one entered at the migration.
    closed = next(r for r in state.history if r.step == "finance-approval")
    assert (closed.completed_at, closed.outcome) == (LATER, "migrated")
    entered = next(r for r in state.history if r.step == "controller-approval")
    assert entered.entered_at == LATER
    assert entered.completed_at is None
    # The approval's timer moves to the new step's name, at the same time.
    assert set(decision.effects) == {
        CancelTimer(request_id=state.request_id, timer_id="finance-approval/approval-timeout"),
        ScheduleTimer(
            request_id=state.request_id,
            timer_id="controller-approval/approval-timeout",
            fire_at=before.approval.due_at,
        ),
    }
    # The SLA that started before the approval still runs until the payment is scheduled.
    assert [(w.step, w.until, w.due_at) for w in state.sla_windows] == [
        (w.step, w.until, w.due_at) for w in before.sla_windows
    ]
    # Replaying the stored turns reproduces the state the engine decided on.
    start = decide(V1, None, _submit_of(before), START).turn
    assert replay([start, decision.turn]) == state


def test_restarted_clocks_run_again_from_the_migration() -> None:
    before = waiting()
    state = decide(V1, before, migrate(timers="restart"), LATER).state
    assert state is not None
    assert state.approval is not None
    assert state.approval.due_at == LATER + timedelta(days=1)  # v2's timeout, from now
    [window] = state.sla_windows
    assert window.due_at == LATER + timedelta(seconds=window.seconds)


def test_the_approval_then_granted_completes_the_instance_on_the_new_version() -> None:
    state = decide(V1, waiting(), migrate(), LATER).state
    assert state is not None
    approve = DecideApproval(
        step="controller-approval", decision=ApprovalDecision.APPROVED, actor="director"
    )
    approved = decide(V2, state, approve, LATER + timedelta(hours=1))
    [action] = [e for e in approved.effects if isinstance(e, RunAction)]
    assert action.step == "schedule-payment"
    done = decide(V2, approved.state, ReportActionSucceeded(step="schedule-payment"), LATER)
    assert done.state is not None
    assert done.state.status is Status.COMPLETED
    assert isinstance(done.turn.events[-1], InstanceCompleted)
    # The SLA until the payment closed when the payment was scheduled: no timer left.
    assert done.state.sla_windows == ()
    # The old step's timer no longer fires anything.
    stale = FireTimer(timer_id="finance-approval/approval-timeout")
    assert decide(V2, state, stale, LATER).turn.events == ()


def test_a_step_of_the_same_name_needs_no_plan_and_a_new_rule_decides_again() -> None:
    director = "payload.amount >= 10000\n        role: finance-director"
    v2 = invoice(2, **{director: director.replace("10000", "20000")})
    state = decide(V1, waiting(12_000.0), migrate(to=v2, steps={}), LATER).state
    assert state is not None
    assert state.approval is not None
    # Under v2 a 12,000 invoice is the finance manager's to approve.
    assert (state.current_step, state.approval.role) == ("finance-approval", "finance-manager")


def test_an_approval_the_new_version_no_longer_needs_runs_on() -> None:
    v2 = invoice(2, **{"payload.amount >= 1000\n": "payload.amount >= 100000\n"})
    decision = decide(V1, waiting(1_500.0), migrate(to=v2, steps={}), LATER)
    assert decision.state is not None
    assert decision.state.current_step == "schedule-payment"
    assert [e.step for e in decision.effects if isinstance(e, RunAction)] == ["schedule-payment"]


@pytest.mark.parametrize(
    ("amount", "trigger", "reason"),
    [
        (12_000.0, lambda: migrate(steps={}), "v2 has no step 'finance-approval'"),
        (
            12_000.0,
            lambda: migrate(steps={"finance-approval": "schedule-payment"}),
            "step 'finance-approval' is of kind approval, 'schedule-payment' of v2 of kind action",
        ),
        (
            12_000.5,
            lambda: migrate(
                to=invoice(2, **{"amount: {type: number}": "amount: {type: integer}"}), steps={}
            ),
            "its payload does not fit v2's schema: payload.amount: 12000.5 is not of type "
            "'integer'",
        ),
        (
            12_000.0,
            lambda: migrate(to=invoice(2, **{"schedule-payment": "pay-supplier"}), steps={}),
            "its SLA from step 'pay-on-time' runs until step 'schedule-payment', which v2 does "
            "not reach from 'finance-approval': that clock would never stop",
        ),
        (12_000.0, lambda: migrate(from_version=3), "the instance is on v1, not v3"),
    ],
    ids=["no-counterpart", "another-kind", "payload-misfit", "clock-never-stops", "stale-version"],
)
def test_an_instance_that_cannot_move_is_refused_with_the_reason(
    amount: float, trigger: Callable[[], Migrate], reason: str
) -> None:
    with pytest.raises(TriggerRefused) as refused:
        decide(V1, waiting(amount), trigger(), LATER)
    assert str(refused.value).startswith(reason)


def test_an_instance_waiting_on_an_action_is_left_until_it_reports() -> None:
    approved = decide(
        V1,
        waiting(),
        DecideApproval(step="finance-approval", decision=ApprovalDecision.APPROVED, actor="d"),
        LATER,
    ).state
    assert approved is not None
    assert approved.current_step == "schedule-payment"
    with pytest.raises(TriggerRefused, match="waits on its action at step 'schedule-payment'"):
        decide(V1, approved, migrate(), LATER)


def test_an_escalated_or_finished_instance_does_not_move() -> None:
    timed_out = decide(
        V1, waiting(), FireTimer(timer_id="finance-approval/approval-timeout"), LATER
    ).state
    assert timed_out is not None
    assert timed_out.status is Status.ESCALATED
    with pytest.raises(TriggerRefused, match="the instance is escalated, not running"):
        decide(V1, timed_out, migrate(), LATER)


def test_an_instance_moved_already_says_so() -> None:
    moved = decide(V1, waiting(), migrate(), LATER).state
    assert moved is not None
    with pytest.raises(AlreadyMigrated):
        decide(V2, moved, migrate(), LATER)


def test_a_plan_names_steps_of_both_versions() -> None:
    plan = read_plan("steps:\n  finance-approval: controller-approval\ntimers: restart\n", "p")
    assert plan == MigrationPlan(
        steps={"finance-approval": "controller-approval"}, timers=TimersOnMigration.RESTART
    )
    assert plan.problems(V1, V2) == []
    wrong = MigrationPlan(steps={"approve": "controller-approval", "finance-approval": "nope"})
    assert wrong.problems(V1, V2) == [
        "steps: 'approve' is not a step of v1",
        "steps: 'nope' is not a step of v2",
    ]
    assert MigrationPlan().problems(V1, V1) == ["v1 to v1 moves nothing"]
    with pytest.raises(InvalidPlan, match="p: timers: Input should be 'carry' or 'restart'"):
        read_plan("timers: later\n", "p")
    with pytest.raises(InvalidPlan, match="p: not valid YAML"):
        read_plan("steps: [\n", "p")


def _submit_of(state: InstanceState) -> Submit:
    return Submit(
        request_id=state.request_id,
        request_type=state.request_type,
        requester=state.requester,
        payload=dict(state.payload),
    )
