"""Pure rules of the API: the version a command is based on, the opaque search cursor, and
the command routes made from their table."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi import FastAPI

from flowcase.case.case_search import InvalidCursor, Sort, decode_cursor, encode_cursor
from flowcase.case.chain import ChainAnchor
from flowcase.case.commands import CaseCommand, Claim
from flowcase.case.errors import AnchorsUnreadable
from flowcase.case.http_api import (
    COMMAND_ROUTES,
    case_router,
    expected_version,
    install_case_problems,
)
from flowcase.devstack.dev_tokens import Tokens
from flowcase.runtime import ProblemError
from flowcase.runtime.auth import Authenticator, AuthSettings, Role


@pytest.mark.parametrize(
    ("if_match", "in_body", "expected"),
    [('"4"', None, 4), ('W/"4"', None, 4), ("4", None, 4), (None, 4, 4), ('"4"', 4, 4)],
)
def test_the_version_comes_from_if_match_or_the_body(
    if_match: str | None, in_body: int | None, expected: int
) -> None:
    assert expected_version(if_match, Claim(expected_version=in_body)) == expected


@pytest.mark.parametrize(
    ("if_match", "in_body", "field"),
    [
        (None, None, "expected_version"),
        ('"4"', 5, "expected_version"),
        ("*", None, "header.If-Match"),
        ('"0"', None, "header.If-Match"),
    ],
)
def test_a_missing_unclear_or_contradictory_version_is_422(
    if_match: str | None, in_body: int | None, field: str
) -> None:
    with pytest.raises(ProblemError) as raised:
        expected_version(if_match, Claim(expected_version=in_body))
    assert raised.value.problem.status == 422
    assert [e.field for e in raised.value.problem.errors] == [field]


def test_a_cursor_round_trips_and_a_forged_one_is_refused() -> None:
    opened_at, case_id = datetime(2026, 11, 24, 9, 15, 0, 123456, tzinfo=UTC), uuid4()
    assert decode_cursor(encode_cursor(opened_at, case_id)) == (opened_at, case_id)
    for forged in ("not-a-cursor", "", encode_cursor(opened_at, case_id)[:-3]):
        with pytest.raises(InvalidCursor):
            decode_cursor(forged)
    # A page of one order cannot go on in another.
    by_deadline = encode_cursor(opened_at, case_id, Sort.DEADLINE)
    assert decode_cursor(by_deadline, Sort.DEADLINE) == (opened_at, case_id)
    with pytest.raises(InvalidCursor, match="of the deadline order, not opened"):
        decode_cursor(by_deadline)


def _concrete(command: type[Any]) -> set[type[Any]]:
    found: set[type[Any]] = set() if inspect.isabstract(command) else {command}
    sub: type[Any]
    for sub in command.__subclasses__():
        found |= _concrete(sub)
    return found


def test_every_command_has_one_route_and_every_route_one_command() -> None:
    routed = [route.command for route in COMMAND_ROUTES]

    assert sorted(c.__name__ for c in routed) == sorted(c.__name__ for c in _concrete(CaseCommand))
    assert len(set(routed)) == len(routed)


def test_a_field_the_path_fills_is_no_part_of_the_body(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWCASE_AUTH_DEV_SECRET", "a-development-secret-of-enough-length")
    app = FastAPI()
    service: Any = SimpleNamespace(application=None)
    search: Any = None
    anchor_of: Any = None
    authenticator = Authenticator(AuthSettings())
    app.include_router(case_router(service, search, authenticator, anchor_of, triage_team="t"))
    openapi = app.openapi()

    operation = openapi["paths"]["/v1/cases/{case_id}/tasks/{task_id}/completion"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = openapi["components"]["schemas"][body.rsplit("/", 1)[-1]]
    assert [p["name"] for p in operation["parameters"] if p["in"] == "path"] == [
        "case_id",
        "task_id",
    ]
    assert set(schema["properties"]) == {"expected_version", "result"}
    assert schema["additionalProperties"] is False
    assert operation["operationId"].startswith("complete_task_")


async def test_a_verification_whose_anchors_cannot_be_read_is_503_not_unchecked(
    auth_settings: AuthSettings, tokens: Tokens
) -> None:
    async def unreadable(case_id: UUID) -> ChainAnchor | None:
        raise AnchorsUnreadable("KafkaConnectionError: Unable to bootstrap from 127.0.0.1:9")

    async def get_case(case_id: UUID) -> Any:
        return SimpleNamespace(team=None)  # unassigned: the triage team's

    service: Any = SimpleNamespace(application=None, get_case=get_case)
    search: Any = None
    app = FastAPI()
    install_case_problems(app)
    app.include_router(
        case_router(service, search, Authenticator(auth_settings), unreadable, triage_team="t")
    )
    headers = tokens.headers(Role.AGENT, teams=["t"])

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://case"
    ) as client:
        answers = [
            await client.get(f"/v1/cases/{uuid4()}/{what}", headers=headers)
            for what in ("verify", "audit")
        ]

    for answer in answers:
        assert answer.status_code == 503
        assert answer.json()["title"] == "Chain anchors unreadable"
        assert "Unable to bootstrap" in answer.json()["detail"]
