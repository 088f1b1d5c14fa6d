"""The shipped definitions, run through the engine on the paths the article describes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flowcase.events.catalogue import Priority
from flowcase.events.catalogue.workflow import (
    ApprovalDecision,
    ApprovalRequested,
    EscalatedToCase,
    EscalationReason,
    StepKind,
)
from flowcase.workflow.effects import RunAction, SendNotification
from flowcase.workflow.state import Status
from flowcase.workflow.triggers import (
    DecideApproval,
    FireTimer,
    ReportActionFailed,
    ReportActionSucceeded,
)


def succeed_actions(run) -> list[str]:
    """Report success for every action the instance waits on; the steps, in order."""
    done = []
    while run.now.status is Status.RUNNING and run.now.current_kind is StepKind.ACTION:
        done.append(run.now.current_step)
        run.send(ReportActionSucceeded(step=run.now.current_step), after=timedelta(minutes=1))
    return done


def approve(run, step: str) -> None:
    run.send(DecideApproval(step=step, decision=ApprovalDecision.APPROVED, actor="approver"))


def escalated(run) -> EscalatedToCase:
    [event] = run.of(EscalatedToCase)
    return event


def test_password_reset_runs_end_to_end(shipped, journey) -> None:
    run = journey(shipped["password_reset"])
    run.submit({"account": "jdoe", "system": "okta"})
    assert run.now.route.team == "identity"
    assert succeed_actions(run) == ["reset-password"]
    assert run.now.status is Status.COMPLETED


def test_password_reset_escalates_when_the_reset_keeps_failing(shipped, journey) -> None:
    run = journey(shipped["password_reset"])
    run.submit({"account": "jdoe", "system": "slack"})
    [action] = run.effects(RunAction)
    run.send(ReportActionFailed(step=action.step, attempts=action.attempts, error="HTTP 503"))
    assert escalated(run).reason_code is EscalationReason.ACTION_FAILED


def test_password_reset_rejects_an_unknown_system(shipped, journey) -> None:
    run = journey(shipped["password_reset"])
    run.submit({"account": "jdoe", "system": "mainframe"})
    assert run.now.status is Status.REJECTED


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ({"software": "figma"}, ["grant-access"]),
        ({"software": "tableau", "monthly_cost": 70}, ["manager-approval", "grant-access"]),
    ],
)
def test_software_access(shipped, journey, payload, path) -> None:
    run = journey(shipped["software_access"])
    run.submit({"justification": "Design reviews with the team", **payload})
    if "manager-approval" in path:
        assert run.now.current_step == "manager-approval"
        approve(run, "manager-approval")
    assert succeed_actions(run) == ["grant-access"]
    assert run.now.status is Status.COMPLETED


def test_expensive_non_standard_software_matches_no_branch(shipped, journey) -> None:
    run = journey(shipped["software_access"])
    run.submit(
        {
            "software": "cad-suite",
            "monthly_cost": 2400,
            "justification": "3D models of the new plant",
        }
    )
    assert escalated(run).reason_code is EscalationReason.NO_BRANCH_MATCHED


@pytest.mark.parametrize(
    ("amount", "role"),
    [(400, None), (1840.5, "finance-manager"), (12000, "finance-director"), (60000, "cfo")],
)
def test_invoice_approval_thresholds(shipped, journey, amount, role) -> None:
    run = journey(shipped["invoice_approval"])
    run.submit({"invoice_id": "INV-1", "vendor": "Acme", "amount": amount, "currency": "USD"})
    requested = run.of(ApprovalRequested)
    assert [r.approver_role for r in requested] == ([role] if role else [])
    if role:
        approve(run, "finance-approval")
    assert succeed_actions(run) == ["schedule-payment"]
    assert run.now.status is Status.COMPLETED


def test_an_invoice_waiting_past_its_sla_escalates(shipped, journey) -> None:
    run = journey(shipped["invoice_approval"])
    run.submit({"invoice_id": "INV-1", "vendor": "Acme", "amount": 2000, "currency": "EUR"})
    run.send(FireTimer(timer_id="pay-on-time/sla"), after=timedelta(days=3))
    event = escalated(run)
    assert (event.reason_code, event.step) == (EscalationReason.SLA_BREACHED, "pay-on-time")


def test_a_large_purchase_order_needs_both_approvals(shipped, journey) -> None:
    run = journey(shipped["purchase_order"])
    lines = [{"sku": "LAPTOP-14", "quantity": 20}]
    run.submit({"supplier": "Acme", "department": "it", "amount": 32000, "lines": lines})
    assert run.now.route.team == "it-procurement"
    approve(run, "department-approval")
    assert run.now.approval.role == "vp-finance"
    approve(run, "finance-approval")
    assert succeed_actions(run) == ["issue-order"]
    assert run.now.status is Status.COMPLETED


def test_a_small_purchase_order_needs_no_approval(shipped, journey) -> None:
    run = journey(shipped["purchase_order"])
    lines = [{"sku": "PEN", "quantity": 100}]
    run.submit({"supplier": "Acme", "department": "ops", "amount": 120, "lines": lines})
    assert run.now.current_step == "issue-order"


def test_employee_onboarding_provisions_welcomes_and_schedules(shipped, journey) -> None:
    run = journey(shipped["employee_onboarding"])
    run.submit(
        {
            "employee_name": "Ada Lovelace",
            "email": "ada@example.com",
            "manager_email": "grace@example.com",
            "department": "engineering",
            "start_date": "2026-12-01",
        }
    )
    provisioned = succeed_actions(run)
    assert provisioned == [
        "provision-okta",
        "provision-google-workspace",
        "provision-slack",
        "provision-jira",
        "provision-github",
        "schedule-kickoff",
    ]
    welcome = [r for r in run.now.history if r.step == "send-welcome-email"]
    assert welcome[0].outcome == "sent"
    assert run.now.status is Status.COMPLETED


def test_kickoff_invites_the_employee_and_the_manager(shipped, journey) -> None:
    run = journey(shipped["employee_onboarding"])
    run.submit(
        {
            "employee_name": "Ada",
            "email": "ada@example.com",
            "manager_email": "grace@example.com",
            "department": "finance",
            "start_date": "2026-12-01",
        }
    )
    for _ in range(5):
        run.send(ReportActionSucceeded(step=run.now.current_step))
    [welcome] = run.effects(SendNotification)
    assert welcome.recipients == ("ada@example.com",)
    [kickoff] = run.effects(RunAction)
    assert kickoff.input["attendees"] == ["ada@example.com", "grace@example.com"]


def test_an_access_complaint_always_becomes_a_case(shipped, journey) -> None:
    run = journey(shipped["access_complaint"])
    run.submit({"system": "payroll", "complaint": "I was locked out"}, requester="jdoe")
    event = escalated(run)
    assert (event.reason_code, event.priority) == (EscalationReason.RULE, Priority.HIGH)
    assert event.intake_payload == {"system": "payroll", "complaint": "I was locked out"}
    assert [r.step for r in event.history] == [
        "check-complaint",
        "route-to-team",
        "acknowledge",
        "confirm-receipt",
        "open-investigation",
    ]


@pytest.mark.parametrize(
    ("payload", "status", "team"),
    [
        ({"category": "policy-question"}, Status.COMPLETED, "people-ops"),
        ({"category": "grievance"}, Status.ESCALATED, "people-ops"),
        ({"category": "harassment", "confidential": True}, Status.ESCALATED, "employee-relations"),
    ],
)
def test_hr_matters_escalate_by_rule(shipped, journey, payload, status, team) -> None:
    run = journey(shipped["hr_matter"])
    run.submit({"description": "Details", **payload})
    assert (run.now.status, run.now.route.team) == (status, team)


@pytest.mark.parametrize(
    ("systems", "impact", "status"),
    [
        (["crm", "billing"], "low", Status.ESCALATED),
        (["crm"], "critical", Status.ESCALATED),
        (["crm"], "low", Status.COMPLETED),
    ],
)
def test_incidents_across_systems_escalate(shipped, journey, systems, impact, status) -> None:
    run = journey(shipped["multi_system_incident"])
    run.submit({"systems": systems, "impact": impact, "summary": "Checkout fails"})
    assert run.now.status is status
    if status is Status.ESCALATED:
        assert escalated(run).priority is Priority.URGENT
