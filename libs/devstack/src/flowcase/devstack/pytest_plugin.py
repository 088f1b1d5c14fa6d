"""pytest fixtures that reach the real Kafka broker and PostgreSQL.

`stack` resolves the endpoints once per session (FLOWCASE_KAFKA_BOOTSTRAP/FLOWCASE_DATABASE_URL,
else testcontainers where a Docker engine answers, else the local launcher). Every test that uses
it is marked `integration`. `topics` and `database_url` give each test its own topic names and its
own database, so tests run in any order. A test that starts a server without the `stack`
fixture (a dedicated platform, the launcher itself) is marked `integration` in its module; one
that is not fails when it starts a server, so `make test-unit` starts none.

Authentication: the session signs development tokens with a random secret of its own, set as
FLOWCASE_AUTH_DEV_SECRET (unless already set) so every service built in-process, or started as
a child process, accepts them. `auth_settings` gives the settings, `tokens` mints tokens and
headers for a role, teams and a subject.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator

import asyncpg
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from flowcase.devstack.dev_tokens import Tokens
from flowcase.devstack.endpoints import Endpoints, resolve
from flowcase.devstack.faults import KafkaFaultProxy
from flowcase.devstack.processes import UNIT_TEST_ENV
from flowcase.devstack.topic_copies import own_topics
from flowcase.events.settings import KafkaSettings
from flowcase.runtime.settings import AuthSettings


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("FLOWCASE_AUTH_DEV_SECRET", secrets.token_urlsafe(32))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    """A test not marked `integration` may start no server (its fixtures included)."""
    if item.get_closest_marker("integration") is not None:
        return (yield)
    os.environ[UNIT_TEST_ENV] = item.nodeid
    try:
        return (yield)
    finally:
        os.environ.pop(UNIT_TEST_ENV, None)


@pytest.fixture(scope="session")
def auth_settings() -> AuthSettings:
    """The session's token settings: development tokens signed with the session's secret."""
    return AuthSettings(jwks_url=None)


@pytest.fixture(scope="session")
def tokens(auth_settings: AuthSettings) -> Tokens:
    """Mints tokens and Authorization headers: `tokens.headers(Role.AGENT, teams=["it"])`."""
    return Tokens(auth_settings)


@pytest.fixture(scope="session")
def stack() -> Iterator[Endpoints]:
    endpoints = resolve()
    try:
        yield endpoints
    finally:
        endpoints.close()


@pytest.fixture
async def kafka_settings(stack: Endpoints) -> AsyncIterator[KafkaSettings]:
    """Settings whose every platform topic is this test's own copy, deleted after the test.

    `settings.topic(Topic.X)` names the copy; services built from these settings use it.
    """
    async with own_topics(stack) as settings:
        yield settings


@pytest.fixture
async def new_database(stack: Endpoints) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """Creates fresh, empty databases on demand; each is dropped after the test."""
    created: list[str] = []
    base, _, _ = stack.database_url.rpartition("/")

    async def create() -> str:
        name = f"test_{uuid.uuid4().hex[:16]}"
        admin = await asyncpg.connect(stack.database_url)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        created.append(name)
        return f"{base}/{name}"

    yield create
    if created:
        admin = await asyncpg.connect(stack.database_url)
        try:
            for name in created:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def database_url(new_database: Callable[[], Awaitable[str]]) -> str:
    """A fresh, empty database of this test's own, dropped afterwards."""
    return await new_database()


@pytest.fixture(scope="module")
async def module_kafka_settings(stack: Endpoints) -> AsyncIterator[KafkaSettings]:
    """Like `kafka_settings`, shared by a test module (one service serving the whole module)."""
    async with own_topics(stack) as settings:
        yield settings


@pytest.fixture(scope="module")
async def module_database_url(stack: Endpoints) -> AsyncIterator[str]:
    """Like `database_url`, shared by a test module; dropped after it."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(stack.database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = stack.database_url.rpartition("/")
    yield f"{base}/{name}"
    admin = await asyncpg.connect(stack.database_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def kafka_fault_proxy(stack: Endpoints) -> AsyncIterator[KafkaFaultProxy]:
    """A proxy between a client and the broker that can drop responses and cut connections."""
    if stack.kafka_fault_ports is None:
        pytest.skip(
            f"fault injection needs the local stack's FAULTS listener (stack: {stack.origin})"
        )
    target, listen = stack.kafka_fault_ports
    proxy = KafkaFaultProxy(listen_port=listen, target_port=target)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()


@pytest.fixture(scope="session")
def _span_exporter() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def spans(_span_exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    """The spans this test finished, recorded in memory (the tracer provider is process-wide)."""
    _span_exporter.clear()
    yield _span_exporter
    _span_exporter.clear()


@pytest.fixture
def traced_drivers() -> Iterator[None]:
    """asyncpg and psycopg instrumented for the test, as every service runs them."""
    AsyncPGInstrumentor().instrument()
    PsycopgInstrumentor().instrument()
    try:
        yield
    finally:
        PsycopgInstrumentor().uninstrument()
        AsyncPGInstrumentor().uninstrument()
