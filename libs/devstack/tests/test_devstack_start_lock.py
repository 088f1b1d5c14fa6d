"""Two starters of one stack at once (a `flowcase stack up` and a test session) start it once."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from flowcase.devstack.dedicated import DedicatedStack
from flowcase.devstack.processes import cmdline

pytestmark = pytest.mark.integration  # starts Kafka and PostgreSQL


def _brokers_of(home: Path) -> list[int]:
    """Kafka processes whose configuration lives in this stack's folder."""
    return [
        int(pid)
        for pid in os.listdir("/proc")
        if pid.isdigit() and "kafka.Kafka" in (line := cmdline(int(pid))) and str(home) in line
    ]


def test_starting_a_stack_twice_at_once_starts_one_broker_that_stop_knows() -> None:
    stack = DedicatedStack()
    try:
        stack._reuse_kafka_classpath()
        with ThreadPoolExecutor(2) as pool:
            starts = [pool.submit(stack.local.start_infrastructure) for _ in range(2)]
            started = [future.result(timeout=180) for future in starts]
        # One call started each part, the other found it running.
        assert sorted(part for parts in started for part in parts) == ["kafka", "postgres"]
        assert _brokers_of(stack.home) == [stack.local.kafka.pid()]
    finally:
        stack.stop()
    assert _brokers_of(stack.home) == []
