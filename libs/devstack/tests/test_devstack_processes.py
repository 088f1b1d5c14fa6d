from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from flowcase.devstack.kafka import KafkaBroker
from flowcase.devstack.layout import Layout, Ports
from flowcase.devstack.postgres import PostgresServer
from flowcase.devstack.processes import StackError, read_pid, spawn


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


def _listening_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_a_port_taken_by_another_process_is_a_clear_error(tmp_path: Path) -> None:
    layout = Layout(root=Layout.default().root, home=tmp_path)
    with _listening_port() as sock:
        port = sock.getsockname()[1]
        with pytest.raises(StackError, match=f"port {port} is in use"):
            KafkaBroker(layout, Ports(kafka=port, postgres=1)).start(timeout=5)
        with pytest.raises(StackError, match=f"port {port} is in use"):
            PostgresServer(layout, Ports(kafka=1, postgres=port)).start(timeout=5)


def test_a_unit_test_that_starts_a_server_fails_and_says_to_mark_it(tmp_path: Path) -> None:
    # This test is not marked integration, so the plugin forbids servers while it runs.
    with pytest.raises(StackError, match=r"test_devstack_processes\.py.*not marked integration"):
        spawn(
            [sys.executable, "-c", "pass"],
            log_file=tmp_path / "server.log",
            pid_file=tmp_path / "server.pid",
        )
    assert not (tmp_path / "server.pid").exists()
