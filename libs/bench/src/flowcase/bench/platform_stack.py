"""The platform under test: a `DedicatedStack` of the benchmark's own (adapter).

Its own Kafka, PostgreSQL, the four services and the webhook sink on free ports, so a run never
disturbs the shared local stack and needs nothing running beforehand.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from flowcase.bench.process_sampler import Watched
from flowcase.devstack.dedicated import DedicatedStack, ServiceInstance
from flowcase.events.settings import KafkaSettings
from flowcase.runtime.auth import Role, mint_token
from flowcase.runtime.settings import AuthSettings

# The teams the approval processes route to (invoice_approval.yaml, purchase_order.yaml): the
# driver's supervisor must see an instance to decide its approval.
APPROVING_TEAMS = ("accounts-payable", "treasury", "procurement", "it-procurement")


@dataclass
class BenchStack:
    replicas: int = 1  # processes of each replicated service
    replicated: tuple[str, ...] = ("workflow",)
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def __post_init__(self) -> None:
        self.stack = DedicatedStack(
            service_env={
                "FLOWCASE_AUTH_DEV_SECRET": self.secret,
                # The driver is one client offering the whole load: intake's per-client
                # limit would measure the limit, not the platform.
                "FLOWCASE_INTAKE_SUBMIT_RATE_PER_SECOND": "1000000",
                "FLOWCASE_INTAKE_SUBMIT_BURST": "1000000",
            }
        )
        self.auth = AuthSettings(dev_secret=self.secret)
        self.extra: list[ServiceInstance] = []

    async def start(self) -> None:
        await asyncio.to_thread(self.stack.start_infrastructure)
        await asyncio.to_thread(self.stack.start_services)
        for name in self.replicated:
            for _ in range(self.replicas - 1):
                replica = self.stack.replica(name)
                await asyncio.to_thread(replica.start)
                self.extra.append(replica)

    async def stop(self) -> None:
        await asyncio.to_thread(self.stack.stop)

    @property
    def kafka(self) -> KafkaSettings:
        """Read after the start: Kafka moves to other ports when one was taken meanwhile."""
        return KafkaSettings(bootstrap=self.stack.kafka_bootstrap)

    def url(self, service: str) -> str:
        return self.stack.services[service].url

    def bearer(
        self, subject: str, *roles: Role | str, teams: tuple[str, ...] = ()
    ) -> dict[str, str]:
        token = mint_token(
            self.auth, subject=subject, roles=roles, teams=teams, ttl=timedelta(days=1)
        )
        return {"Authorization": f"Bearer {token}"}

    def workflow_database_url(self) -> str:
        return self.stack.database_url("workflow")

    @property
    def admin_database_url(self) -> str:
        return self.stack.admin_database_url

    def processes(self) -> dict[str, Watched]:
        """Each process the run samples, by name (replicas numbered from 2)."""
        watched = {name: Watched(s.pid) for name, s in self.stack.services.items()}
        counts: dict[str, int] = {}
        for replica in self.extra:
            counts[replica.name] = counts.get(replica.name, 1) + 1
            watched[f"{replica.name}-{counts[replica.name]}"] = Watched(replica.pid)
        watched["webhook-sink"] = Watched(self.stack.sink.pid)
        watched["kafka"] = Watched(self.stack.local.kafka.pid())
        watched["postgres"] = Watched(self.stack.postgres_pid())
        return watched
