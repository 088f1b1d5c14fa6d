"""The workflow service's own settings (FLOWCASE_WORKFLOW_* environment variables); Kafka,
PostgreSQL and HTTP come from the shared settings of `flowcase.events` and `flowcase.runtime`."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkflowSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLOWCASE_WORKFLOW_", extra="ignore")

    definitions_folder: Path | None = Field(
        default=None,
        description="Folder of process definitions (*.yaml) to publish at start; the definitions "
        "shipped with the service by default.",
    )
    connectors: dict[str, str] = Field(
        default_factory=dict,
        description="Webhook URL of each connector, by the name definitions use (`connector:` of "
        "an action step, `channel:` of a notify step), as JSON: "
        '{"identity-provider": "https://idp.example/hooks/flowcase"}.',
    )
    connector_gateway_url: str | None = Field(
        default=None,
        description="Base URL of a gateway that routes every connector not named in "
        "`connectors`: its calls go to `{gateway}/{name}`. The local stack points it at its "
        "webhook sink.",
    )
    connector_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Timeout of one webhook call (one attempt)."
    )
    timer_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often the timer loop looks for due timers."
    )
    consumer_group: str = "workflow"
    store_threads: int = Field(
        default=8, ge=1, description="Threads (and store connections) for event-store calls."
    )
    instance_cache_size: int = Field(
        # Ten times the effects in flight: every instance waiting on an action's report is held.
        # A larger cache cost CPU and memory and held nothing the next trigger needed
        # (10,000 against 2,000: docs/performance.md).
        default=2_000,
        ge=0,
        description="Instances kept in memory between their triggers (0: none): a trigger is "
        "decided on the held instance, and one another process saved since conflicts on save "
        "and is read again.",
    )
    max_effects_in_flight: int = Field(
        # A second or two of work at the rate one process completes: enough to keep the
        # connectors busy, few enough that an overload waits in Kafka, not inside the process
        # (at 1000, 300 requests/s offered completed half of what 200/s did; docs/performance.md).
        default=200,
        ge=1,
        description="Actions and notifications under way at once; beyond it the consumer waits "
        "before starting more requests (back-pressure: the rest waits in Kafka as lag).",
    )
    action_recovery_seconds: float = Field(
        default=120.0,
        gt=0,
        description="An instance left this long at an action step that no action of this "
        "process is carrying out has its action run again, with the same idempotency key: the "
        "backstop for an effect lost between a commit and its carrying out. Longer than an "
        "action's retries take, so replicas never run one another's actions twice.",
    )
