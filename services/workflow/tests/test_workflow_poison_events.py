"""A stored instance the read model cannot hold must not stop the others' rows and timers.

Intake refuses a NUL in a requester now (the boundary policy), but the store keeps whatever the
engine accepted, from an older intake or a raw writer of the topic: here the instance is stored
straight through the application, as the consumer would have. The projection sets that one
aside (a dead letter with the reason) and goes on; later requests are listed and their timers
fire.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from prometheus_client import REGISTRY

from flowcase.events import Topic
from flowcase.events.kafka import DeadLetterHeader, read_to_end
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.workflow.composition import build_service
from flowcase.workflow.projection import NAME as PROJECTION
from flowcase.workflow.settings import WorkflowSettings
from flowcase.workflow.state import instance_id
from flowcase.workflow.triggers import Submit

CHEAP_SOFTWARE = {"software": "tableau", "monthly_cost": 70, "justification": "Sales dashboards"}


async def _listed_at(database: DatabaseSettings, request_id: UUID) -> str | None:
    """The step `GET /v1/instances` shows the request at; None while it is not listed."""
    conn = await asyncpg.connect(database.url)
    try:
        step = await conn.fetchval(
            "SELECT current_step FROM workflow_instances WHERE request_id = $1", request_id
        )
    finally:
        await conn.close()
    return str(step) if step is not None else None


def _set_aside() -> float:
    value = REGISTRY.get_sample_value("flowcase_follower_set_aside_total", {"follower": PROJECTION})
    return value or 0.0


async def test_an_instance_the_tables_cannot_hold_is_set_aside_and_timers_go_on(
    module_kafka: KafkaSettings,
    module_database: DatabaseSettings,
    far_side: Any,
    intake: Any,
    workflow_events: Any,
    settable_clock: Any,
) -> None:
    settings = WorkflowSettings(connectors=far_side.connectors(), timer_poll_seconds=0.1)
    service = await build_service(module_kafka, module_database, settings, clock=settable_clock)
    poison = uuid4()
    submission = Submit(
        request_id=poison,
        request_type="software_access",
        requester="nul\u0000requester",
        payload=CHEAP_SOFTWARE,
    )
    await asyncio.to_thread(service.application.submit, submission, datetime.now(UTC))
    before = _set_aside()
    async with service.running():
        later = await intake.submit("software_access", CHEAP_SOFTWARE)
        await workflow_events.wait_for(later, "workflow.ApprovalRequested", timeout=60)
        deadline = asyncio.get_running_loop().time() + 60
        while (step := await _listed_at(module_database, later)) is None:
            assert asyncio.get_running_loop().time() < deadline, "the later request not listed"
            await asyncio.sleep(0.1)
        assert step == "manager-approval"
        # Its 4-hour SLA was armed behind the set-aside instance, and fires.
        settable_clock.offset = timedelta(hours=5)
        breached = await workflow_events.outcome(later, timeout=60)
        assert str(breached.reason_code) == "sla_breached"
        assert await service.projection.readiness() is None
        assert await _listed_at(module_database, poison) is None
    assert _set_aside() >= before + 1

    dead = [
        r
        for r in await read_to_end(module_kafka, module_kafka.topic(Topic.DEADLETTER))
        if dict(r.headers).get(DeadLetterHeader.CONSUMER_GROUP) == PROJECTION.encode()
    ]
    assert dead, "nothing dead-lettered by the projection"
    assert {r.key for r in dead} == {str(instance_id(poison)).encode()}
    headers = dict(dead[0].headers)
    assert headers[DeadLetterHeader.ORIGINAL_TOPIC] == b"eventstore:workflow"
    assert b"CharacterNotInRepertoireError" in headers[DeadLetterHeader.ERROR]
