"""What the engine asks the outside world to do; the service carries these out after it has
saved the events that caused them. Each carries an id that stays the same if the service has to
carry it out again, so doing it twice has the effect of doing it once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from flowcase.events.catalogue import UtcDatetime


class _Effect(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: UUID


class ScheduleTimer(_Effect):
    """Deliver `FireTimer(timer_id)` to this instance at `fire_at`."""

    timer_id: str
    fire_at: UtcDatetime


class CancelTimer(_Effect):
    timer_id: str


class RunAction(_Effect):
    """Have connector `connector` perform `operation`, retrying per the policy, and report back
    with `ReportActionSucceeded` or `ReportActionFailed`."""

    step: str
    connector: str
    operation: str
    input: dict[str, Any]
    idempotency_key: str
    attempts: int
    backoff: timedelta
    max_backoff: timedelta


class SendNotification(_Effect):
    step: str
    channel: str
    recipients: tuple[str, ...]
    template: str
    data: dict[str, Any]
    idempotency_key: str


Effect = ScheduleTimer | CancelTimer | RunAction | SendNotification
