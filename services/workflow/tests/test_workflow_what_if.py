"""What-if: the pure engine over a history of the shipped invoice approval, against a proposed
definition, with every expectation counted from the requests themselves."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from typer.testing import CliRunner

from flowcase.events import Envelope, encode
from flowcase.events.approach import Approach
from flowcase.events.catalogue.workflow import ApprovalDecision, EscalationReason
from flowcase.workflow.cli import app
from flowcase.workflow.definition import ProcessDefinition
from flowcase.workflow.definition_files import load_definition, parse_definition, shipped_folder
from flowcase.workflow.effects import RunAction
from flowcase.workflow.state import PendingApproval, Status
from flowcase.workflow.triggers import (
    DecideApproval,
    ReportActionFailed,
    ReportActionSucceeded,
    Submit,
    Trigger,
)
from flowcase.workflow.what_if import (
    End,
    PastRequest,
    drive,
    replay,
    stated_by_envelopes,
    what_if,
)

START = datetime(2026, 11, 2, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def deployed() -> ProcessDefinition:
    return load_definition(shipped_folder() / "invoice_approval.yaml")


def proposed(deployed: ProcessDefinition, **replacing: str) -> ProcessDefinition:
    """The deployed definition's YAML with text replaced, as version 2."""
    text = (shipped_folder() / "invoice_approval.yaml").read_text()
    text = text.replace("version: 1", "version: 2")
    for old, new in replacing.items():
        assert old in text
        text = text.replace(old, new)
    return parse_definition(text, "proposed.yaml")


def amounts(n: int, seed: int = 7) -> list[float]:
    rng = random.Random(seed)
    # Every band of the approval rules, the boundaries and a refused (negative) amount.
    fixed = [-5.0, 0.0, 499.0, 500.0, 999.0, 1000.0, 9999.0, 10000.0, 50000.0]
    return fixed + [round(rng.uniform(1, 80000), 2) for _ in range(n - len(fixed))]


class Approvers:
    """The world of request `n` as the service drives it: actions succeed (but every 13th
    fails), approvers approve (every 7th denies, every 11th lets the timeout pass)."""

    def __init__(self, n: int, at: datetime) -> None:
        self.n, self.at = n, at

    def action(self, action: RunAction) -> Trigger:
        if self.n % 13 == 12:
            return ReportActionFailed(step=action.step, attempts=5, error="ERP down")
        return ReportActionSucceeded(step=action.step)

    def fires(self, timer_id: str) -> bool:
        return timer_id.endswith("/approval-timeout") and self.n % 11 == 10

    def approves(self, pending: PendingApproval) -> tuple[DecideApproval, datetime]:
        verdict = ApprovalDecision.DENIED if self.n % 7 == 6 else ApprovalDecision.APPROVED
        actor = f"approver-{self.n % 3}"
        return DecideApproval(step=pending.step, decision=verdict, actor=actor), self.at


def lived(definition: ProcessDefinition, amount: float, n: int) -> list[Envelope]:
    """One request run through the engine as the service drives it, in `Approvers`' world."""
    request_id = UUID(int=n + 1)
    at = START + timedelta(minutes=n)
    submit = Submit(
        request_id=request_id,
        request_type=definition.request_type,
        requester=f"clerk-{n % 5}@example.com",
        payload={"invoice_id": f"INV-{n}", "vendor": "Acme", "amount": amount, "currency": "EUR"},
    )
    decisions = drive(definition, submit, at, Approvers(n, at + timedelta(minutes=5)))
    assert decisions[-1].state is not None
    assert decisions[-1].state.status is not Status.RUNNING, f"request {n} waits"
    return [
        Envelope.wrap(
            event,
            source="workflow",
            request_id=request_id,
            occurred_at=decision.turn.at,
            actor=decision.turn.actor_of(event),
        )
        for decision in decisions
        for event in decision.turn.events
    ]


@pytest.fixture(scope="module")
def history(deployed: ProcessDefinition) -> list[Envelope]:
    return [e for n, amount in enumerate(amounts(120)) for e in lived(deployed, amount, n)]


def test_the_deployed_definition_predicts_exactly_what_happened(
    deployed: ProcessDefinition, history: list[Envelope]
) -> None:
    past = list(PastRequest.of(stated_by_envelopes(history)))
    assert len(past) == 120
    result = what_if(deployed, past)
    assert result.changes == []
    assert result.proposed == result.happened
    happened = result.happened
    # The history holds every kind of end, so "no change" is not an empty comparison.
    assert happened.refused_at_validation == 2  # -5 and 0
    assert set(happened.escalated) == {
        EscalationReason.APPROVAL_DENIED.value,
        EscalationReason.APPROVAL_TIMED_OUT.value,
        EscalationReason.ACTION_FAILED.value,
    }
    assert happened.completed > 60


def test_a_lower_approval_threshold_adds_the_approvals_it_asks_for_as_pending(
    deployed: ProcessDefinition, history: list[Envelope]
) -> None:
    tightened = proposed(
        deployed,
        **{
            "- when: payload.amount >= 1000\n        role: finance-manager": (
                "- when: payload.amount >= 500\n        role: finance-manager"
            )
        },
    )
    past = list(PastRequest.of(stated_by_envelopes(history)))
    result = what_if(tightened, past)

    newly = [p for p in past if 500 <= float(p.payload["amount"]) < 1000]
    assert newly
    # Each of them now waits for a finance manager no one asked before: pending, by role.
    assert result.proposed.pending == {"finance-manager": len(newly)}
    assert {c.request_id for c in result.changes} == {p.request_id for p in newly}
    assert all(c.parted_at == "finance-approval" for c in result.changes)
    assert all(c.proposed.end is End.PENDING for c in result.changes)
    for role in ("cfo", "finance-director"):
        assert result.proposed.approvals[role] == result.happened.approvals[role]
    assert result.proposed.approvals["finance-manager"] == result.happened.approvals[
        "finance-manager"
    ] + len(newly)
    assert result.proposed.completed == result.happened.completed - len(newly)


def test_a_new_rule_escalates_what_it_catches_and_moves_the_recommendation(
    deployed: ProcessDefinition, history: list[Envelope]
) -> None:
    """A proposed escalation of every invoice of 20,000 or more: the requests it catches escalate
    (by its reason code), the rest run as they did, and the exception rate and the recommendation
    follow from the counts."""
    escalating = proposed(
        deployed,
        **{
            "  - name: pay-on-time\n": "  - name: big-invoices\n"
            "    kind: escalate\n"
            "    when: payload.amount >= 20000\n"
            "    reason: Large invoices are reviewed by treasury\n"
            "  - name: pay-on-time\n"
        },
    )
    past = list(PastRequest.of(stated_by_envelopes(history)))
    result = what_if(escalating, past)

    valid = [p for p in past if float(p.payload["amount"]) > 0]
    caught = {p.request_id for p in valid if float(p.payload["amount"]) >= 20000}
    already = {p.request_id for p in past if p.run.end is End.ESCALATED}
    assert {c.request_id for c in result.changes} == caught
    assert all(c.parted_at == "big-invoices" for c in result.changes)
    escalated = caught | already
    assert sum(result.proposed.escalated.values()) == len(escalated)
    assert result.proposed.escalated[EscalationReason.RULE.value] == len(caught)
    assert result.proposed.exception_rate == pytest.approx(len(escalated) / len(past))
    assert result.happened.exception_rate == pytest.approx(len(already) / len(past))
    assert result.happened.approach is Approach.LAYERED  # a fifth of them fail or are denied
    assert result.proposed.approach is Approach.CASE  # most of them would escalate


def test_a_history_without_the_instance_start_is_left_out(
    deployed: ProcessDefinition, history: list[Envelope]
) -> None:
    """A request whose start the history lacks has no payload to replay."""
    first = history[0].request_id
    without = [e for n, e in enumerate(history) if not (e.request_id == first and n == 0)]
    past = list(PastRequest.of(stated_by_envelopes(without)))
    assert first not in {p.request_id for p in past}
    assert len(past) == 119
    assert replay(deployed, past[0]) == past[0].run


def test_the_command_reports_both_sides_from_a_history_file(
    deployed: ProcessDefinition, history: list[Envelope], tmp_path: Path
) -> None:
    """`flowcase processes what-if` over JSON lines of the workflow's events: the figures of the
    report, the changed requests, and a history holding none of the type said as such."""
    log = tmp_path / "history.jsonl"
    log.write_bytes(b"".join(encode(e) + b"\n" for e in history))
    text = (shipped_folder() / "invoice_approval.yaml").read_text()
    file = tmp_path / "proposed.yaml"
    file.write_text(text.replace("version: 1", "version: 2").replace("amount > 0", "amount > 1"))

    runner = CliRunner()
    answer = runner.invoke(app, ["what-if", str(file), "--history", str(log), "--json"])
    assert answer.exit_code == 0, answer.output
    report = json.loads(answer.stdout)
    assert report["happened"]["requests"] == report["proposed"]["requests"] == 120
    refused = [a for a in amounts(120) if a <= 1]
    assert report["proposed"]["refused_at_validation"] == len(refused)
    assert len(report["changes"]) == len(refused) - report["happened"]["refused_at_validation"]

    shown = runner.invoke(app, ["what-if", str(file), "--history", str(log)])
    assert shown.exit_code == 0, shown.output
    assert f"{len(report['changes'])} requests change their outcome" in shown.stdout
    assert "Not predicted:" in shown.stdout

    other = tmp_path / "other.yaml"
    other.write_text(text.replace("request_type: invoice_approval", "request_type: refunds"))
    none = runner.invoke(app, ["what-if", str(other), "--history", str(log)])
    assert none.exit_code == 1
    assert "holds no started request of type refunds" in none.output
