"""The case search read model: filters, cursor pages, and a rebuild equal to the live one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import httpx
from typer.testing import CliRunner

from flowcase.case.cli import app as cli
from flowcase.case.composition import CaseAssembly
from flowcase.events.catalogue.workflow import EscalatedToCase

Act = Callable[..., Awaitable[httpx.Response]]
Open = Callable[..., Awaitable[UUID]]


async def ids(http: httpx.AsyncClient, **query: object) -> list[str]:
    response = await http.get("/v1/cases", params={k: str(v) for k, v in query.items()})
    assert response.status_code == 200, response.text
    return [item["case_id"] for item in response.json()["items"]]


async def test_search_filters_pages_and_a_rebuild_equal_to_the_live_projection(
    case_service: CaseAssembly,
    http: httpx.AsyncClient,
    open_case: Open,
    act: Act,
    database_url: str,
) -> None:
    soon = datetime.now(UTC) + timedelta(hours=2)
    opened = [
        await open_case(f"Case {n}", request_type="access_complaint" if n % 2 else "refund")
        for n in range(7)
    ]
    newest_first = [str(case_id) for case_id in reversed(opened)]
    a, b, c = opened[:3]
    await act(a, "assignments", team="it-security", assignee="agent-42")
    await act(a, "status-changes", to_status="investigating")
    await act(b, "assignments", team="it-security")
    await act(b, "claims")
    await act(b, "tasks", title="Call back", due_at=soon.isoformat())
    await act(b, "tasks", title="Later", due_at=(soon + timedelta(days=3)).isoformat())
    await act(b, "tasks/t-1/completion")
    await act(c, "tasks", title="Urgent", due_at=soon.isoformat())
    await act(c, "notes", text="Done")
    await act(c, "resolution", outcome_code="refunded", rationale="Policy", relied_on=["n-1"])
    await case_service.projector.catch_up()

    assert await ids(http) == newest_first
    assert await ids(http, team="it-security") == [str(b), str(a)]
    assert await ids(http, team="it-security", assignee="agent-7") == [str(b)]
    assert await ids(http, status="investigating") == [str(a)]
    assert await ids(http, status="resolved") == [str(c)]
    assert await ids(http, request_type="refund") == [str(i) for i in reversed(opened[::2])]
    # b's first task is done: its SLA is the later one; c's open task is due soon.
    assert await ids(http, sla_due_before=(soon + timedelta(minutes=1)).isoformat()) == [str(c)]
    # By deadline: only the cases that have one, the soonest first, a page at a time.
    assert await ids(http, sort="deadline") == [str(c), str(b)]
    first = (await http.get("/v1/cases", params={"sort": "deadline", "limit": "1"})).json()
    assert [item["case_id"] for item in first["items"]] == [str(c)]
    rest = await ids(http, sort="deadline", cursor=first["next_cursor"])
    assert rest == [str(b)]
    assert await ids(http, sla_due_before=(soon + timedelta(days=4)).isoformat()) == [
        str(c),
        str(b),
    ]
    row = (await http.get("/v1/cases", params={"status": "resolved"})).json()["items"][0]
    assert row["outcome_code"] == "refunded"
    assert row["version"] == 4
    first_opened = datetime.fromisoformat(
        (await http.get(f"/v1/cases/{opened[0]}")).json()["opened_at"]
    )
    assert await ids(http, opened_before=first_opened.isoformat()) == []
    assert await ids(http, opened_after=first_opened.isoformat()) == newest_first

    pages, cursor = [], None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = (await http.get("/v1/cases", params=params)).json()
        pages.append([item["case_id"] for item in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [case_id for page in pages for case_id in page] == newest_first

    too_many = await http.get("/v1/cases", params={"limit": "1000"})
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["field"] == "query.limit"
    forged = await http.get("/v1/cases", params={"cursor": "not-a-cursor"})
    assert forged.status_code == 422
    assert forged.json()["errors"][0]["field"] == "query.cursor"
    naive = await http.get("/v1/cases", params={"opened_before": "2026-11-24T09:00:00"})
    assert naive.status_code == 422

    live = await case_service.search.all_rows()
    assert await case_service.projector.rebuild() == 7 + 2 + 5 + 3
    assert await case_service.search.all_rows() == live
    # The command does the same while the service (and its projector) runs.
    rebuilt = await asyncio.to_thread(
        CliRunner().invoke, cli, ["rebuild-search", "--database-url", database_url]
    )
    assert rebuilt.exit_code == 0, rebuilt.output
    # However the two projectors shared the batches, the line names what the model now holds.
    assert rebuilt.output.startswith(f"case search rebuilt from {7 + 2 + 5 + 3} stored events: ")
    replayed = int(rebuilt.output.split(": ")[1].split()[0])
    assert (replayed == 7 + 2 + 5 + 3) != ("by the running case service" in rebuilt.output)
    assert await case_service.search.all_rows() == live
    assert await case_service.projector.backlog() == 0


async def test_an_escalated_case_works_against_the_requests_promise(
    case_service: CaseAssembly, http: httpx.AsyncClient, escalation: EscalatedToCase
) -> None:
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    escalated = escalation.model_copy(
        update={"request_id": uuid4(), "submitted_at": due - timedelta(hours=4), "due_at": due}
    )
    case_id = await asyncio.to_thread(
        case_service.service.application.open_from_escalation, escalated
    )
    await case_service.projector.catch_up()
    # Its deadline is the request's, though the case has no task yet.
    assert await ids(http, sla_due_before=(due + timedelta(minutes=1)).isoformat()) == [
        str(case_id)
    ]
    assert await ids(http, sla_due_before=(due - timedelta(minutes=1)).isoformat()) == []
    row = (await http.get("/v1/cases")).json()["items"][0]
    assert datetime.fromisoformat(row["sla_due_at"]) == due


async def test_a_case_search_cannot_hold_is_set_aside_and_search_goes_on(
    case_service: CaseAssembly, http: httpx.AsyncClient, open_case: Open, act: Act
) -> None:
    """The API refuses a NUL in a title now, but the store keeps what it once accepted: the
    case stored straight through the application stands for one. Search sets it aside (a dead
    letter) instead of stalling every case after it."""
    poison = await asyncio.to_thread(
        case_service.service.application.open_case, "nul\u0000title", actor="sup-1"
    )
    later = await open_case("Opened after")
    await act(later, "notes", text="Still searchable")
    deadline = asyncio.get_running_loop().time() + 60
    while str(later) not in await ids(http):
        assert asyncio.get_running_loop().time() < deadline, "search stalled behind the NUL"
        await asyncio.sleep(0.1)
    assert str(poison) not in await ids(http)
    assert await case_service.projector.readiness() is None
    ready = await http.get("/readyz")
    assert ready.status_code == 200, ready.text


async def test_a_paused_clock_holds_the_time_left_and_moves_the_deadline_on(
    case_service: CaseAssembly, http: httpx.AsyncClient, act: Act, escalation: EscalatedToCase
) -> None:
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    escalated = escalation.model_copy(update={"request_id": uuid4(), "due_at": due})
    case_id = await asyncio.to_thread(
        case_service.service.application.open_from_escalation, escalated
    )
    paused = await act(case_id, "clock/pause", reason="Waiting for the employee's statement")
    assert paused.status_code == 200, paused.text
    view = (await http.get(f"/v1/cases/{case_id}")).json()
    paused_at = datetime.fromisoformat(view["clock_paused_at"])
    left = (due - paused_at).total_seconds()
    assert view["remaining_seconds"] == left  # held, however long the pause lasts
    again = await act(case_id, "clock/pause", reason="again")
    assert again.status_code == 409
    resumed = await act(case_id, "clock/resume")
    assert resumed.status_code == 200, resumed.text
    view = (await http.get(f"/v1/cases/{case_id}")).json()
    assert view["clock_paused_at"] is None
    moved = datetime.fromisoformat(view["due_at"])
    assert moved > due
    assert left - 60 < view["remaining_seconds"] <= left  # counting down again from there
    await case_service.projector.catch_up()
    [row] = (await http.get("/v1/cases")).json()["items"]
    assert datetime.fromisoformat(row["sla_due_at"]) == moved
