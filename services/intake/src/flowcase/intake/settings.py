"""Intake's own settings (FLOWCASE_INTAKE_* environment variables); every one has a default."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class IntakeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLOWCASE_INTAKE_", extra="ignore")

    publish_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How long a submission waits for Kafka's acknowledgement before a 503.",
    )
    retry_after_seconds: int = Field(
        default=5, ge=1, description="The Retry-After of a 503 answer."
    )
    database_pool_size: int = Field(default=10, ge=1)
    submit_rate_per_second: float = Field(
        default=20.0,
        gt=0,
        description="Submissions per second each client (token subject) may make on average; "
        "more are answered 429 with Retry-After. Per replica.",
    )
    submit_burst: int = Field(
        default=40,
        ge=1,
        description="Submissions a client may make at once before the rate applies.",
    )
    workflow_consumer_group: str = Field(
        default="workflow",
        description="The consumer group that starts requests (the workflow's "
        "`FLOWCASE_WORKFLOW_CONSUMER_GROUP`): a request it dead-letters can never finish, so "
        "intake's status marks it rejected, with the reason.",
    )
