"""A single-node Apache Kafka 4 broker in KRaft mode, from jars Maven resolves from Central."""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from flowcase.devstack.layout import Layout, Ports
from flowcase.devstack.processes import (
    StackError,
    StartUp,
    alive,
    port_open,
    read_pid,
    spawn,
    terminate,
    wait_until,
)

MAIN_CLASS = "kafka.Kafka"
HEAP = ("-Xms256m", "-Xmx768m")


@dataclass
class KafkaBroker:
    layout: Layout
    ports: Ports

    @property
    def folder(self) -> Path:
        return self.layout.home / "kafka"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.ports.kafka}"

    @property
    def fault_bootstrap(self) -> str:
        """Bootstrap through the fault-injection proxy (tests start the proxy)."""
        return f"127.0.0.1:{self.ports.kafka_faults_proxy}"

    @property
    def log_file(self) -> Path:
        """The JVM's own output (a failure before logging starts); the broker logs to
        `server_log_file`."""
        return self.layout.logs / "kafka.log"

    @property
    def server_log_file(self) -> Path:
        return self.layout.logs / "kafka-server.log"

    @property
    def pid_file(self) -> Path:
        return self.layout.pid_file("kafka")

    def pid(self) -> int | None:
        return read_pid(self.pid_file, MAIN_CLASS)

    def resolve_jars(self) -> Path:
        """Resolve the broker's classpath with Maven once; later starts reuse it (and ~/.m2)."""
        pom = self.layout.root / "deploy" / "kafka" / "pom.xml"
        classpath = self.folder / "classpath.txt"
        if (
            classpath.exists()
            and classpath.stat().st_mtime >= pom.stat().st_mtime
            and all(Path(jar).exists() for jar in classpath.read_text().strip().split(":"))
        ):
            return classpath
        if shutil.which("mvn") is None:
            raise StackError("Maven (mvn) is not installed: run `make install` first")
        self.folder.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(pom),
                "dependency:build-classpath",
                f"-Dmdep.outputFile={classpath}",
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise StackError(
                f"Maven could not resolve the Kafka jars:\n{result.stdout}{result.stderr}"
            )
        return classpath

    def _write_config(self) -> Path:
        data = self.folder / "data"
        p = self.ports
        config = self.folder / "server.properties"
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{p.kafka_controller}",
                    f"listeners=PLAINTEXT://127.0.0.1:{p.kafka},"
                    f"CONTROLLER://127.0.0.1:{p.kafka_controller},"
                    f"FAULTS://127.0.0.1:{p.kafka_faults}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{p.kafka},"
                    f"FAULTS://127.0.0.1:{p.kafka_faults_proxy}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map="
                    "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,FAULTS:PLAINTEXT",
                    f"log.dirs={data}",
                    "num.partitions=3",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=10",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=true",
                    "",
                ]
            )
        )
        return config

    def _java_args(self, classpath: Path) -> list[str]:
        log4j = self.layout.root / "deploy" / "kafka" / "log4j2.properties"
        # An argument file keeps the long classpath off the command line (and out of `ps`).
        argfile = self.folder / "java.args"
        argfile.write_text(f"-cp {classpath.read_text().strip()}\n")
        return [
            "java",
            *HEAP,
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={self.layout.logs}",
            f"@{argfile}",
        ]

    def _format_storage(
        self, classpath: Path, config: Path, cluster_id: uuid.UUID | None = None
    ) -> None:
        if (self.folder / "data" / "meta.properties").exists():
            return  # formatted before: formatting again would refuse or wipe the cluster id
        result = subprocess.run(
            [
                *self._java_args(classpath),
                "kafka.tools.StorageTool",
                "format",
                # Joined with `=`: one id in 32 starts with "-", which a separate argument would
                # make look like an option.
                f"--cluster-id={_kafka_cluster_id(cluster_id or uuid.uuid4())}",
                f"--config={config}",
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise StackError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")

    def start(self, *, timeout: float = 90.0) -> bool:
        """Start the broker unless it already runs; True if this call started it."""
        if self.pid() is not None:
            wait_until(self.healthy, timeout=timeout, startup=self._startup())
            return False
        ports = (self.ports.kafka, self.ports.kafka_controller, self.ports.kafka_faults)
        # Before the jars and the storage format: seconds of work a taken port would waste.
        self._startup(ports).check_ports()
        if shutil.which("java") is None:
            raise StackError("Java 17 is not installed: run `make install` first")
        classpath = self.resolve_jars()
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        self._format_storage(classpath, config)
        # Its log from here on: the storage tool logs a configuration dump of its own.
        startup = self._startup(ports)
        pid = spawn(
            [*self._java_args(classpath), MAIN_CLASS, str(config)],
            log_file=self.log_file,
            pid_file=self.pid_file,
            startup=startup,
        )
        wait_until(self.healthy, timeout=timeout, startup=startup, still_running=lambda: alive(pid))
        return True

    def _startup(self, ports: tuple[int, ...] = ()) -> StartUp:
        return StartUp(
            "Kafka",
            logs=(self.server_log_file, self.log_file),
            ports=ports,
            hint="stop that process, or move this stack's Kafka with FLOWCASE_KAFKA_PORT "
            f"(now {self.ports.kafka}; Kafka and its tests use it and the three ports after it)",
        )

    def healthy(self) -> bool:
        if not port_open(self.ports.kafka):
            return False
        return asyncio.run(_metadata_answers(self.bootstrap))

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            terminate(pid, timeout=30)
        self.pid_file.unlink(missing_ok=True)


def _kafka_cluster_id(value: uuid.UUID) -> str:
    """Kafka wants its cluster id as a URL-safe base64 UUID without padding."""
    return base64.urlsafe_b64encode(value.bytes).decode().rstrip("=")


async def _metadata_answers(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await asyncio.wait_for(admin.start(), 5)
        await asyncio.wait_for(admin.list_topics(), 5)
        return True
    except Exception:
        return False
    finally:
        await admin.close()
