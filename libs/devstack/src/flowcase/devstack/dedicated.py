"""A stack of one's own: Kafka, PostgreSQL and the four services on free ports in a temp folder.

The shared local stack (19092 / 55432) serves every engineer's tests at once. Tests that kill
services, restart the broker or restart the database run on a `DedicatedStack` instead: the
same launcher (`LocalStack`), other ports, its own state folder, removed when it stops.

Its ports are free when chosen, but another stack starting on the machine may take one before
the server binds it: a start that fails on a taken port moves to other ports and tries again.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from flowcase.devstack.layout import Layout, Ports, repo_root
from flowcase.devstack.processes import PortTaken, port_free
from flowcase.devstack.services import SERVICES, WEBHOOK_SINK, Service, ServiceProcess
from flowcase.devstack.stack import LocalStack
from flowcase.events.settings import KafkaSettings

SERVICE_NAMES = tuple(s.name for s in SERVICES)

# Starts of one server, each on other ports, before a taken port is the stack's failure.
PORT_TRIES = 5


def listening_ports() -> range:
    """Where a stack's servers listen: below the kernel's ephemeral range, the ports it gives the
    local end of outgoing connections. A server restarted on a port in that range can find it
    taken by a client of its own: its consumers, reconnecting to it while it is down, at last
    connect to themselves (TCP's self-connect, a local port equal to the one dialled), and the
    broker started again fails to bind ("Address already in use")."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default start of the range
    return range(20000, low) if low > 21000 else range(10000, 20000)


def free_ports(count: int, *, consecutive: bool = False) -> list[int]:
    """Ports nothing holds now (a block of `count` in a row when `consecutive`), all in
    `listening_ports()`."""
    ports = listening_ports()
    found: list[int] = []
    while len(found) < count:
        if consecutive:
            base = random.randint(ports.start, ports.stop - count)
            block = list(range(base, base + count))
            if all(port_free(p) for p in block):
                return block
            continue
        port = random.randint(ports.start, ports.stop - 1)
        if port not in found and port_free(port):
            found.append(port)
    return found


class ChoosePorts(Protocol):
    """How a stack picks its ports: `free_ports`, or a test's own to force a collision."""

    def __call__(self, count: int, *, consecutive: bool = False) -> list[int]: ...


def rss_bytes(pid: int) -> int | None:
    """Resident memory of a process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return 0


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@dataclass
class ServiceInstance:
    """One process of a service (`python -m flowcase.<name>`) that a test may kill and restart."""

    name: str
    port: int
    layout: Layout
    env: dict[str, str]
    package: str | None = None  # the module to run, when not `flowcase.<name>`
    choose_ports: ChoosePorts = free_ports

    def __post_init__(self) -> None:
        self.process = ServiceProcess(Service(self.name, self.port, self.package), self.layout)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid()

    def start(self, *, timeout: float = 90.0) -> None:
        """Start and wait until `/readyz` answers 200, on another port if its own is taken."""
        for attempt in range(1, PORT_TRIES + 1):
            try:
                self.process.start(self.env, timeout=timeout)
                return
            except PortTaken:
                if attempt == PORT_TRIES:
                    raise
                (self.port,) = self.choose_ports(1)
                self.process = ServiceProcess(
                    Service(self.name, self.port, self.package), self.layout
                )

    def kill(self) -> None:
        """SIGKILL: no draining, no commit, no goodbye to the consumer group."""
        pid = self.pid
        if pid is None:
            return
        os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        self.process.pid_file.unlink(missing_ok=True)

    def stop(self) -> None:
        """SIGTERM: HTTP drains, workers commit and leave their groups."""
        self.process.stop()

    def ready(self) -> bool:
        return self.process.ready()


def service_alone(
    name: str,
    home: Path,
    *,
    kafka: KafkaSettings,
    database_url: str,
    env: Mapping[str, str] | None = None,
) -> ServiceInstance:
    """One service as a process of its own (a test may kill -9 it) on a test's copies of the
    topics and its database, its state under `home`; not started."""
    (port,) = free_ports(1)
    return ServiceInstance(
        name,
        port,
        Layout(root=repo_root(), home=home),
        {
            "FLOWCASE_KAFKA_BOOTSTRAP": kafka.bootstrap,
            "FLOWCASE_KAFKA_TOPIC_SUFFIX": kafka.topic_suffix,
            "FLOWCASE_DATABASE_URL": database_url,
            **(env or {}),
        },
    )


@dataclass
class DedicatedStack:
    home: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="flowcase-dedicated-")))
    service_env: dict[str, str] = field(default_factory=dict)  # added to every service's env
    choose_ports: ChoosePorts = free_ports

    def __post_init__(self) -> None:
        # PostgreSQL runs as its own user when we are root: it must reach the folder.
        self.home.chmod(0o755)
        self.layout = Layout(root=repo_root(), home=self.home)
        ports = Ports(kafka=self._kafka_port(), postgres=self._port())
        self.local = LocalStack(layout=self.layout, ports=ports)
        self.services: dict[str, ServiceInstance] = {}
        self.replicas: list[ServiceInstance] = []
        self.sink = self._instance(WEBHOOK_SINK.name, self.layout, {}, WEBHOOK_SINK.package)

    def _kafka_port(self) -> int:
        """The first of four in a row: the listener, the controller's, the faults listener and
        the tests' fault proxy."""
        return self.choose_ports(4, consecutive=True)[0]

    def _port(self) -> int:
        (port,) = self.choose_ports(1)
        return port

    def _instance(
        self, name: str, layout: Layout, env: dict[str, str], package: str | None = None
    ) -> ServiceInstance:
        return ServiceInstance(
            name, self._port(), layout, env, package=package, choose_ports=self.choose_ports
        )

    @property
    def kafka_bootstrap(self) -> str:
        return self.local.kafka.bootstrap

    @property
    def admin_database_url(self) -> str:
        return self.local.postgres.dsn

    def database_url(self, service: str) -> str:
        return self.local.postgres.database_url(f"flowcase_{service}")

    def start_infrastructure(self) -> None:
        """Start Kafka and PostgreSQL; one whose port was taken since it was chosen moves."""
        self._reuse_kafka_classpath()
        for attempt in range(1, PORT_TRIES + 1):
            try:
                self.local.start_infrastructure()
                return
            except PortTaken as taken:
                if attempt == PORT_TRIES:
                    raise
                self.local = LocalStack(layout=self.layout, ports=self._ports_without(taken.port))

    def _ports_without(self, taken: int) -> Ports:
        """The stack's ports with the server that needs `taken` moved to others."""
        ports = self.local.ports
        if taken in (ports.kafka, ports.kafka_controller, ports.kafka_faults):
            return Ports(kafka=self._kafka_port(), postgres=ports.postgres)
        return Ports(kafka=ports.kafka, postgres=self._port())

    def _reuse_kafka_classpath(self) -> None:
        """The shared stack's resolved classpath saves a Maven run (same pom, same ~/.m2)."""
        shared = Layout.default().home / "kafka" / "classpath.txt"
        mine = self.local.kafka.folder / "classpath.txt"
        if shared.exists() and not mine.exists():
            mine.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(shared, mine)

    def env_of(self, name: str) -> dict[str, str]:
        env = {**self.local.service_env(name), **self.service_env}
        if name == "workflow":
            env["FLOWCASE_WORKFLOW_CONNECTOR_GATEWAY_URL"] = f"{self.sink.url}/hooks"
        return env

    def add_service(self, name: str) -> ServiceInstance:
        instance = self._instance(name, self.layout, self.env_of(name))
        self.services[name] = instance
        return instance

    def replica(self, name: str) -> ServiceInstance:
        """Another process of a service, in its own state folder (pid file, log), not started."""
        home = self.home / f"replica-{len(self.replicas) + 1}"
        home.mkdir()
        layout = Layout(root=self.layout.root, home=home)
        self.replicas.append(self._instance(name, layout, self.env_of(name)))
        return self.replicas[-1]

    def start_services(self, names: tuple[str, ...] = SERVICE_NAMES) -> None:
        """Start the webhook sink (every workflow connector answers 200), then the services
        (those not added before are added now, with the port the sink started on)."""
        self.sink.start()
        for name in names:
            (self.services.get(name) or self.add_service(name)).start()

    def restart_kafka(self) -> None:
        self.local.kafka.stop()
        self.local.kafka.start()

    def restart_postgres(self) -> None:
        self.local.postgres.stop()
        self.local.postgres.start()

    def memory(self) -> dict[str, int | None]:
        """RSS of each service process, of Kafka, and of PostgreSQL with its backends."""
        figures: dict[str, int | None] = {
            name: rss_bytes(s.pid) if s.pid else None for name, s in self.services.items()
        }
        kafka = self.local.kafka.pid()
        figures["kafka"] = rss_bytes(kafka) if kafka else None
        figures["postgres"] = self._postgres_rss()
        return figures

    def postgres_pid(self) -> int | None:
        """The postmaster's pid (its backends are its children), None when it is down."""
        pid_file = self.local.postgres.data / "postmaster.pid"
        try:
            return int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _postgres_rss(self) -> int | None:
        pid = self.postgres_pid()
        if pid is None:
            return None
        return sum(rss_bytes(p) or 0 for p in (pid, *_children(pid)))

    def stop(self, *, keep_logs: Path | None = None) -> None:
        """Stop everything and remove the state folder (its logs copied to `keep_logs`)."""
        for instance in [*self.replicas, *self.services.values(), self.sink]:
            instance.stop()
        self.local.stop(["kafka", "postgres"])
        if keep_logs is not None:
            for logs in self.home.glob("**/logs"):
                shutil.copytree(
                    logs, keep_logs / logs.parent.relative_to(self.home), dirs_exist_ok=True
                )
        outside = self.local.postgres.folder
        shutil.rmtree(self.home, ignore_errors=True)
        if not outside.is_relative_to(self.home):
            shutil.rmtree(outside, ignore_errors=True)
