"""The case service's own settings (FLOWCASE_CASE_* environment variables)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLOWCASE_CASE_", extra="ignore")

    triage_team: str = Field(
        default="triage",
        min_length=1,
        description="The team an unassigned case belongs to (an escalation, or a case opened "
        "directly), until a supervisor assigns it: its agents and supervisors see it.",
    )
    promise_watch_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often the case service looks for escalated requests whose promised "
        "time passed while in their case (`case.PromiseBroken` is stated then, at most this "
        "late).",
    )
