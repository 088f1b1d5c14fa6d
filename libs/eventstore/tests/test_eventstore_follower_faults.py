"""A log follower against what goes wrong, on the real database and broker: a stored event it
can never handle is set aside with its reason and the follower moves on; an outage is retried,
visibly, until it passes; a listening connection PostgreSQL drops is made again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import pytest
from eventsourcing.domain import Aggregate, event
from prometheus_client import REGISTRY

from flowcase.events import Topic
from flowcase.events.kafka import DeadLetterHeader, EventProducer, read_to_end
from flowcase.events.settings import KafkaSettings
from flowcase.eventstore import DeadLetterTopic, LogFollower, TrackedApplication, postgres_env


class Notebook(Aggregate):
    @event("Opened")
    def __init__(self) -> None:
        pass

    class Written(Aggregate.Event):
        text: str

    @event(Written)
    def write(self, text: str) -> None:
        pass


class Notebooks(TrackedApplication):
    pass


class LinesProjection(LogFollower):
    """Every line written, into a text column (which cannot hold a NUL)."""

    async def handle(self, conn: asyncpg.Connection, events: Sequence[Any]) -> None:
        lines = [(e.text,) for e in events if isinstance(e, Notebook.Written)]
        await conn.executemany("INSERT INTO notebook_lines (text) VALUES ($1)", lines)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(database_url, min_size=1, max_size=4) as pool:
        yield pool


@contextlib.asynccontextmanager
async def _running(
    notebooks: Notebooks, pool: asyncpg.Pool, kafka_settings: KafkaSettings
) -> AsyncIterator[LinesProjection]:
    """The lines projection running, with the broker's dead-letter topic as its port."""
    async with EventProducer(kafka_settings, client_id="lines") as producer:
        follower = LinesProjection(
            name="lines",
            application=notebooks,
            pool=pool,
            dead_letters=DeadLetterTopic(producer, kafka_settings, store="notebooks"),
        )
        task = asyncio.create_task(follower.run())
        try:
            yield follower
        finally:
            follower.stop()
            await task


async def _until(condition: Any, *, what: str, timeout: float = 60.0) -> None:
    """Wait on progress: `condition()` true, polled, with a generous bound."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, f"still waiting: {what}"
        await asyncio.sleep(0.05)


def _set_aside(follower: str) -> float:
    value = REGISTRY.get_sample_value("flowcase_follower_set_aside_total", {"follower": follower})
    return value or 0.0


async def test_an_event_the_follower_can_never_handle_is_dead_lettered_and_passed(
    database_url: str, pool: asyncpg.Pool, kafka_settings: KafkaSettings
) -> None:
    notebooks = Notebooks(env=postgres_env(database_url))
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE notebook_lines (text text NOT NULL)")
    book = Notebook()
    for text in ("before", "nul\u0000line", "after"):
        book.write(text)
    notebooks.save(book)
    poison = notebooks.recorder.select_notifications(0, 10)[2]  # Opened, before, the NUL line
    before = _set_aside("lines")
    async with _running(notebooks, pool, kafka_settings) as follower:
        await _until(lambda: _backlog_is_empty(follower), what="the follower to pass all")
        book.write("written later")
        notebooks.save(book)
        await _until(lambda: _backlog_is_empty(follower), what="the later line")
        assert await follower.readiness() is None
    async with pool.acquire() as conn:
        lines = [r["text"] for r in await conn.fetch("SELECT text FROM notebook_lines")]
    assert sorted(lines) == ["after", "before", "written later"]
    assert _set_aside("lines") == before + 1

    (dead,) = await read_to_end(kafka_settings, kafka_settings.topic(Topic.DEADLETTER))
    headers = {name: value.decode() for name, value in dead.headers}
    assert headers[DeadLetterHeader.REASON] == "handler-failed"
    assert "CharacterNotInRepertoireError" in headers[DeadLetterHeader.ERROR]
    assert headers[DeadLetterHeader.ORIGINAL_TOPIC] == "eventstore:notebooks"
    assert headers[DeadLetterHeader.ORIGINAL_OFFSET] == str(poison.id)
    assert headers[DeadLetterHeader.CONSUMER_GROUP] == "lines"
    assert dead.key == str(book.id).encode()
    assert dead.value == poison.state  # the stored event itself, for whoever repairs it


async def _backlog_is_empty(follower: LogFollower) -> bool:
    return await follower.backlog() == 0


async def test_an_outage_is_retried_visibly_and_never_set_aside(
    database_url: str, pool: asyncpg.Pool, kafka_settings: KafkaSettings
) -> None:
    """The table missing stands for any fault of the infrastructure: nothing is set aside, the
    follower says it is stuck, and it goes on once the fault is cured."""
    notebooks = Notebooks(env=postgres_env(database_url))
    book = Notebook()
    book.write("waits for its table")
    notebooks.save(book)
    before = _set_aside("lines")
    async with _running(notebooks, pool, kafka_settings) as follower:

        async def stuck() -> bool:
            return await follower.readiness() is not None

        await _until(stuck, what="the follower to report itself stuck")
        assert "UndefinedTableError" in str(await follower.readiness())
        retrying = REGISTRY.get_sample_value("flowcase_follower_retrying", {"follower": "lines"})
        assert retrying == 1
        async with pool.acquire() as conn:
            await conn.execute("CREATE TABLE notebook_lines (text text NOT NULL)")
        await _until(lambda: _backlog_is_empty(follower), what="the follower to go on")
        await _until(
            lambda: _ready(follower), what="the follower to say it moves again", timeout=10
        )
    assert REGISTRY.get_sample_value("flowcase_follower_retrying", {"follower": "lines"}) == 0
    assert _set_aside("lines") == before
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM notebook_lines") == 1


async def _ready(follower: LogFollower) -> bool:
    return await follower.readiness() is None


async def test_a_follower_listens_again_when_postgresql_drops_its_listening_connection(
    database_url: str, pool: asyncpg.Pool
) -> None:
    """Waiting on NOTIFY alone (a poll far longer than the test's bound), the follower still
    sees what is appended after PostgreSQL terminated the connection it listened on."""
    notebooks = Notebooks(env=postgres_env(database_url))
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE notebook_lines (text text NOT NULL)")
    book = Notebook()
    book.write("before the drop")
    notebooks.save(book)
    follower = LinesProjection(name="lines", application=notebooks, pool=pool, idle_wait=3600)
    task = asyncio.create_task(follower.run())
    try:
        await _until(lambda: _backlog_is_empty(follower), what="the first line")
        async with pool.acquire() as conn:
            dropped = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
            )
        assert dropped == 1
        book.write("after the drop")
        notebooks.save(book)
        await _until(lambda: _backlog_is_empty(follower), what="the line after the drop")
    finally:
        follower.stop()
        await task
    async with pool.acquire() as conn:
        lines = [r["text"] for r in await conn.fetch("SELECT text FROM notebook_lines")]
    assert sorted(lines) == ["after the drop", "before the drop"]
