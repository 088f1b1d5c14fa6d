"""The request's promise through the running service: stamped on its start, and stated broken
once by the durable timer when it falls due in the workflow while the service was down."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.workflow.composition import build_service
from flowcase.workflow.definition_files import shipped_folder
from flowcase.workflow.settings import WorkflowSettings

INVOICE = {"invoice_id": "INV-P", "vendor": "Acme", "amount": 1840.5, "currency": "EUR"}


async def test_a_broken_promise_is_stated_once_across_a_restart(
    module_kafka: KafkaSettings,
    module_database: DatabaseSettings,
    far_side: Any,
    intake: Any,
    workflow_events: Any,
    settable_clock: Any,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "processes"
    shutil.copytree(shipped_folder(), folder)
    invoice_file = folder / "invoice_approval.yaml"
    invoice_file.write_text(
        invoice_file.read_text().replace("steps:\n", "resolve_within: {normal: 4h}\nsteps:\n", 1)
    )
    settings = WorkflowSettings(
        connectors=far_side.connectors(), definitions_folder=folder, timer_poll_seconds=0.1
    )
    first = await build_service(module_kafka, module_database, settings, clock=settable_clock)
    async with first.running():
        invoice = await intake.submit("invoice_approval", INVOICE)
        started = await workflow_events.wait_for(invoice, "workflow.InstanceStarted")
        assert started.due_at is not None
        await workflow_events.wait_for(invoice, "workflow.ApprovalRequested")

    # Down for five hours: the promise fell due while the service was away.
    settable_clock.offset = timedelta(hours=5)
    second = await build_service(module_kafka, module_database, settings, clock=settable_clock)
    async with second.running():
        broken = await workflow_events.wait_for(invoice, "workflow.PromiseBroken")
        assert (broken.due_at, broken.step) == (started.due_at, "finance-approval")
        # Spent: the stored state arms it no more, and a late delivery of it (the timer loop
        # delivers at least once) states nothing.
        state = await second.workflow.state(invoice)
        assert state.promise_broken
        assert "request/promise" not in state.timers()
        stored = len(await second.workflow.turns(invoice))
        await second.workflow.fire_timer(invoice, "request/promise")
        assert len(await second.workflow.turns(invoice)) == stored
        # The request goes on where it was: still waiting for its approval.
        assert state.current_step == "finance-approval"
    stated = [e for e in workflow_events.of(invoice) if e.event_type == "workflow.PromiseBroken"]
    assert len({e.event_id for e in stated}) == 1  # a relay's re-publication keeps the id
    assert "workflow.EscalatedToCase" not in workflow_events.types(invoice)
