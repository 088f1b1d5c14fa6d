"""A port another process takes from under the launcher: named in the error, and on a
dedicated stack moved away from (real Kafka, PostgreSQL and webhook sink processes)."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from flowcase.devstack.dedicated import DedicatedStack, free_ports
from flowcase.devstack.processes import PortTaken

pytestmark = pytest.mark.integration  # starts Kafka, PostgreSQL and whole dedicated stacks


class Colliding:
    """Picks `held` (and the ports after it) while `colliding`, then ports free_ports finds."""

    def __init__(self, held: int) -> None:
        self.held = held
        self.colliding = True

    def __call__(self, count: int, *, consecutive: bool = False) -> list[int]:
        if self.colliding:
            return list(range(self.held, self.held + count))
        return free_ports(count, consecutive=consecutive)


def test_a_port_taken_while_kafka_starts_is_named_with_kafkas_own_error() -> None:
    """The check before the start passes; another process binds the port before Kafka does."""
    stack = DedicatedStack()
    kafka = stack.local.kafka
    port = kafka.ports.kafka_controller  # the first Kafka binds, so the quickest failure
    held = socket.socket()
    # As servers do: a connection of the past on the port (TIME_WAIT) must not stop the bind.
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

    def take_the_port_once_kafka_is_spawned() -> None:
        deadline = time.monotonic() + 60
        while not kafka.pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        held.bind(("127.0.0.1", port))
        held.listen()

    taker = threading.Thread(target=take_the_port_once_kafka_is_spawned)
    try:
        stack._reuse_kafka_classpath()
        taker.start()
        with pytest.raises(PortTaken) as failure:
            kafka.start(timeout=60)
    finally:
        taker.join()
        held.close()
        stack.stop()
    message = str(failure.value)
    assert failure.value.port == port
    assert message.startswith(
        f"Kafka exited during start-up: port {port} is in use by pid {os.getpid()} ("
    )
    assert "FLOWCASE_KAFKA_PORT" in message
    # Kafka's own words from its log, not its configuration dump.
    assert f"Socket server failed to bind to 127.0.0.1:{port}: Address already in use" in message
    assert "log.dirs =" not in message


def test_a_dedicated_stack_whose_chosen_ports_are_taken_starts_on_others() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        choose = Colliding(port)
        stack = DedicatedStack(choose_ports=choose)
        choose.colliding = False
        assert (stack.local.ports.kafka, stack.local.ports.postgres, stack.sink.port) == (
            port,
            port,
            port,
        )
        try:
            stack.start_infrastructure()
            stack.sink.start()
            moved = (stack.local.ports.kafka, stack.local.ports.postgres, stack.sink.port)
            assert port not in moved
            assert stack.local.kafka.healthy()
            assert stack.local.postgres.healthy()
            assert stack.sink.ready()
        finally:
            stack.stop()
