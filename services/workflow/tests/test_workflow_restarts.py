"""What must survive a restart of the service: durable timers, and the definition version each
running instance started on. The service is built, stopped and built again on one database."""

from __future__ import annotations

import asyncio
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from flowcase.devstack.dev_tokens import Tokens
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.runtime.auth import Role
from flowcase.workflow.composition import build_service
from flowcase.workflow.definition_files import shipped_folder
from flowcase.workflow.settings import WorkflowSettings

INVOICE = {"invoice_id": "INV-9", "vendor": "Acme", "amount": 1840.5, "currency": "EUR"}
CHEAP_SOFTWARE = {"software": "tableau", "monthly_cost": 70, "justification": "Sales dashboards"}


async def test_timers_fire_once_after_a_restart(
    module_kafka: KafkaSettings,
    module_database: DatabaseSettings,
    far_side: Any,
    intake: Any,
    workflow_events: Any,
    settable_clock: Any,
) -> None:
    settings = WorkflowSettings(connectors=far_side.connectors(), timer_poll_seconds=0.1)
    first = await build_service(module_kafka, module_database, settings, clock=settable_clock)
    async with first.running():
        invoice = await intake.submit("invoice_approval", INVOICE)
        software = await intake.submit("software_access", CHEAP_SOFTWARE)
        await workflow_events.wait_for(invoice, "workflow.ApprovalRequested")
        await workflow_events.wait_for(software, "workflow.ApprovalRequested")

    # Down for five hours: the software request's 4h SLA has run out, nothing else has.
    settable_clock.offset = timedelta(hours=5)
    restarted_at = settable_clock()
    second = await build_service(module_kafka, module_database, settings, clock=settable_clock)
    async with second.running():
        breached = await workflow_events.outcome(software)
        assert (str(breached.reason_code), breached.step) == ("sla_breached", "acknowledge")
        assert "workflow.EscalatedToCase" not in workflow_events.types(invoice)
        # Two days on, the invoice's approval times out (before its 3-day SLA would).
        settable_clock.offset = timedelta(days=2, hours=1)
        two_days_on = settable_clock()
        timed_out = await workflow_events.outcome(invoice)
        assert str(timed_out.reason_code) == "approval_timed_out"
    # Both fired by the restarted service, on its clock. (Not by counting the loop's firings: a
    # firing whose transaction the database rolled back is fired again, or found already spent.)
    assert _escalated_at(workflow_events, software) >= restarted_at
    assert _escalated_at(workflow_events, invoice) >= two_days_on

    third = await build_service(module_kafka, module_database, settings, clock=settable_clock)
    async with third.running():
        await asyncio.wait_for(third.projection.caught_up.wait(), 60)
        assert await third.timers.fire_due() == 0  # nothing left to fire
    for request_id in (invoice, software):
        types = workflow_events.types(request_id)
        assert types.count("workflow.EscalatedToCase") == 1
        assert types.count("workflow.SlaBreached") == (1 if request_id == software else 0)


def _escalated_at(workflow_events: Any, request_id: UUID) -> datetime:
    (escalated,) = (
        e for e in workflow_events.of(request_id) if e.event_type == "workflow.EscalatedToCase"
    )
    return escalated.occurred_at


async def test_a_new_version_never_changes_a_running_instance(
    module_kafka: KafkaSettings,
    module_database: DatabaseSettings,
    far_side: Any,
    tokens: Tokens,
    intake: Any,
    workflow_events: Any,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "processes"
    shutil.copytree(shipped_folder(), folder)
    settings = WorkflowSettings(
        connectors=far_side.connectors(), definitions_folder=folder, timer_poll_seconds=0.1
    )
    first = await build_service(module_kafka, module_database, settings)
    async with first.running():
        running = await intake.submit("invoice_approval", INVOICE)
        await workflow_events.wait_for(running, "workflow.ApprovalRequested")

    # Version 2 needs no approval below 5000; the file of version 1 is gone from the folder.
    v1 = (folder / "invoice_approval.yaml").read_text()
    v2 = v1.replace("version: 1", "version: 2", 1).replace(
        "payload.amount >= 1000", "payload.amount >= 5000"
    )
    (folder / "invoice_approval.yaml").write_text(v2)
    second = await build_service(module_kafka, module_database, settings)
    transport = httpx.ASGITransport(app=second.app)
    async with (
        second.running(),
        httpx.AsyncClient(
            transport=transport,
            base_url="http://workflow",
            headers=tokens.headers(
                Role.SUPERVISOR,
                "finance-manager",
                teams=["accounts-payable"],
                subject="grace@example.com",
            ),
        ) as api,
    ):
        newer = await intake.submit("invoice_approval", {**INVOICE, "invoice_id": "INV-10"})
        assert str((await workflow_events.outcome(newer)).outcome) == "completed"
        started = await workflow_events.wait_for(newer, "workflow.InstanceStarted")
        assert started.definition_version == 2
        # The running instance is still on version 1, still waiting for its approval.
        view = (await api.get(f"/v1/instances/{running}")).json()
        assert (view["definition_version"], view["current_step"]) == (1, "finance-approval")
        answer = await api.post(
            f"/v1/instances/{running}/approvals/finance-approval",
            json={"decision": "approved"},
        )
        assert answer.status_code == 200
        assert str((await workflow_events.outcome(running)).outcome) == "completed"
        listed = (await api.get("/v1/definitions")).json()
        assert {d["request_type"]: d["versions"] for d in listed}["invoice_approval"] == [1, 2]


async def test_an_action_interrupted_by_a_restart_runs_again_with_the_same_key(
    module_kafka: KafkaSettings,
    module_database: DatabaseSettings,
    far_side: Any,
    intake: Any,
    workflow_events: Any,
) -> None:
    settings = WorkflowSettings(connectors=far_side.connectors(), timer_poll_seconds=0.1)
    first = await build_service(module_kafka, module_database, settings)
    async with first.running():
        request_id = await intake.submit(
            "password_reset", {"account": "slow-once", "system": "okta"}
        )
        await far_side.hanging.wait()  # stopped while the identity provider has not answered

    second = await build_service(module_kafka, module_database, settings)
    async with second.running():
        assert str((await workflow_events.outcome(request_id)).outcome) == "completed"
    resets = [c for c in far_side.calls_for(request_id) if c["step"] == "reset-password"]
    assert [c["idempotency_key"] for c in resets] == [f"{request_id}/reset-password"] * 2
