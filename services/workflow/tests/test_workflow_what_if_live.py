"""The what-if's prediction against what the running service then does: a tightened invoice
approval is asked of the requests of a period, then published, and the same invoices are
submitted again and decided the way they were; the counts the what-if predicted are the ones
the service produces. (A module of its own: publishing a version changes the service's
definition for every later request.)"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx

from flowcase.devstack.dev_tokens import Tokens
from flowcase.devstack.in_process import eventually
from flowcase.events.catalogue.workflow import ApprovalRequested, EscalatedToCase
from flowcase.runtime.auth import Role
from flowcase.workflow.composition import WorkflowAssembly
from flowcase.workflow.definition_files import parse_definition, shipped_folder

# Amounts across every approval band; the approvers deny the ones listed.
AMOUNTS: list[float] = [400, 900, 2500, 6000, 7000, 8000, 9500, 12000, 30000, 60000, 75000, 5200]
DENIED = {7000, 12000, 60000}
# The proposal: the finance director signs from 5,000 instead of 10,000.
DIRECTOR_FROM = (
    "- when: payload.amount >= 10000\n        role: finance-director",
    "- when: payload.amount >= 5000\n        role: finance-director",
)


async def run_invoices(
    intake: Any,
    workflow_events: Any,
    api: httpx.AsyncClient,
    tokens: Tokens,
    decided_roles: dict[float, str] | None,
) -> dict[float, UUID]:
    """Submit one invoice per amount and carry each to its end, approving as the approvers do:
    deny the amounts in DENIED, approve the others. With `decided_roles` (the role each amount's
    approval was asked of before), an approval asked of another role is left waiting, as nobody
    decided it then."""
    ids: dict[float, UUID] = {
        amount: await intake.submit(
            "invoice_approval",
            {"invoice_id": f"INV-{amount}", "vendor": "Acme", "amount": amount, "currency": "EUR"},
        )
        for amount in AMOUNTS
    }
    ending = {"workflow.InstanceCompleted", "workflow.EscalatedToCase"}
    for amount, request_id in ids.items():

        async def types(request_id: UUID = request_id) -> set[str]:
            return set(workflow_events.types(request_id))

        seen = await eventually(
            types, lambda t: bool(t & (ending | {"workflow.ApprovalRequested"}))
        )
        if seen & ending:
            continue
        asked = await workflow_events.wait_for(request_id, "workflow.ApprovalRequested")
        if decided_roles is not None and decided_roles.get(amount) != asked.approver_role:
            continue  # pending: the what-if cannot know how this one would be decided
        verdict = "denied" if amount in DENIED else "approved"
        headers = tokens.headers(
            Role.SUPERVISOR,
            asked.approver_role,
            teams=["accounts-payable", "treasury"],
            subject=f"{asked.approver_role}@example.com",
        )
        answer = await api.post(
            f"/v1/instances/{request_id}/approvals/{asked.step}",
            json={"decision": verdict, "rationale": "checked"},
            headers=headers,
        )
        assert answer.status_code == 200, answer.text
        await workflow_events.outcome(request_id)
    return ids


def counted(workflow_events: Any, ids: dict[float, UUID]) -> dict[str, Any]:
    """The figures the what-if reports, counted from the service's events."""
    asked: Counter[str] = Counter()
    escalated: Counter[str] = Counter()
    completed = pending = 0
    waiting: Counter[str] = Counter()
    for request_id in ids.values():
        events = workflow_events.of(request_id)
        roles = [
            e.payload.approver_role for e in events if isinstance(e.payload, ApprovalRequested)
        ]
        asked.update(roles)
        types = [e.event_type for e in events]
        if "workflow.EscalatedToCase" in types:
            escalation = next(e.payload for e in events if isinstance(e.payload, EscalatedToCase))
            escalated[str(escalation.reason_code)] += 1
        elif "workflow.InstanceCompleted" in types:
            completed += 1
        else:
            pending += 1
            waiting[roles[-1]] += 1
    return {
        "approvals": dict(asked),
        "escalated": dict(escalated),
        "completed": completed,
        "pending": dict(waiting),
    }


async def test_a_tightened_threshold_predicts_what_the_service_then_does(
    service: WorkflowAssembly,
    intake: Any,
    workflow_events: Any,
    api: httpx.AsyncClient,
    tokens: Tokens,
) -> None:
    since = datetime.now(UTC)
    before = await run_invoices(intake, workflow_events, api, tokens, decided_roles=None)
    until = datetime.now(UTC)
    roles_asked = {
        amount: next(
            (
                e.payload.approver_role
                for e in workflow_events.of(request_id)
                if isinstance(e.payload, ApprovalRequested)
            ),
            "",
        )
        for amount, request_id in before.items()
    }

    async def listed() -> int:
        page = await api.get("/v1/instances", params={"request_type": "invoice_approval"})
        return sum(1 for row in page.json()["items"] if row["status"] != "running")

    await eventually(listed, lambda done: done >= len(AMOUNTS))

    shipped = (shipped_folder() / "invoice_approval.yaml").read_text()
    proposal = shipped.replace("version: 1", "version: 2").replace(*DIRECTOR_FROM)
    asked = {"definition": proposal, "since": since.isoformat(), "until": until.isoformat()}
    answer = await api.post("/v1/what-if", json=asked, headers=tokens.headers(Role.OPS_LEADER))
    assert answer.status_code == 200, answer.text
    predicted = answer.json()["proposed"]
    assert answer.json()["happened"]["requests"] == len(AMOUNTS)
    # The proposal moves the invoices from 5,000 to 10,000 to the finance director.
    assert answer.json()["changed"] == sum(1 for a in AMOUNTS if 5000 <= a < 10000)

    service.registry.publish(parse_definition(proposal, "proposal.yaml"))
    after = await run_invoices(intake, workflow_events, api, tokens, decided_roles=roles_asked)
    lived = counted(workflow_events, after)

    assert lived["approvals"] == predicted["approvals"]
    assert lived["escalated"] == predicted["escalated"]
    assert lived["completed"] == predicted["completed"]
    assert lived["pending"] == predicted["pending"]
    assert lived["pending"] == {"finance-director": sum(1 for a in AMOUNTS if 5000 <= a < 10000)}
