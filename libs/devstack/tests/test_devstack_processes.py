from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from flowcase.devstack.kafka import KafkaBroker
from flowcase.devstack.layout import Layout, Ports
from flowcase.devstack.postgres import PostgresServer
from flowcase.devstack.processes import (
    PortTaken,
    StackError,
    StartUp,
    log_excerpt,
    read_pid,
    spawn,
)


def test_a_stale_pid_file_is_recognised_and_removed(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid_file = tmp_path / "kafka.pid"
    pid_file.write_text(done.stdout.strip())  # that process has exited
    assert read_pid(pid_file, "kafka.Kafka") is None
    assert not pid_file.exists()


def test_a_pid_file_naming_someone_elses_process_is_not_ours(tmp_path: Path) -> None:
    pid_file = tmp_path / "kafka.pid"
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as other:
        pid_file.write_text(str(other.pid))
        assert read_pid(pid_file, "kafka.Kafka") is None
        other.kill()


def _held_port(*, listening: bool) -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    if listening:
        sock.listen()
    return sock


# Listening, as another broker; or bound only, as a server that has not called listen() yet or
# the local end of a connection: a server cannot bind it either way.
@pytest.mark.parametrize("listening", [True, False], ids=["listening", "bound"])
def test_a_port_taken_by_another_process_is_a_clear_error(tmp_path: Path, listening: bool) -> None:
    layout = Layout(root=Layout.default().root, home=tmp_path)
    # A listener is traced to its process (this one); a socket only bound is not listed.
    holder = f"in use by pid {os.getpid()} (" if listening else "in use by a process not found"
    with _held_port(listening=listening) as sock:
        port = sock.getsockname()[1]
        with pytest.raises(PortTaken, match=f"port {port} is in use") as kafka:
            KafkaBroker(layout, Ports(kafka=port, postgres=1)).start(timeout=5)
        assert kafka.value.port == port
        assert holder in str(kafka.value)
        assert "FLOWCASE_KAFKA_PORT" in str(kafka.value)
        with pytest.raises(PortTaken, match=f"port {port} is in use") as postgres:
            PostgresServer(layout, Ports(kafka=1, postgres=port)).start(timeout=5)
        assert holder in str(postgres.value)
        assert "FLOWCASE_POSTGRES_PORT" in str(postgres.value)


@pytest.mark.integration  # it tries to start a process, as the launcher starts a server
def test_a_missing_program_is_named(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="the probe cannot start: flowcase-no-such-program is not"):
        spawn(
            ["flowcase-no-such-program"],
            log_file=tmp_path / "probe.log",
            pid_file=tmp_path / "probe.pid",
            startup=StartUp("the probe", logs=()),
        )


# A broker's start-up log: its configuration dump (hundreds of lines), then the reason it stops.
ERROR = (
    "[2026-11-20 10:00:02,300] ERROR Unable to start acceptor for CONTROLLER "
    "(kafka.network.DataPlaneAcceptor)"
)
EXCEPTION = (
    "org.apache.kafka.common.KafkaException: Socket server failed to bind to 127.0.0.1:19093: "
    "Address already in use."
)
CAUSE = "Caused by: java.net.BindException: Address already in use"
KAFKA_LOG = "\n".join(
    [
        "[2026-11-20 10:00:01,100] INFO KafkaConfig values:",
        "\tadvertised.listeners = PLAINTEXT://127.0.0.1:19092",
        "\tcontrolled.shutdown.enable = true",
        "\tlisteners = PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093",
        "\tlog.dirs = /var/kafka/data",
        "\tsocket.send.buffer.bytes = 102400",
        " (org.apache.kafka.common.config.AbstractConfig)",
        "[2026-11-20 10:00:02,200] INFO [ControllerServer id=1] Starting (kafka.server.Controller)",
        ERROR,
        EXCEPTION,
        "\tat kafka.network.Acceptor.openServerSocket(SocketServer.scala:634)",
        "\tat kafka.network.Acceptor.start(SocketServer.scala:530)",
        CAUSE,
        "\tat java.base/sun.nio.ch.Net.bind0(Native Method)",
        "\t... 18 more",
        "[2026-11-20 10:00:02,400] INFO [SocketServer] Stopping (kafka.network.SocketServer)",
        "\tnum.network.threads = 3",
        "\tnum.partitions = 3",
    ]
)


def test_the_excerpt_of_a_failed_start_is_its_error_not_its_configuration_dump() -> None:
    assert log_excerpt(KAFKA_LOG) == [ERROR, EXCEPTION, CAUSE]


def test_the_excerpt_of_a_log_without_errors_is_its_last_lines() -> None:
    started = KAFKA_LOG.splitlines()[:8]
    assert log_excerpt("\n".join(started), lines=2) == started[-2:]


def test_a_unit_test_that_starts_a_server_fails_and_says_to_mark_it(tmp_path: Path) -> None:
    # This test is not marked integration, so the plugin forbids servers while it runs.
    with pytest.raises(StackError, match=r"test_devstack_processes\.py.*not marked integration"):
        spawn(
            [sys.executable, "-c", "pass"],
            log_file=tmp_path / "server.log",
            pid_file=tmp_path / "server.pid",
        )
    assert not (tmp_path / "server.pid").exists()
