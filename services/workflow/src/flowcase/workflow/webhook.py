"""An action connector that calls an HTTP webhook (an adapter: the only module here with I/O).

Each attempt POSTs the action as JSON with the action's idempotency key in the `Idempotency-Key`
header; the key is the same on every retry and every redelivery, so a receiver that honours it
performs the action once. Network errors, 429 and 5xx answers are retried with exponential
backoff; any other 4xx means the request itself is wrong, so retrying cannot help.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from flowcase.workflow.connectors import ActionReport
from flowcase.workflow.effects import RunAction
from flowcase.workflow.triggers import ReportActionFailed, ReportActionSucceeded

IDEMPOTENCY_HEADER = "Idempotency-Key"
_UNLIMITED = 1 << 30


class WebhookConnector:
    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        calls: asyncio.Semaphore | None = None,
    ) -> None:
        self.url = url
        self._client = client
        self._headers = dict(headers or {})
        self._sleep = sleep
        self._calls = calls or asyncio.Semaphore(_UNLIMITED)

    async def run(self, action: RunAction) -> ActionReport:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(action.attempts),
            wait=wait_exponential(
                multiplier=action.backoff.total_seconds(),
                max=action.max_backoff.total_seconds(),
            ),
            retry=retry_if_exception(_worth_retrying),
            sleep=self._sleep,
            reraise=True,
        )
        attempts = 0
        try:
            async for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    response = await self._post(action)
        except httpx.HTTPError as exc:
            return ReportActionFailed(step=action.step, attempts=attempts, error=_describe(exc))
        return ReportActionSucceeded(step=action.step, attempts=attempts, result=_result(response))

    async def _post(self, action: RunAction) -> httpx.Response:
        async with self._calls:
            response = await self._client.post(
                self.url,
                json={
                    "request_id": str(action.request_id),
                    "step": action.step,
                    "operation": action.operation,
                    "input": action.input,
                },
                headers={**self._headers, IDEMPOTENCY_HEADER: action.idempotency_key},
            )
        response.raise_for_status()
        return response


def _worth_retrying(exc: BaseException) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        return status == 429 or status >= 500
    return isinstance(exc, httpx.TransportError)


def _describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code} from {exc.request.url}"
    return f"{type(exc).__name__} calling {exc.request.url}: {exc}"


def _result(response: httpx.Response) -> dict[str, object]:
    if not response.content:
        return {}
    try:
        body = response.json()
    except ValueError:
        return {"body": response.text}
    return body if isinstance(body, dict) else {"body": body}


class WebhookConnectors(Mapping[str, WebhookConnector]):
    """Connectors by the names definitions use: each configured URL, and every other name through
    the gateway when one is set (`{gateway}/{name}`), so one routing endpoint can serve them all."""

    def __init__(
        self,
        urls: Mapping[str, str],
        client: httpx.AsyncClient,
        *,
        gateway: str | None = None,
        max_calls: int | None = None,
    ) -> None:
        """`max_calls` bounds the calls in flight across every connector: the rest wait here,
        in a plain queue, rather than in httpcore's pool, whose bookkeeping grows with the
        square of the requests queued in it (a third of the workflow's time in a burst)."""
        self._client = client
        self._gateway = gateway.rstrip("/") if gateway else None
        self._calls = asyncio.Semaphore(max_calls or _UNLIMITED)
        self._connectors = {name: self._connector(url) for name, url in urls.items()}

    def __getitem__(self, name: str) -> WebhookConnector:
        if name not in self._connectors:
            if self._gateway is None:
                raise KeyError(name)
            self._connectors[name] = self._connector(f"{self._gateway}/{name}")
        return self._connectors[name]

    def _connector(self, url: str) -> WebhookConnector:
        return WebhookConnector(url, self._client, calls=self._calls)

    def __iter__(self) -> Iterator[str]:
        return iter(self._connectors)

    def __len__(self) -> int:
        return len(self._connectors)
