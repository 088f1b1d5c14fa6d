"""The HTTP webhook connector against httpx's mock transport, and once over the network."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from datetime import timedelta
from uuid import UUID

import httpx
import pytest

from flowcase.workflow.connectors import run_action
from flowcase.workflow.effects import RunAction
from flowcase.workflow.triggers import ReportActionFailed, ReportActionSucceeded
from flowcase.workflow.webhook import IDEMPOTENCY_HEADER, WebhookConnector, WebhookConnectors

URL = "https://erp.example/hooks/flowcase"
ACTION = RunAction(
    request_id=UUID("0b5e6a0e-8f3c-4c1e-9a57-6d2f3c4b5a69"),
    step="schedule-payment",
    connector="erp",
    operation="schedule-payment",
    input={"invoice_id": "INV-1", "amount": 1840.5},
    idempotency_key="0b5e6a0e-8f3c-4c1e-9a57-6d2f3c4b5a69/schedule-payment",
    attempts=4,
    backoff=timedelta(seconds=2),
    max_backoff=timedelta(seconds=5),
)


class Webhook:
    """A scripted receiver: answers each call with the next response (or raises the error)."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.waits: list[float] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    def connector(self) -> WebhookConnector:
        client = httpx.AsyncClient(transport=httpx.MockTransport(self.handle))
        return WebhookConnector(
            URL, client, headers={"Authorization": "Bearer t"}, sleep=self.sleep
        )


@pytest.fixture
def webhook() -> Callable[..., Webhook]:
    return Webhook


async def test_success_posts_the_action_with_its_idempotency_key(webhook) -> None:
    hook = webhook(httpx.Response(200, json={"payment_id": "P-7"}))
    report = await hook.connector().run(ACTION)
    assert report == ReportActionSucceeded(
        step="schedule-payment", attempts=1, result={"payment_id": "P-7"}
    )
    [request] = hook.requests
    assert request.headers[IDEMPOTENCY_HEADER] == ACTION.idempotency_key
    assert request.headers["Authorization"] == "Bearer t"
    assert request.read() == (
        b'{"request_id":"0b5e6a0e-8f3c-4c1e-9a57-6d2f3c4b5a69","step":"schedule-payment",'
        b'"operation":"schedule-payment","input":{"invoice_id":"INV-1","amount":1840.5}}'
    )


async def test_server_errors_and_network_errors_are_retried_with_backoff(webhook) -> None:
    hook = webhook(
        httpx.Response(503),
        httpx.ConnectError("refused"),
        httpx.Response(429),
        httpx.Response(204),
    )
    report = await hook.connector().run(ACTION)
    assert report == ReportActionSucceeded(step="schedule-payment", attempts=4, result={})
    assert hook.waits == [2, 4, 5]
    assert {r.headers[IDEMPOTENCY_HEADER] for r in hook.requests} == {ACTION.idempotency_key}


async def test_giving_up_after_the_last_attempt_reports_a_failure(webhook) -> None:
    hook = webhook(httpx.Response(502))
    report = await hook.connector().run(ACTION)
    assert report == ReportActionFailed(
        step="schedule-payment", attempts=4, error=f"HTTP 502 from {URL}"
    )


async def test_a_client_error_is_not_retried(webhook) -> None:
    hook = webhook(httpx.Response(422, json={"error": "unknown invoice"}))
    report = await hook.connector().run(ACTION)
    assert report == ReportActionFailed(
        step="schedule-payment", attempts=1, error=f"HTTP 422 from {URL}"
    )
    assert hook.waits == []


async def test_a_non_object_answer_is_kept_as_the_body(webhook) -> None:
    hook = webhook(httpx.Response(200, text="queued"))
    report = await hook.connector().run(ACTION)
    assert report.result == {"body": "queued"}


async def test_run_action_picks_the_named_connector(webhook) -> None:
    hook = webhook(httpx.Response(200, json={}))
    assert (await run_action({"erp": hook.connector()}, ACTION)).attempts == 1
    missing = await run_action({}, ACTION)
    assert missing == ReportActionFailed(
        step="schedule-payment", attempts=1, error="no connector named 'erp' is configured"
    )


async def test_connectors_not_configured_one_by_one_go_through_the_gateway(webhook) -> None:
    hook = webhook(httpx.Response(200, json={}))
    client = httpx.AsyncClient(transport=httpx.MockTransport(hook.handle))
    routed = WebhookConnectors({"calendar": URL}, client, gateway="http://sink.local/hooks/")
    assert isinstance((await run_action(routed, ACTION)), ReportActionSucceeded)
    assert str(hook.requests[-1].url) == "http://sink.local/hooks/erp"
    without_gateway = WebhookConnectors({"calendar": URL}, client)
    assert isinstance((await run_action(without_gateway, ACTION)), ReportActionFailed)


_imports: list[str] | None = None


def _record_imports(event: str, args: tuple[object, ...]) -> None:
    if event == "import" and _imports is not None:
        _imports.append(str(args[0]))


sys.addaudithook(_record_imports)  # audit hooks stay for the process: this one records on demand


async def test_a_call_over_the_network_looks_for_no_module(far_side) -> None:
    """httpcore asks for `sniffio` on every request: a module that is missing is looked for on
    disk each time (a visible share of the workflow's profile under load), so it is installed."""
    global _imports
    async with httpx.AsyncClient() as client:
        connector = WebhookConnector(far_side.connectors()["identity-provider"], client)
        await connector.run(ACTION)  # the first call may import what it needs, once
        _imports = []
        try:
            assert isinstance(await connector.run(ACTION), ReportActionSucceeded)
            looked_for = list(_imports)
        finally:
            _imports = None
    assert looked_for == []


async def test_calls_in_flight_across_connectors_are_bounded() -> None:
    in_flight, most = 0, 0
    release = asyncio.Event()

    async def handle(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await release.wait()
        in_flight -= 1
        return httpx.Response(200, json={})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    connectors = WebhookConnectors({"erp": URL}, client, gateway="https://gw.example", max_calls=2)
    calls = [
        asyncio.create_task(connectors[name].run(ACTION))
        for name in ("erp", "erp", "crm", "crm", "erp")
    ]
    await asyncio.sleep(0.05)
    assert most == 2
    release.set()
    reports = await asyncio.gather(*calls)
    assert all(isinstance(r, ReportActionSucceeded) for r in reports)
    assert most == 2
    await client.aclose()
