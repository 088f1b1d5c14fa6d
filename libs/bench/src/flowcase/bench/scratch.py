"""Throw-away resources a benchmark runs on: its own topics, databases and ports."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from flowcase.bench.machine import load_average, machine_facts
from flowcase.bench.results import result_path, write_results
from flowcase.devstack.endpoints import Endpoints, resolve
from flowcase.events.kafka import ensure_topics
from flowcase.events.settings import KafkaSettings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url(admin_url: str, database: str) -> str:
    """The URL of another database on the server `admin_url` points at."""
    return admin_url.rpartition("/")[0] + "/" + database


@contextlib.asynccontextmanager
async def scratch_database(admin_url: str, prefix: str) -> AsyncIterator[str]:
    """A new empty database (its URL), dropped afterwards whoever still holds connections."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield database_url(admin_url, name)
    finally:
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def scratch_topics(bootstrap: str) -> KafkaSettings:
    """Every platform topic under a suffix of this run's own, created."""
    kafka = KafkaSettings(bootstrap=bootstrap, topic_suffix=f".bench{uuid.uuid4().hex[:8]}")
    await ensure_topics(kafka)
    return kafka


def run_on_shared_stack(
    kind: str, run: Callable[[Endpoints], Coroutine[Any, Any, dict[str, Any]]]
) -> Path:
    """The frame of a per-service benchmark script: find the stack (the FLOWCASE_* endpoints,
    else the local stack, started and stopped again if it was down), run, add the machine's
    facts, write `benchmarks/results/<kind>-<time>.json` and print it."""
    load_before = load_average()
    endpoints = resolve()
    try:
        measured = asyncio.run(run(endpoints))
    finally:
        endpoints.close()
    document = {
        "benchmark": kind,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_facts(load_before, stack=endpoints.origin),
        **measured,
    }
    path = write_results(document, result_path(kind))
    print(path.read_text())
    print(f"wrote {path}", file=sys.stderr)
    return path
