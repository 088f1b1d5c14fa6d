"""The whole local platform: Kafka, PostgreSQL, topics, databases and the installed services."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
from collections.abc import Iterator
from dataclasses import dataclass, field

from flowcase.devstack.dev_secret import dev_secret
from flowcase.devstack.kafka import KafkaBroker
from flowcase.devstack.layout import Layout, Ports
from flowcase.devstack.postgres import PostgresServer
from flowcase.devstack.provision import ProvisionSettings, provision
from flowcase.devstack.services import SERVICES, WEBHOOK_SINK, ServiceProcess
from flowcase.events.settings import KafkaSettings


@dataclass
class LocalStack:
    layout: Layout = field(default_factory=Layout.default)
    ports: Ports = field(default_factory=Ports.from_env)

    def __post_init__(self) -> None:
        self.kafka = KafkaBroker(self.layout, self.ports)
        self.postgres = PostgresServer(self.layout, self.ports)
        self.services = [
            ServiceProcess(s, self.layout, supervised=True) for s in SERVICES if s.installed()
        ]
        self.sink = ServiceProcess(WEBHOOK_SINK, self.layout, supervised=True)

    def start_infrastructure(self) -> list[str]:
        """Start Kafka and PostgreSQL (each unless running), create topics and databases.

        Returns the names of the parts this call started, so a caller can stop only those.
        """
        started = []
        with self._starting():
            if self.postgres.start():
                started.append("postgres")
            if self.kafka.start():
                started.append("kafka")
            asyncio.run(self._provision())
        return started

    @contextlib.contextmanager
    def _starting(self) -> Iterator[None]:
        """One starter at a time per stack folder: a `flowcase stack up` and a test session
        starting together would otherwise both launch a broker (the loser's clean-up leaving the
        winner without its pid file, unknown to `stack down`) and race to create databases."""
        self.layout.run.mkdir(parents=True, exist_ok=True)
        with open(self.layout.run / "start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    async def _provision(self) -> None:
        await provision(
            KafkaSettings(bootstrap=self.kafka.bootstrap),
            ProvisionSettings(admin_database_url=self.postgres.dsn),
        )

    def service_env(self, name: str) -> dict[str, str]:
        env = {
            "FLOWCASE_KAFKA_BOOTSTRAP": self.kafka.bootstrap,
            "FLOWCASE_DATABASE_URL": self.postgres.database_url(f"flowcase_{name}"),
            "FLOWCASE_AUTH_DEV_SECRET": dev_secret(self.layout.home),
        }
        if name == "workflow":
            env["FLOWCASE_WORKFLOW_CONNECTOR_GATEWAY_URL"] = f"{self.sink.service.url}/hooks"
        return env

    def start_services(self) -> None:
        if self.services:
            self.sink.start({})
        for proc in self.services:
            proc.start(self.service_env(proc.service.name))

    def stop(self, parts: list[str] | None = None) -> None:
        """Stop services first (they drain to Kafka), then Kafka, then PostgreSQL."""
        for proc in reversed(self.services):
            proc.stop()
        self.sink.stop()
        if parts is None or "kafka" in parts:
            self.kafka.stop()
        if parts is None or "postgres" in parts:
            self.postgres.stop()
