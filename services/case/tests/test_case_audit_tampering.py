"""The audit chain against rows changed behind the service's back, directly in PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from uuid import UUID

import asyncpg
import httpx
from typer.testing import CliRunner

from flowcase.case.cli import app as cli

Act = Callable[..., Awaitable[httpx.Response]]
Open = Callable[..., Awaitable[UUID]]

EVENTS = "caseapplication_events"


async def a_case_with_notes(open_case: Open, act: Act, notes: int = 3) -> UUID:
    case_id = await open_case()
    for n in range(notes):
        assert (await act(case_id, "notes", n + 1, text=f"note {n + 1}")).status_code == 200
    return case_id


async def test_a_modified_deleted_or_swapped_row_breaks_the_chain_where_it_happened(
    http: httpx.AsyncClient,
    open_case: Open,
    act: Act,
    database_url: str,
    kafka_env: dict[str, str | None],
) -> None:
    intact, modified, deleted, swapped = [await a_case_with_notes(open_case, act) for _ in range(4)]
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            changed = await conn.execute(
                f"UPDATE {EVENTS} SET state = convert_to(replace(convert_from(state, 'UTF8'), "
                "'note 2', 'note 2, edited'), 'UTF8') "
                "WHERE originator_id = $1 AND originator_version = 3",
                modified,
            )
            assert changed == "UPDATE 1"
            removed = await conn.execute(
                f"DELETE FROM {EVENTS} WHERE originator_id = $1 AND originator_version = 2",
                deleted,
            )
            assert removed == "DELETE 1"
            for old, new in ((2, -1), (3, 2), (-1, 3)):
                await conn.execute(
                    f"UPDATE {EVENTS} SET originator_version = $3 "
                    "WHERE originator_id = $1 AND originator_version = $2",
                    swapped,
                    old,
                    new,
                )
    finally:
        await conn.close()

    async def verification(case_id: UUID) -> dict[str, object]:
        response = await http.get(f"/v1/cases/{case_id}/verify")
        assert response.status_code == 200, response.text
        return response.json()

    assert (await verification(intact))["intact"] is True
    found = {
        name: (await verification(case_id))["broken"]
        for name, case_id in (("modified", modified), ("deleted", deleted), ("swapped", swapped))
    }
    assert {name: (b["version"], b["kind"]) for name, b in found.items()} == {  # type: ignore[index]
        "modified": (3, "modified"),
        "deleted": (2, "missing"),
        "swapped": (2, "reordered"),
    }

    broken = await http.get(f"/v1/cases/{deleted}")
    assert broken.status_code == 500
    assert broken.json()["verify"] == f"/v1/cases/{deleted}/verify"
    audit = (await http.get(f"/v1/cases/{modified}/audit")).json()
    assert audit["verification"]["broken"]["version"] == 3
    assert [e["verified"] for e in audit["events"]] == [True, True, False, False]
    assert audit["events"][2]["state"]["text"] == "note 2, edited"

    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["verify", "--all", "--database-url", database_url], env=kafka_env
    )
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith(f"ok      {intact}")
    assert lines[1].startswith(f"BROKEN  {modified}: version 3 modified")
    assert lines[2].startswith(f"BROKEN  {deleted}: version 2 missing")
    assert lines[3].startswith(f"BROKEN  {swapped}: version 2 reordered")

    one = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["verify", str(intact), "--database-url", database_url],
        env=kafka_env,
    )
    assert one.exit_code == 0, one.output
    assert one.stdout.startswith(f"ok      {intact}: 4 events")
