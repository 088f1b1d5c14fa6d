"""The case worker API against the real database: every command, every refusal, the reads."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID, uuid4

import httpx

from flowcase.case.composition import CaseAssembly

SHA = hashlib.sha256(b"IdP log export").hexdigest()

Act = Callable[..., Awaitable[httpx.Response]]
Open = Callable[..., Awaitable[UUID]]


async def test_every_command_through_the_api(
    http: httpx.AsyncClient, open_case: Open, act: Act
) -> None:
    case_id = await open_case(request_type="access_complaint", priority="high")
    steps: list[tuple[str, dict[str, Any], str | None]] = [
        ("assignments", {"team": "it-security", "assignee": "agent-42", "actor": "sup-1"}, None),
        ("claims", {}, None),
        ("status-changes", {"to_status": "investigating"}, None),
        ("notes", {"text": "5 failed MFA prompts"}, "n-1"),
        (
            "communications",
            {"direction": "outbound", "channel": "email", "parties": ["jdoe"], "summary": "Asked"},
            "m-1",
        ),
        ("evidence", {"reference": "s3://idp.json", "sha256": SHA}, "e-1"),
        ("tasks", {"title": "Pull IdP logs", "due_at": "2026-11-25T17:00:00Z"}, "t-1"),
        ("tasks/t-1/completion", {"result": "attached as e-1"}, None),
        ("milestones", {"milestone": "root-cause-found"}, None),
        (
            "decisions",
            {"decision": "Restore", "rationale": "Token fault", "relied_on": ["n-1", "e-1"]},
            "d-1",
        ),
        ("overrides", {"target": "sla", "gap_acknowledged": True}, "o-1"),
        (
            "resolution",
            {"outcome_code": "access_restored", "rationale": "Done", "relied_on": ["d-1", "m-1"]},
            None,
        ),
        ("status-changes", {"to_status": "closed"}, None),
    ]
    for version, (path, body, entry_id) in enumerate(steps, start=1):
        response = await act(case_id, path, version, **body)
        assert response.status_code == 200, (path, response.text)
        assert response.json() == {
            "case_id": str(case_id),
            "version": version + 1,
            "entry_id": entry_id,
        }
        assert response.headers["ETag"] == f'"{version + 1}"'

    response = await http.get(f"/v1/cases/{case_id}")
    case = response.json()
    assert response.headers["ETag"] == f'"{len(steps) + 1}"'
    assert case["status"] == "closed"
    assert case["allowed_status_changes"] == ["open"]
    assert (case["team"], case["assignee"]) == ("it-security", "agent-7")
    assert [t["completed"] for t in case["tasks"]] == [True]
    assert case["decisions"][0]["relied_on"] == ["n-1", "e-1"]
    assert case["audit_gaps"] == 1
    assert case["resolutions"][0]["outcome_code"] == "access_restored"

    history = (await http.get(f"/v1/cases/{case_id}/history")).json()["events"]
    assert [e["event_type"] for e in history][:3] == [
        "case.CaseOpened",
        "case.CaseAssigned",
        "case.CaseClaimed",
    ]
    assert history[-2]["event_type"] == "case.CaseResolved"
    note = {"case_id": str(case_id), "note_id": "n-1", "text": "5 failed MFA prompts"}
    assert history[4]["payload"] == note
    assert history[1]["actor"] == "sup-1"

    audit = (await http.get(f"/v1/cases/{case_id}/audit")).json()
    assert audit["verification"]["intact"] is True
    assert len(audit["events"]) == len(steps) + 1
    assert audit["events"][-1]["chain_hash"] == case["chain_head"]
    assert all(e["verified"] for e in audit["events"])
    verify = (await http.get(f"/v1/cases/{case_id}/verify")).json()
    # The anchor follows the store a moment behind: none yet, or one the chain reaches.
    anchored = verify.pop("anchored")
    assert anchored is None or 1 <= anchored <= len(steps) + 1
    assert verify == {
        "case_id": str(case_id),
        "intact": True,
        "verified": len(steps) + 1,
        "head": case["chain_head"],
        "broken": None,
    }


async def test_refusals_are_problems_that_change_nothing(
    http: httpx.AsyncClient, open_case: Open, act: Act, worker: Callable[[str], dict[str, str]]
) -> None:
    case_id = await open_case()

    unknown = await act(uuid4(), "notes", 1, text="hello")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert (await http.get(f"/v1/cases/{uuid4()}/audit")).status_code == 404

    stale = await act(case_id, "notes", 3, text="based on a version never read")
    assert stale.status_code == 409
    assert stale.json()["current_version"] == 1
    assert stale.headers["ETag"] == '"1"'

    illegal = await act(case_id, "status-changes", 1, to_status="closed")
    assert illegal.status_code == 409
    assert illegal.json()["allowed"] == ["investigating", "pending"]
    assert illegal.json()["from_status"] == "open"

    bad_hash = await act(case_id, "evidence", 1, reference="s3://x", sha256="abc")
    assert bad_hash.status_code == 422
    assert bad_hash.json()["errors"] == [
        {"field": "sha256", "reason": "must be the 64 hex digits of a SHA-256 digest"}
    ]
    bad_direction = await act(
        case_id, "communications", 1, direction="sideways", channel="x", summary="y"
    )
    assert bad_direction.status_code == 422
    assert bad_direction.json()["errors"][0]["field"] == "direction"

    unjustified = await act(case_id, "decisions", 1, decision="Restore")
    assert unjustified.status_code == 422
    assert {e["field"] for e in unjustified.json()["errors"]} == {"rationale", "relied_on"}
    unknown_ref = await act(case_id, "decisions", 1, decision="x", rationale="y", relied_on=["n-9"])
    assert unknown_ref.status_code == 422
    assert unknown_ref.json()["errors"][0]["field"] == "relied_on"
    unresolved = await act(case_id, "resolution", 1, outcome_code="done", rationale="because")
    assert unresolved.status_code == 422

    for due_at in ("9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "1969-01-01T00:00Z"):
        out_of_range = await act(case_id, "tasks", 1, title="call back", due_at=due_at)
        assert out_of_range.status_code == 422, (due_at, out_of_range.text)
        assert out_of_range.json()["errors"][0]["field"] == "due_at"
    for context in (b'{"x": NaN}', b'{"x": "\\ud800"}', b'{"x": "a\\u0000"}'):
        poison = await http.post(
            "/v1/cases",
            content=b'{"title": "walk-in", "context": ' + context + b"}",
            headers={"Content-Type": "application/json", **worker("agent-7")},
        )
        assert poison.status_code == 422, (context, poison.text)
        assert poison.json()["errors"][0]["field"] == "context.x"
    for query in ("opened_after", "opened_before", "sla_due_before"):
        calendar_end = await http.get(
            "/v1/cases", params={query: "0001-01-01T00:00:00+01:00"}, headers=worker("agent-7")
        )
        assert calendar_end.status_code == 422, (query, calendar_end.text)
        assert calendar_end.json()["errors"][0]["field"] == f"query.{query}"

    no_version = await http.post(
        f"/v1/cases/{case_id}/notes", json={"text": "which version?"}, headers=worker("agent-7")
    )
    assert no_version.status_code == 422
    assert no_version.json()["errors"][0]["field"] == "expected_version"
    disagreeing = await http.post(
        f"/v1/cases/{case_id}/notes",
        json={"text": "x", "expected_version": 2},
        headers={"If-Match": '"1"', **worker("agent-7")},
    )
    assert disagreeing.status_code == 422
    # Who acts is the token's subject: a body naming an actor is refused.
    named_actor = await http.post(
        f"/v1/cases/{case_id}/notes",
        json={"actor": "someone-else", "text": "who?", "expected_version": 1},
        headers=worker("agent-7"),
    )
    assert named_actor.status_code == 422
    assert named_actor.json()["errors"][0]["field"] == "actor"

    case = (await http.get(f"/v1/cases/{case_id}")).json()
    assert case["version"] == 1
    assert case["notes"] == case["decisions"] == case["evidence"] == []

    by_body = await http.post(
        f"/v1/cases/{case_id}/decisions",
        json={"expected_version": 1, "decision": "x", "gap_acknowledged": True},
        headers=worker("sup-1"),
    )
    assert by_body.status_code == 200
    assert (await http.get(f"/v1/cases/{case_id}")).json()["audit_gaps"] == 1


async def test_fifty_concurrent_writers_lose_no_update(
    http: httpx.AsyncClient, open_case: Open, act: Act
) -> None:
    case_id = await open_case()

    async def writer(n: int) -> int:
        response = await act(case_id, "notes", text=f"writer {n}")
        return response.status_code

    statuses = await asyncio.gather(*(writer(n) for n in range(50)))

    assert set(statuses) <= {200, 409}
    successes = statuses.count(200)
    assert successes >= 1
    case = (await http.get(f"/v1/cases/{case_id}")).json()
    assert case["version"] == 1 + successes
    assert len(case["notes"]) == successes
    assert sorted(n["text"] for n in case["notes"]) == sorted(
        f"writer {n}" for n, status in enumerate(statuses) if status == 200
    )
    assert (await http.get(f"/v1/cases/{case_id}/verify")).json()["intact"] is True


async def test_readiness_and_openapi(http: httpx.AsyncClient, case_service: CaseAssembly) -> None:
    ready = await http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {
        "postgresql": "ok",
        "kafka": "ok",
        "case_search": "ok",
        "relay": "ok",
        "chain_anchors": "ok",
    }

    spec = (await http.get("/openapi.json")).json()
    paths = spec["paths"]
    assert "/v1/cases/{case_id}/tasks/{task_id}/completion" in paths
    for path, operations in paths.items():
        for method, operation in operations.items():
            if method == "post" and path.startswith("/v1/cases/{case_id}"):
                assert {"404", "409", "422"} <= set(operation["responses"]), path
                parameters = {p["name"] for p in operation["parameters"]}
                assert "If-Match" in parameters or "if-match" in parameters, path
    schemas = spec["components"]["schemas"]
    assert all(schemas[name].get("examples") for name in ("RecordDecision", "CasePage", "OpenCase"))
