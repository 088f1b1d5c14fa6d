"""The boundary policy's edge classes against every operation of every service.

Schemathesis generates what the documents describe; the values that broke the platform in an
outside run are ones a document does not describe: NUL and lone surrogates in strings, numbers
JSON cannot carry (NaN, Infinity, 1e400) or Python will not parse (5 000 digits), times at the
calendar's ends in a time zone that pushes them over, nesting deeper than the policy allows.
Each is put in every query parameter and every field of a valid body (schemathesis's first
example of the operation) of every operation, one at a time, and each answer must be below 500.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.security.test_security_openapi_fuzzing import CALLERS

PLACEHOLDER = "__flowcase_edge__"
# As raw JSON text, so that the literals no encoder writes (NaN, 1e400) reach the server.
BODY_EDGES = {
    "nul": '"nul\\u0000here"',
    "lone surrogate": '"\\ud800"',
    "NaN": "NaN",
    "Infinity": "-Infinity",
    "1e400": "1e400",
    "5000 digits": "1" * 5000,
    "year 1 at +01:00": '"0001-01-01T00:00:00+01:00"',
    "year 9999 at -01:00": '"9999-12-31T23:59:59-01:00"',
    "40 deep": "[" * 40 + "]" * 40,
}
# No lone surrogate: a URL carries bytes, and the bytes UTF-8 would give one are no UTF-8, which
# the server decodes to U+FFFD (the HTTP client here would not even send them).
QUERY_EDGES = {
    "nul": "nul\x00here",
    "NaN": "NaN",
    "5000 digits": "1" * 5000,
    "past int64": str(2**63),
    "year 1 at +01:00": "0001-01-01T00:00:00+01:00",
    "year 9999 at -01:00": "9999-12-31T23:59:59-01:00",
}
SERVICES = ("intake", "workflow", "case", "governance")


@pytest.fixture(scope="module")
async def platform(start_platform: Callable[..., Any]) -> AsyncIterator[Any]:
    async with start_platform() as platform:
        yield platform


def _leaves(document: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON document a value can go, the document itself included."""
    yield path
    if isinstance(document, dict):
        for key, value in document.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from _leaves(value, (*path, index))


def _with(document: Any, path: tuple[Any, ...], edge: str) -> bytes:
    if not path:
        return edge.encode("utf-8", "surrogatepass")
    copy = json.loads(json.dumps(document))
    place = copy
    for step in path[:-1]:
        place = place[step]
    place[path[-1]] = PLACEHOLDER
    text = json.dumps(copy).replace(json.dumps(PLACEHOLDER), edge, 1)
    return text.encode("utf-8", "surrogatepass")


def _query(parameters: dict[str, Any]) -> str:
    return urlencode(
        [
            (name, value)
            for name, values in parameters.items()
            for value in (values if isinstance(values, list) else [values])
        ]
    )


def _first_example(operation: Any) -> Any | None:
    """Schemathesis's first valid example of the operation (derandomized), or None."""
    found: list[Any] = []

    @settings(
        max_examples=1,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def take(case: Any) -> None:
        found.append(case)

    try:
        take()
    except Unsatisfiable:
        return None
    return found[0] if found else None


def _requests(schema: Any) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(label, method, path, request keywords) for every edge in every operation."""
    for result in schema.get_all_operations():
        operation = result.ok()
        case = _first_example(operation)
        if case is None:
            continue
        path_parameters = {
            name: str(uuid.uuid4()) if value is None else value
            for name, value in (case.path_parameters or {}).items()
        }
        path = operation.path.format(**path_parameters)
        method = operation.method.upper()
        for parameter in operation.query:
            for name, edge in QUERY_EDGES.items():
                params = {**(case.query or {}), parameter.name: edge}
                yield (
                    f"{method} {operation.path} ?{parameter.name}={name}",
                    method,
                    path,
                    {"params": params},
                )
        if case.body is None or not isinstance(case.body, dict | list):
            continue
        for leaf in _leaves(case.body):
            for name, edge in BODY_EDGES.items():
                where = "/".join(map(str, leaf)) or "(body)"
                yield (
                    f"{method} {operation.path} {where}={name}",
                    method,
                    path,
                    {
                        "params": case.query or None,
                        "content": _with(case.body, leaf, edge),
                        "headers": {"content-type": "application/json"},
                    },
                )


@pytest.mark.timeout(300)
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
@pytest.mark.parametrize("service", SERVICES)
async def test_security_edge_values_never_get_a_server_error(
    platform: Any, tokens: Any, service: str
) -> None:
    app = platform.apps[service]
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    requests = await asyncio.to_thread(lambda: list(_requests(schema)))
    failures: list[str] = []
    async with httpx.AsyncClient(
        # A route's failure is answered 500 as a server would, to be counted with the rest.
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url=f"http://{service}",
        headers=CALLERS["admin"](tokens),
    ) as client:
        for label, method, path, keywords in requests:
            answer = await client.request(method, path, **keywords)
            if answer.status_code >= 500:
                failures.append(f"{label}: {answer.status_code} {answer.text[:200]}")
    assert requests
    assert not failures, f"{len(failures)} of {len(requests)}:\n" + "\n".join(failures)
