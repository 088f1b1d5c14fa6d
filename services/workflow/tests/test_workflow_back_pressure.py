"""Back-pressure: an overloaded workflow finishes what it started before it starts more."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from uuid import uuid4

from eventsourcing.persistence import Tracking

from flowcase.events.catalogue import Priority
from flowcase.events.catalogue.intake import Channel, RequestSubmitted
from flowcase.workflow.application import WorkflowApplication
from flowcase.workflow.effects import RunAction
from flowcase.workflow.registry import DefinitionRegistry
from flowcase.workflow.service import WorkflowService
from flowcase.workflow.triggers import ReportActionSucceeded

T0 = datetime(2026, 11, 24, 9, tzinfo=UTC)


class HeldConnector:
    """Answers every action once `release` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def run(self, action: RunAction) -> ReportActionSucceeded:
        await self.release.wait()
        return ReportActionSucceeded(step=action.step)


def password_reset() -> RequestSubmitted:
    return RequestSubmitted(
        request_id=uuid4(),
        request_type="password_reset",
        requester="jdoe@example.com",
        priority=Priority.NORMAL,
        submitted_at=T0,
        channel=Channel.KAFKA,
        payload={"account": "jdoe", "system": "okta"},
    )


async def test_the_consumer_waits_while_too_many_effects_are_in_flight(shipped) -> None:
    held = HeldConnector()
    service = WorkflowService(
        WorkflowApplication(DefinitionRegistry(shipped.values())),
        read_model=None,  # type: ignore[arg-type]  # only the recovery at start reads it
        connectors={"identity-provider": held, "email": held},
        clock=lambda: T0,
        max_effects_in_flight=2,
    )
    try:
        await asyncio.wait_for(service.room_for_more(), 1)
        for offset in range(2):
            tracking = Tracking(application_name="requests:0", notification_id=offset)
            await service.start_request(password_reset(), tracking)
        waiting = asyncio.create_task(service.room_for_more())
        await asyncio.sleep(0.1)
        assert not waiting.done(), "two actions in flight, and room for more"
        held.release.set()
        await asyncio.wait_for(waiting, 5)
        await service.idle()
    finally:
        service.close()
