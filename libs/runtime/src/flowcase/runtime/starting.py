"""Starting a service while a dependency is down: wait for it, and say so meanwhile.

A service started before its PostgreSQL or Kafka answers (a host rebooting, a database restart,
compose or Kubernetes starting everything at once) waits for them with capped exponential
backoff instead of exiting: nothing restarts a process that gave up, and an orchestrator that
does would only restart it into the same outage. Meanwhile its HTTP server already answers:
`/healthz` 200 (the process is alive; a liveness probe must not kill it for waiting) and
`/readyz` 503 naming each dependency and why it is not reachable yet. A failure no wait can cure
(a refused password, a database that does not exist) ends the process with one clear line
instead: so does a broker refusing the service's SASL credentials (aiokafka reports every
refusal as a broker it cannot reach; the reason it logs tells them apart).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
from aiokafka.errors import (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    IllegalSaslStateError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from fastapi.responses import JSONResponse
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter

from flowcase.events.kafka.consumer import is_transient
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.runtime.probes import KafkaProbe
from flowcase.runtime.problems import Problem, problem_response

log = logging.getLogger(__name__)

T = TypeVar("T")

# Seconds between attempts: 0.5, 1, 2, 4, then 5 (with up to 0.5 of jitter, so replicas that
# wait together do not knock together). The cap bounds how long a service stays down after its
# dependency came back; an attempt costs one connection.
FIRST_WAIT = 0.5
LONGEST_WAIT = 5.0
# One attempt at one dependency: a host that drops packets must not hold the wait for minutes.
ATTEMPT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Dependency:
    """Something a service cannot start without; `reach` raises while it cannot be reached."""

    name: str
    reach: Callable[[], Awaitable[None]]


def postgresql(settings: DatabaseSettings) -> Dependency:
    """The service's own database: a connection opened (authenticated, database found), closed."""

    async def reach() -> None:
        connection = await asyncpg.connect(settings.url, timeout=ATTEMPT_TIMEOUT)
        await connection.close()

    return Dependency("postgresql", reach)


def kafka(settings: KafkaSettings) -> Dependency:
    """The cluster: bootstrapped and reporting its brokers, as the readiness probe asks it."""

    async def reach() -> None:
        probe = KafkaProbe(settings)
        refusals = _BootstrapRefusals()
        _aiokafka_log.addFilter(refusals)
        try:
            if problem := await probe():
                raise ConnectionError(problem)
        except KafkaConnectionError as unreachable:
            refused = next((e for e in refusals.errors if isinstance(e, _AUTHENTICATION)), None)
            if refused is not None:
                raise refused from unreachable  # not retriable: the service ends, saying why
            if refusals.reasons:
                raise KafkaConnectionError("; ".join(refusals.reasons)) from unreachable
            raise
        finally:
            _aiokafka_log.removeFilter(refusals)
            await probe.close()

    return Dependency("kafka", reach)


_aiokafka_log = logging.getLogger("aiokafka")

# A broker that refuses these refuses the credentials or the mechanism: no wait cures them.
_AUTHENTICATION = (
    SaslAuthenticationFailed,
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    UnsupportedSaslMechanismError,
    IllegalSaslStateError,
)


class _BootstrapRefusals(logging.Filter):
    """aiokafka logs why each broker refused a bootstrap (refused, TLS, SASL) as an ERROR and
    raises only `Unable to bootstrap`: the why goes into `/readyz` and the wait's own warning
    instead, so that an attempt logs one line."""

    def __init__(self) -> None:
        super().__init__()
        self.reasons: list[str] = []
        self.errors: list[BaseException] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("Unable connect to"):
            self.reasons.append(record.getMessage())
            if isinstance(record.args, tuple) and isinstance(record.args[-1], BaseException):
                self.errors.append(record.args[-1])
            return False
        return True


class DependencyRefused(Exception):
    """A dependency answered with a failure waiting cannot cure: the service cannot start."""

    def __init__(self, name: str, error: BaseException) -> None:
        super().__init__(f"{name} refused: {described(error)}")
        self.name = name


def described(error: BaseException) -> str:
    """`Type: message`, once (a KafkaError's message already starts with its type)."""
    name, text = type(error).__name__, str(error)
    return text if text.startswith(name) else f"{name}: {text}"


class StartingApp:
    """The HTTP answer of a service until it is built, then the service's own app behind it.

    Pure ASGI around the real app (set by `serve_from`), so the port is bound once, before the
    wait, and never closed between waiting and serving.
    """

    def __init__(self, dependencies: Sequence[str]) -> None:
        self.checks = dict.fromkeys(dependencies, "not checked yet")
        self._app: Any = None

    def serve_from(self, app: Any) -> None:
        self._app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self._app is not None:
            await self._app(scope, receive, send)
            return
        if scope["type"] != "http":
            return  # uvicorn runs without lifespan (see `serving`); websockets are not served
        if scope["path"] == "/healthz":
            response = JSONResponse({"status": "ok"})
        elif scope["path"] == "/readyz":
            response = JSONResponse({"status": "not ready", "checks": self.checks}, 503)
        else:
            waiting = self.waiting_for()
            response = problem_response(
                Problem(
                    title="Service Unavailable",
                    status=503,
                    detail=f"starting: waiting for {waiting}" if waiting else "starting",
                    instance=scope["path"],
                ),
                headers={"Retry-After": str(int(LONGEST_WAIT))},
            )
        await response(scope, receive, send)

    def waiting_for(self) -> str:
        """The dependencies not reachable at the last attempt, each with why; empty when none."""
        down = (f"{name} ({state})" for name, state in self.checks.items() if state != "ok")
        return ", ".join(down)

    async def reach(self, dependencies: Sequence[Dependency]) -> None:
        """Try every dependency once, note each one's state; raise when one is not reachable."""
        results = await asyncio.gather(
            *(asyncio.wait_for(d.reach(), ATTEMPT_TIMEOUT) for d in dependencies),
            return_exceptions=True,
        )
        failed: list[BaseException] = []
        for dependency, result in zip(dependencies, results, strict=True):
            if isinstance(result, BaseException):
                if not is_transient(result):
                    self.checks[dependency.name] = f"refused: {described(result)}"
                    raise DependencyRefused(dependency.name, result) from result
                self.checks[dependency.name] = f"unreachable: {described(result)}"
                failed.append(result)
            else:
                self.checks[dependency.name] = "ok"
        if failed:
            raise failed[0]


async def start_when_reachable(
    front: StartingApp, dependencies: Sequence[Dependency], build: Callable[[], Awaitable[T]]
) -> T:
    """Build the service once every dependency answers; retry while failures are transient.

    The build itself is retried too: a dependency that went away between the check and the
    build is the same outage. Raises `DependencyRefused`, or what the build raised, otherwise.
    """

    def log_wait(state: RetryCallState) -> None:
        # tenacity calls it between attempts: after a failure, with the sleep decided.
        assert state.outcome is not None
        assert state.next_action is not None
        error, delay = state.outcome.exception(), state.next_action.sleep
        assert error is not None
        waiting = front.waiting_for()
        # When every dependency answered, the build met the outage: say what it met.
        what = f"waiting for {waiting}" if waiting else f"start failed ({described(error)})"
        log.warning("%s; attempt %d, next in %.1f s", what, state.attempt_number, delay)

    retrying = AsyncRetrying(
        wait=wait_exponential_jitter(multiplier=FIRST_WAIT, max=LONGEST_WAIT, jitter=FIRST_WAIT),
        retry=retry_if_exception(is_transient),
        before_sleep=log_wait,
        reraise=True,
    )

    async def attempt() -> T:
        await front.reach(dependencies)
        return await build()

    return await retrying(attempt)
