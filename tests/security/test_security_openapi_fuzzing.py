"""Property-based fuzzing of every service's OpenAPI document with schemathesis.

Each service's app serves its own document (loaded with schemathesis's ASGI loader); schemathesis
generates requests for every operation in it, valid ones and ones that break the document's
constraints, and every answer must be: no 5xx, a status code the operation documents, its
documented content type, and a body and headers that match the documented schema. Requests that
break the document must be refused with a 4xx.

The requests go through an in-process client in the test's event loop, where the services'
connection pools live (schemathesis's own ASGI transport would call the app from an event loop
of its own). Generation is derandomized and bounded per operation: the run is the same every time
and short.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from flowcase.runtime.auth import Role

# Examples per operation (valid, invalid). A governance report computes every window of up to
# 1 000 per process type, a second or two a request: fewer examples there keep the run short.
EXAMPLES = {
    "intake": (12, 8),
    "workflow": (12, 8),
    "case": (12, 8),
    "governance": (8, 5),
}
CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
CHECKS = {
    GenerationMode.POSITIVE: CONFORMANCE,
    GenerationMode.NEGATIVE: [*CONFORMANCE, negative_data_rejection],
}
# A supervisor of one team reaches more refusals (404 for other teams' objects, 403 for admin
# only operations) on the APIs where people act.
CALLERS: dict[str, Callable[[Any], dict[str, str]]] = {
    "admin": lambda tokens: tokens.admin(),
    "supervisor": lambda tokens: tokens.headers(
        Role.AGENT, Role.SUPERVISOR, teams=["it-security"], subject="fuzz-supervisor"
    ),
}
RUNS = [
    *((service, "admin") for service in EXAMPLES),
    ("workflow", "supervisor"),
    ("case", "supervisor"),
]


@pytest.fixture(scope="module")
async def platform(start_platform: Callable[..., Any]) -> AsyncIterator[Any]:
    async with start_platform() as platform:
        yield platform


def _fuzz(
    schema: Any,
    send: Callable[[Any], httpx.Response],
    mode: GenerationMode,
    examples: int,
) -> dict[str, str]:
    """Every failing operation's report (by its label), with `examples` requests of `mode`."""
    failures: dict[str, str] = {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=examples,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def answers_as_documented(case: Any) -> None:
            case.validate_response(send(case), checks=CHECKS[mode])

        try:
            answers_as_documented()
        except Unsatisfiable:
            continue  # nothing to break: the operation takes no input (health checks, metrics)
        except (Exception, FailureGroup) as failure:
            failures[f"{mode.value} {operation.label}"] = str(failure)
    return failures


async def _fuzz_service(
    app: Any, service: str, headers: dict[str, str], examples: tuple[int, int]
) -> dict[str, str]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    loop = asyncio.get_running_loop()
    base_url = f"http://{service}"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=base_url
    ) as client:

        async def request(case: Any) -> httpx.Response:
            sent = case.as_transport_kwargs(base_url=base_url, headers=headers)
            body: dict[str, Any] = {}
            if "json" in sent:
                body["json"] = sent["json"]
            elif sent.get("data") is not None:
                body["content"] = sent["data"]
            client.cookies = sent.get("cookies") or {}
            return await client.request(
                sent["method"],
                sent["url"],
                headers=sent.get("headers"),
                params=sent.get("params"),
                **body,
            )

        def send(case: Any) -> httpx.Response:
            return asyncio.run_coroutine_threadsafe(request(case), loop).result(timeout=60)

        failures: dict[str, str] = {}
        modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        for mode, count in zip(modes, examples, strict=True):
            failures |= await asyncio.to_thread(_fuzz, schema, send, mode, count)
        return failures


@pytest.mark.timeout(300)
# schemathesis's own strategies draw from `random`, which Hypothesis warns about.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
@pytest.mark.parametrize(("service", "caller"), RUNS)
async def test_security_every_operation_answers_as_its_openapi_says(
    platform: Any, tokens: Any, service: str, caller: str
) -> None:
    failures = await _fuzz_service(
        platform.apps[service], service, CALLERS[caller](tokens), EXAMPLES[service]
    )
    assert not failures, "\n\n".join(f"== {label}\n{report}" for label, report in failures.items())
