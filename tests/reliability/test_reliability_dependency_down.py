"""Services started while their database is down wait for it, and say so meanwhile.

Every service is killed, PostgreSQL is stopped, and the services are started again into the
outage: each must stay up (`/healthz` 200) and not ready (`/readyz` 503 naming PostgreSQL),
become ready once it is back, and be the same process throughout. (The wait for Kafka is the
same code; `libs/runtime/tests/test_runtime_starting.py` shows it against the real broker, since
a broker restart here would add a quarter of a minute to `make test`.) A failure no wait can
cure (here: a database that does not exist) still ends the process, with one line saying why.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowcase.devstack.processes import alive

pytestmark = pytest.mark.integration  # a dedicated platform: Kafka, PostgreSQL and the services


async def _until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        await asyncio.sleep(0.3)


async def _starting_state(url: str) -> dict[str, Any] | None:
    """`/readyz`'s checks while the service is alive and not ready; None when it is not so."""
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        try:
            live, ready = await client.get("/healthz"), await client.get("/readyz")
        except httpx.HTTPError:
            return None
    if live.status_code != 200 or ready.status_code != 503:
        return None
    checks: dict[str, Any] = ready.json()["checks"]
    return checks


def _log_since(path: Path, offset: int) -> str:
    with open(path, "rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


@pytest.mark.timeout(300)
async def test_services_started_while_postgresql_is_down_come_up_when_it_returns(
    platform,
) -> None:
    stack = platform.stack
    assert all((await platform.all_ready()).values())
    for instance in stack.services.values():
        instance.kill()
    await asyncio.to_thread(stack.local.postgres.stop)
    logs = {name: s.process.log_file for name, s in stack.services.items()}
    offsets = {name: log.stat().st_size for name, log in logs.items()}
    pids = {name: s.process.launch(s.env) for name, s in stack.services.items()}

    async def waiting_for_postgresql() -> bool:
        for name, instance in stack.services.items():
            assert alive(pids[name]), f"{name} exited while its database was down"
            checks = await _starting_state(instance.url)
            if checks is None or checks["kafka"] != "ok":
                return False
            if not checks["postgresql"].startswith("unreachable: "):
                return False
        return True

    await _until(waiting_for_postgresql, "every service waits for PostgreSQL, not ready")
    await asyncio.to_thread(stack.local.postgres.start)

    assert all((await platform.all_ready()).values())
    assert {name: s.pid for name, s in stack.services.items()} == pids
    for name, log in logs.items():
        written = _log_since(log, offsets[name])
        assert "waiting for postgresql (unreachable: " in written, name
        assert "Traceback" not in written, f"{name} logged a traceback while waiting"


async def test_a_service_whose_database_does_not_exist_exits_saying_so(platform) -> None:
    replica = platform.stack.replica("governance")
    missing = platform.stack.local.postgres.database_url("flowcase_no_such_database")
    pid = replica.process.launch({**replica.env, "FLOWCASE_DATABASE_URL": missing})
    statuses: list[int] = []

    async def exited() -> bool:
        reaped, status = await asyncio.to_thread(os.waitpid, pid, os.WNOHANG)
        statuses.append(status)
        return reaped == pid

    await _until(exited, "the service exits")
    assert os.waitstatus_to_exitcode(statuses[-1]) == 1
    log = replica.process.log_file.read_text()
    assert "Traceback" not in log
    said = [json.loads(line) for line in log.splitlines()]
    assert [record["message"] for record in said if record["level"] == "critical"] == [
        "cannot start: postgresql refused: InvalidCatalogNameError: "
        'database "flowcase_no_such_database" does not exist'
    ]
