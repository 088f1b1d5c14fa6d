"""The port through which an action step reaches the outside world.

A connector carries out one `RunAction` effect, retrying as its policy says, and answers with the
trigger to feed back to the instance. It reports a failure rather than raising, because a failed
action is something the workflow handles (by escalating), not a crash of the service.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, TypeAlias

from flowcase.workflow.effects import RunAction
from flowcase.workflow.triggers import ReportActionFailed, ReportActionSucceeded

ActionReport: TypeAlias = ReportActionSucceeded | ReportActionFailed


class ActionConnector(Protocol):
    async def run(self, action: RunAction) -> ActionReport: ...


async def run_action(connectors: Mapping[str, ActionConnector], action: RunAction) -> ActionReport:
    """Run `action` through the connector its definition names."""
    connector = connectors.get(action.connector)
    if connector is None:
        error = f"no connector named {action.connector!r} is configured"
        return ReportActionFailed(step=action.step, attempts=1, error=error)
    return await connector.run(action)
