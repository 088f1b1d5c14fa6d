"""The local stack restarts a service process that dies, counts it, and `down` stops it for good.

The webhook sink stands for every supervised process (it is one of the stack's, and needs no
broker or database to start), on a port of its own and in a stack folder of its own.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowcase.devstack import cli as devstack_cli
from flowcase.devstack.cli import app
from flowcase.devstack.dedicated import free_ports
from flowcase.devstack.layout import Layout
from flowcase.devstack.processes import alive, port_free
from flowcase.devstack.services import WEBHOOK_SINK, Service, ServiceProcess
from flowcase.devstack.supervisor import Supervision

pytestmark = pytest.mark.integration  # it starts processes


def _until(check: Callable[[], object], *, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the bound"
        time.sleep(0.1)


def test_a_killed_service_is_restarted_counted_in_status_and_down_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWCASE_HOME", str(tmp_path))
    # The table is as wide as the console the CLI made at import, whatever COLUMNS says now:
    # wide enough that a row is one line.
    monkeypatch.setattr(devstack_cli.console, "width", 250)
    (port,) = free_ports(1)
    sink = ServiceProcess(
        Service(WEBHOOK_SINK.name, port, WEBHOOK_SINK.package), Layout.default(), supervised=True
    )
    try:
        sink.start({})
        supervisor = sink.pid()
        first = sink.supervision()
        assert supervisor is not None
        assert first is not None
        assert first.pid is not None
        assert first.pid != supervisor

        os.kill(first.pid, signal.SIGKILL)

        def restarted() -> Supervision | None:
            now = sink.supervision()
            return now if now and now.restarts == 1 and now.pid not in (None, first.pid) else None

        _until(lambda: restarted() and sink.ready())
        again = restarted()
        assert again is not None
        assert again.last_exit_code == -signal.SIGKILL
        assert sink.pid() == supervisor

        runner = CliRunner()
        row = _status_row(runner)
        assert "│ up" in row
        assert f"1 ({again.last_exit()})" in row
        assert again.last_exit().startswith("SIGKILL at ")

        down = runner.invoke(app, ["down"])
        assert down.exit_code == 0, down.output
        # Nothing is left that could start it again: the supervisor exited with the service.
        assert not alive(supervisor)
        assert again.pid is not None
        assert not alive(again.pid)
        assert port_free(port)
        assert "│ down" in _status_row(runner)
    finally:
        sink.stop()


def _status_row(runner: CliRunner) -> str:
    """The webhook sink's row of `flowcase stack status`."""
    status = runner.invoke(app, ["status"])
    assert status.exit_code == 0, status.output
    (row,) = [line for line in status.output.splitlines() if "webhook-sink service" in line]
    return row
