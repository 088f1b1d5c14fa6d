"""A service waits for its dependencies at start, answering alive and not ready meanwhile.

The whole service started into a PostgreSQL outage is in tests/reliability
(test_reliability_dependency_down.py); here, the parts, and the wait for the real broker.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from flowcase.devstack.dedicated import free_ports
from flowcase.devstack.faults import KafkaFaultProxy
from flowcase.devstack.kafka import KafkaBroker
from flowcase.devstack.layout import Layout, Ports, repo_root
from flowcase.devstack.processes import port_open
from flowcase.events.settings import KafkaSettings
from flowcase.runtime import starting
from flowcase.runtime.probes import KafkaProbe
from flowcase.runtime.starting import (
    Dependency,
    DependencyRefused,
    StartingApp,
    start_when_reachable,
)


@pytest.fixture(autouse=True)
def _short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(starting, "FIRST_WAIT", 0.01)


def _client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")  # type: ignore[arg-type]


class Flaky:
    """A dependency that is unreachable `failures` times, then answers."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures, self.attempts = failures, 0
        self.error = error or ConnectionRefusedError(111, "Connection refused")

    async def __call__(self) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise self.error


async def test_while_waiting_it_is_alive_not_ready_and_says_for_what_then_it_serves() -> None:
    front = StartingApp(["postgresql", "kafka"])
    front.checks["postgresql"] = "unreachable: ConnectionRefusedError: refused"
    front.checks["kafka"] = "ok"
    async with _client(front) as client:
        live, ready, other = [await client.get(p) for p in ("/healthz", "/readyz", "/v1/cases")]
    assert live.status_code == 200
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "not ready",
        "checks": {"postgresql": "unreachable: ConnectionRefusedError: refused", "kafka": "ok"},
    }
    assert other.status_code == 503
    assert other.headers["content-type"] == "application/problem+json"
    assert other.headers["retry-after"] == "5"
    assert other.json()["detail"] == (
        "starting: waiting for postgresql (unreachable: ConnectionRefusedError: refused)"
    )

    app = FastAPI()

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    front.serve_from(app)
    async with _client(front) as client:
        assert (await client.get("/readyz")).json() == {"status": "ready"}


async def test_a_transient_outage_is_waited_out_with_one_warning_per_attempt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    database, broker = Flaky(2), Flaky(0)
    front = StartingApp(["postgresql", "kafka"])
    built: list[str] = []

    async def build() -> str:
        built.append("service")
        return "service"

    with caplog.at_level(logging.WARNING, logger="flowcase.runtime.starting"):
        service = await start_when_reachable(
            front, [Dependency("postgresql", database), Dependency("kafka", broker)], build
        )
    assert service == "service"
    assert built == ["service"]
    assert database.attempts == 3
    assert front.checks == {"postgresql": "ok", "kafka": "ok"}
    waits = [r for r in caplog.records if r.name == "flowcase.runtime.starting"]
    assert [r.getMessage().split(";")[0] for r in waits] == [
        "waiting for postgresql (unreachable: ConnectionRefusedError: [Errno 111] "
        "Connection refused)"
    ] * 2
    assert all(" next in " in r.getMessage() and r.exc_info is None for r in waits)


async def test_a_refusal_no_wait_cures_ends_the_start_at_once() -> None:
    refusing = Flaky(1, asyncpg.InvalidPasswordError("password authentication failed"))
    front = StartingApp(["postgresql"])

    async def build() -> None:
        raise AssertionError("built without its database")

    with pytest.raises(DependencyRefused) as refused:
        await start_when_reachable(front, [Dependency("postgresql", refusing)], build)
    assert str(refused.value) == (
        "postgresql refused: InvalidPasswordError: password authentication failed"
    )
    assert refusing.attempts == 1


@pytest.mark.integration
async def test_the_start_waits_for_the_broker_and_goes_on_once_it_answers(
    kafka_fault_proxy: KafkaFaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    await kafka_fault_proxy.stop()  # the broker's address answers nothing now
    front = StartingApp(["kafka"])
    kafka = starting.kafka(KafkaSettings(bootstrap=kafka_fault_proxy.bootstrap))

    async def build() -> str:
        return "service"

    start = asyncio.create_task(start_when_reachable(front, [kafka], build))
    deadline = asyncio.get_running_loop().time() + 60
    while not front.checks["kafka"].startswith("unreachable: KafkaConnectionError"):
        assert not start.done(), start
        assert asyncio.get_running_loop().time() < deadline, front.checks
        await asyncio.sleep(0.05)
    # Why the broker could not be reached, which aiokafka only logs, is what /readyz says.
    assert f'Unable connect to "{kafka_fault_proxy.bootstrap}"' in front.checks["kafka"]
    await kafka_fault_proxy.start()
    assert await asyncio.wait_for(start, 60) == "service"
    assert front.checks == {"kafka": "ok"}
    assert not [r for r in caplog.records if r.name == "aiokafka" and r.levelno >= logging.ERROR]


# The listener lines of the devstack's configuration that a SASL listener replaces.
REPLACED = ("listeners=", "advertised.listeners=", "inter.broker", "listener.")


class SaslBroker(KafkaBroker):
    """A broker of its own whose client listener demands SASL/PLAIN: user `flowcase`, password
    `flowcase-secret` (and `admin` for the broker itself)."""

    USER, PASSWORD = "flowcase", "flowcase-secret"

    def _write_config(self) -> Path:
        config = super()._write_config()
        p = self.ports
        jaas = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            'username="admin" password="admin-secret" user_admin="admin-secret" '
            f'user_{self.USER}="{self.PASSWORD}";'
        )
        lines = [
            line
            for line in config.read_text().splitlines()
            if not line.startswith(
                ("listeners=", "advertised.listeners=", "inter.broker", "listener.")
            )
        ]
        lines += [
            f"listeners=SASL_PLAINTEXT://127.0.0.1:{p.kafka},CONTROLLER://127.0.0.1:{p.kafka_controller}",
            f"advertised.listeners=SASL_PLAINTEXT://127.0.0.1:{p.kafka}",
            "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=SASL_PLAINTEXT",
            "sasl.enabled.mechanisms=PLAIN",
            "sasl.mechanism.inter.broker.protocol=PLAIN",
            f"listener.name.sasl_plaintext.plain.sasl.jaas.config={jaas}",
        ]
        config.write_text("\n".join(lines) + "\n")
        return config

    def settings(self, password: str) -> KafkaSettings:
        return KafkaSettings(
            bootstrap=self.bootstrap,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="PLAIN",
            sasl_username=self.USER,
            sasl_password=SecretStr(password),
        )

    def healthy(self) -> bool:
        if not port_open(self.ports.kafka):
            return False
        return asyncio.run(_answers(self.settings(self.PASSWORD)))


async def _answers(settings: KafkaSettings) -> bool:
    probe = KafkaProbe(settings)
    try:
        return await probe() is None
    except Exception:
        return False  # not up yet
    finally:
        await probe.close()


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslBroker]:
    base = free_ports(4, consecutive=True)[0]
    layout = Layout(root=repo_root(), home=tmp_path_factory.mktemp("sasl-broker"))
    broker = SaslBroker(layout, Ports(kafka=base, postgres=free_ports(1)[0]))
    shared = Layout.default().home / "kafka" / "classpath.txt"
    if shared.exists():  # the shared stack's resolved jars spare a Maven run
        broker.folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(shared, broker.folder / "classpath.txt")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.mark.integration
async def test_a_broker_that_refuses_the_credentials_ends_the_start_with_the_reason(
    sasl_broker: SaslBroker,
) -> None:
    """SASL/PLAIN against a real broker: the right password is served; a wrong one ends the
    start at once, saying the broker refused it (it waited for ever, as for a broker down)."""
    front = StartingApp(["kafka"])

    async def build() -> str:
        return "service"

    right = starting.kafka(sasl_broker.settings(SaslBroker.PASSWORD))
    assert await start_when_reachable(front, [right], build) == "service"

    wrong = starting.kafka(sasl_broker.settings("not-the-password"))
    with pytest.raises(DependencyRefused) as refused:
        await asyncio.wait_for(start_when_reachable(front, [wrong], build), 60)
    assert str(refused.value).startswith("kafka refused: ")
    assert "SaslAuthenticationFailed" in str(refused.value)
    assert front.checks["kafka"].startswith("refused: ")
