"""The short fault run of `make test`: a few hundred requests, one fault of each kind.

While the mix flows (HTTP and the raw topic), each service is SIGKILLed and restarted, a second
workflow replica joins and leaves its groups, records are published again, the broker restarts
and PostgreSQL restarts. Then every accepted request must reach exactly its one outcome.
"""

from __future__ import annotations

import asyncio
import json
import random
import time

import pytest

pytestmark = (
    pytest.mark.integration
)  # a dedicated platform: Kafka, PostgreSQL and the four services

REQUESTS = 300
RATE_PER_SECOND = 3.0


@pytest.mark.timeout(480)
async def test_reliability_every_request_reaches_one_outcome_through_faults(
    platform, truth, driver, faults, checks
) -> None:
    assert all((await platform.all_ready()).values())
    started = time.monotonic()
    before = len(truth.accepted)
    flowing = asyncio.Event()

    async def stream() -> None:
        while not flowing.is_set():
            driver.submit_soon()
            await asyncio.sleep(1 / RATE_PER_SECOND)

    load = asyncio.create_task(stream())
    await asyncio.sleep(3)
    for service in ("intake", "workflow", "case", "governance"):
        await faults.kill(service)
        await asyncio.sleep(1)
    await faults.rebalance("workflow")
    await faults.duplicate_delivery()
    accepted = list(truth.accepted.values())
    for expected in random.Random(3).sample(accepted, min(10, len(accepted))):
        await driver.resubmit(expected)
    await faults.restart_kafka()
    await asyncio.sleep(2)
    await faults.restart_postgres()
    await asyncio.sleep(2)
    flowing.set()
    await load
    while len(truth.accepted) + len(driver._inflight) - before < REQUESTS:
        driver.submit_soon()
        await asyncio.sleep(1 / (4 * RATE_PER_SECOND))
    await driver.drain()

    quiet = await checks.quiescence(driver)
    verdict = await checks.verify()
    print(
        json.dumps(
            {
                **verdict.figures,
                "quiescence": quiet,
                "fault_log": faults.log,
                "latency": driver.latencies(),
                "seconds": round(time.monotonic() - started, 1),
            },
            indent=1,
            default=str,
        )
    )
    assert not verdict.problems, "\n".join(verdict.problems)
