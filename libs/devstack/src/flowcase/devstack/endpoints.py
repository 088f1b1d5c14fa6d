"""Where tests find Kafka and PostgreSQL: the environment, testcontainers, or the local stack."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from flowcase.devstack.processes import alive


@dataclass
class Endpoints:
    kafka_bootstrap: str
    database_url: str  # a superuser DSN; tests create their own databases through it
    origin: str  # "environment", "testcontainers" or "local"
    # (listener port the proxy forwards to, port the broker advertises for it), local stack only
    kafka_fault_ports: tuple[int, int] | None = None
    _cleanup: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def close(self) -> None:
        for cleanup in reversed(self._cleanup):
            cleanup()


def from_environment() -> Endpoints | None:
    kafka = os.environ.get("FLOWCASE_KAFKA_BOOTSTRAP")
    database = os.environ.get("FLOWCASE_DATABASE_URL")
    if not (kafka and database):
        return None
    return Endpoints(kafka_bootstrap=kafka, database_url=database, origin="environment")


def docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


def from_testcontainers() -> Endpoints:
    import socket

    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs
    from testcontainers.postgres import PostgresContainer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        kafka_port = sock.getsockname()[1]
    kafka = (
        DockerContainer("apache/kafka:4.1.1")
        .with_bind_ports(9092, kafka_port)
        .with_env("KAFKA_NODE_ID", "1")
        .with_env("KAFKA_PROCESS_ROLES", "broker,controller")
        .with_env("KAFKA_LISTENERS", "PLAINTEXT://:9092,CONTROLLER://:9093")
        .with_env("KAFKA_ADVERTISED_LISTENERS", f"PLAINTEXT://127.0.0.1:{kafka_port}")
        .with_env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .with_env(
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
        )
        .with_env("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093")
        .with_env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
    )
    postgres = PostgresContainer(
        "postgres:17", username="flowcase", password="flowcase", dbname="postgres"
    )
    kafka.start()
    wait_for_logs(kafka, "Kafka Server started", timeout=120)
    postgres.start()
    dsn = postgres.get_connection_url(driver=None)
    return Endpoints(
        kafka_bootstrap=f"127.0.0.1:{kafka_port}",
        database_url=dsn,
        origin="testcontainers",
        _cleanup=[kafka.stop, postgres.stop],
    )


def from_local_stack() -> Endpoints:
    """The local stack, shared by every test session running at once.

    Each session registers as a user. Parts a session had to start are remembered, and the last
    user to leave stops them; a stack that was already up (`make up`) is left as it was.
    """
    from flowcase.devstack.stack import LocalStack

    stack = LocalStack()
    users = stack.layout.run / "test-sessions"
    users.mkdir(parents=True, exist_ok=True)
    me = users / str(os.getpid())
    me.touch()
    started_file = stack.layout.run / "started-by-tests"
    started = stack.start_infrastructure()
    if started:
        started_file.write_text("\n".join(started))

    def leave() -> None:
        me.unlink(missing_ok=True)
        if any(alive(int(p.name)) for p in users.iterdir() if p.name.isdigit()):
            return
        if started_file.exists():
            stack.stop(started_file.read_text().split())
            started_file.unlink(missing_ok=True)

    return Endpoints(
        kafka_bootstrap=stack.kafka.bootstrap,
        database_url=stack.postgres.dsn,
        origin="local",
        kafka_fault_ports=(stack.ports.kafka_faults, stack.ports.kafka_faults_proxy),
        _cleanup=[leave],
    )


def resolve() -> Endpoints:
    return from_environment() or (from_testcontainers() if docker_answers() else from_local_stack())
