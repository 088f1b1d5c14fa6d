"""Governance's own settings (FLOWCASE_GOVERNANCE_* environment variables)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class GovernanceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLOWCASE_GOVERNANCE_", extra="ignore")

    consumer_group: str = Field(
        default="governance", description="Kafka consumer group of the projection."
    )
    default_sla_seconds: float | None = Field(
        default=None,
        gt=0,
        description="Deadline of a step whose entry stated no SLA due time; none by default.",
    )
    batch_size: int = Field(
        default=1000, ge=1, description="Most records the projection folds in one transaction."
    )

    @property
    def default_sla(self) -> timedelta | None:
        return (
            None
            if self.default_sla_seconds is None
            else timedelta(seconds=self.default_sla_seconds)
        )
