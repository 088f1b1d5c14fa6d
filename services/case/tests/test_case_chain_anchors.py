"""Chain heads anchored on Kafka against someone who can write the case database but holds no
key: a tail rewritten with every hash recomputed, or cut short, passes the chain check and is
caught against the anchors by `flowcase case verify` and by the API's verification."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from uuid import UUID

import asyncpg
import httpx
from prometheus_client import REGISTRY
from typer.testing import CliRunner, Result

from flowcase.case.application import CaseApplication
from flowcase.case.chain import ChainAnchor, ChainRecord, expected_hash, verify_chain
from flowcase.case.chain_anchors import anchors_on
from flowcase.case.cli import app as cli
from flowcase.case.composition import CaseAssembly
from flowcase.devstack.in_process import eventually
from flowcase.events.kafka import read_to_end
from flowcase.events.settings import KafkaSettings
from flowcase.events.topics import Topic
from flowcase.eventstore import postgres_env

Act = Callable[..., Awaitable[httpx.Response]]
Open = Callable[..., Awaitable[UUID]]

EVENTS = "caseapplication_events"
REFUSED = "flowcase_case_chain_anchors_refused_total"


async def a_case_with_notes(open_case: Open, act: Act, notes: int) -> UUID:
    case_id = await open_case()
    for n in range(notes):
        assert (await act(case_id, "notes", n + 1, text=f"note {n + 1}")).status_code == 200
    return case_id


async def anchors(kafka: KafkaSettings) -> dict[UUID, ChainAnchor]:
    return anchors_on(await read_to_end(kafka, kafka.topic(Topic.CASE_CHAIN_HEADS)))


async def anchored_heads(
    http: httpx.AsyncClient, kafka: KafkaSettings, *case_ids: UUID
) -> dict[UUID, ChainAnchor]:
    """Wait until each case's current head is anchored; return those anchors."""
    heads = {}
    for case_id in case_ids:
        verification = (await http.get(f"/v1/cases/{case_id}/verify")).json()
        heads[case_id] = ChainAnchor(verification["verified"], verification["head"])

    def all_anchored(found: dict[UUID, ChainAnchor]) -> bool:
        return all(found.get(case_id) == head for case_id, head in heads.items())

    await eventually(lambda: anchors(kafka), all_anchored)
    return heads


async def verify(*args: str, database_url: str, env: dict[str, str | None]) -> Result:
    return await asyncio.to_thread(
        CliRunner().invoke, cli, ["verify", *args, "--database-url", database_url], env=env
    )


async def replace_in_row(
    conn: asyncpg.Connection, case_id: UUID, version: int, old: str, new: str
) -> str:
    return await conn.execute(
        f"UPDATE {EVENTS} SET state = convert_to(replace(convert_from(state, 'UTF8'), $3, $4), "
        "'UTF8') WHERE originator_id = $1 AND originator_version = $2",
        case_id,
        version,
        old,
        new,
    )


async def rewrite_tail(database_url: str, case_id: UUID, *, edited_version: int) -> None:
    """Edit the note at `edited_version` in PostgreSQL and recompute every hash after it, as
    the chain's documented algorithm says: what a database writer without a key can do."""
    conn = await asyncpg.connect(database_url)
    application = CaseApplication(env=postgres_env(database_url, pool_size=1))
    try:
        async with conn.transaction():
            note = f"note {edited_version - 1}"
            changed = await replace_in_row(conn, case_id, edited_version, note, f"{note}, edited")
            assert changed == "UPDATE 1"
        records = await asyncio.to_thread(application.chain_records, case_id)
        previous = records[edited_version - 2].state["chain_hash"]
        async with conn.transaction():
            for record in records[edited_version - 1 :]:
                recomputed = expected_hash(previous, case_id, record)
                assert recomputed is not None
                stored = record.state["chain_hash"]
                assert await replace_in_row(conn, case_id, record.version, stored, recomputed) == (
                    "UPDATE 1"
                )
                previous = recomputed
        rewritten = await asyncio.to_thread(application.chain_records, case_id)
        assert rewritten[edited_version - 1].state["text"].endswith(", edited")
    finally:
        application.close()
        await conn.close()


async def stored_chain(database_url: str, case_id: UUID) -> list[ChainRecord]:
    """The case's chain as the database holds it, read without the service."""
    application = CaseApplication(env=postgres_env(database_url, pool_size=1))
    try:
        return await asyncio.to_thread(application.chain_records, case_id)
    finally:
        application.close()


async def test_an_untouched_platform_verifies_clean_against_its_anchors(
    http: httpx.AsyncClient,
    open_case: Open,
    act: Act,
    kafka_settings: KafkaSettings,
    database_url: str,
    kafka_env: dict[str, str | None],
) -> None:
    case_ids = [await a_case_with_notes(open_case, act, notes) for notes in (0, 2, 4)]
    heads = await anchored_heads(http, kafka_settings, *case_ids)
    assert [heads[case_id].version for case_id in case_ids] == [1, 3, 5]

    result = await verify("--all", database_url=database_url, env=kafka_env)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"ok      {case_id}: {heads[case_id].version} event"
        f"{'s' if heads[case_id].version > 1 else ''}, head {heads[case_id].chain_hash[:16]}…, "
        f"anchored at version {heads[case_id].version}"
        for case_id in case_ids
    ]
    assert "3 of 3 case chains intact; 3 checked against their anchors, 0 not anchored yet" in (
        result.output
    )
    one = await verify(str(case_ids[1]), database_url=database_url, env=kafka_env)
    assert one.exit_code == 0, one.output
    assert one.stdout.endswith("anchored at version 3\n")


async def test_a_tail_rewritten_with_recomputed_hashes_is_caught_against_its_anchor(
    http: httpx.AsyncClient,
    open_case: Open,
    act: Act,
    case_service: CaseAssembly,
    kafka_settings: KafkaSettings,
    database_url: str,
    kafka_env: dict[str, str | None],
) -> None:
    case_id = await a_case_with_notes(open_case, act, notes=4)
    anchored = (await anchored_heads(http, kafka_settings, case_id))[case_id]
    assert anchored.version == 5

    await rewrite_tail(database_url, case_id, edited_version=3)
    # The keyless chain cannot tell (every hash links); the API checks it against its anchor.
    assert verify_chain(case_id, await stored_chain(database_url, case_id)).intact
    verification = (await http.get(f"/v1/cases/{case_id}/verify")).json()
    assert verification["intact"] is False
    assert verification["anchored"] == 5
    assert verification["broken"]["kind"] == "rewritten"
    assert verification["broken"]["version"] == 5
    audit = (await http.get(f"/v1/cases/{case_id}/audit")).json()
    assert audit["verification"] == verification
    assert not any(event["verified"] for event in audit["events"])

    # Getting the rewritten chain anchored in its place does not work: not by appending to it,
    # nor by rewinding the follower so that it anchors every stored event again.
    refused_before = REGISTRY.get_sample_value(REFUSED) or 0.0
    assert (await act(case_id, "notes", text="after the rewrite")).status_code == 200
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE flowcase_log_position SET position = 0 WHERE follower = $1",
            case_service.anchors.name,
        )
    finally:
        await conn.close()
    await eventually(case_service.anchors.backlog, lambda backlog: backlog == 0)
    assert (REGISTRY.get_sample_value(REFUSED) or 0.0) > refused_before
    assert (await anchors(kafka_settings))[case_id] == anchored
    assert verify_chain(case_id, await stored_chain(database_url, case_id)).intact

    for args in (["--all"], [str(case_id)]):
        result = await verify(*args, database_url=database_url, env=kafka_env)
        assert result.exit_code == 1, result.output
        assert result.stdout.startswith(
            f"BROKEN  {case_id}: version 5 rewritten: the chain holds, but not to the hash "
            "anchored at version 5"
        )
        assert "0 of 1 case chains intact; 1 checked against their anchors" in result.output


async def test_deleted_latest_events_fall_short_of_their_anchor(
    http: httpx.AsyncClient,
    open_case: Open,
    act: Act,
    kafka_settings: KafkaSettings,
    database_url: str,
    kafka_env: dict[str, str | None],
) -> None:
    cut, gone = [await a_case_with_notes(open_case, act, notes=4) for _ in range(2)]
    await anchored_heads(http, kafka_settings, cut, gone)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            f"DELETE FROM {EVENTS} WHERE originator_id = $1 AND originator_version > 3", cut
        )
        await conn.execute(f"DELETE FROM {EVENTS} WHERE originator_id = $1", gone)
    finally:
        await conn.close()

    result = await verify("--all", database_url=database_url, env=kafka_env)

    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines() == [
        f"BROKEN  {cut}: version 4 missing: version 5 was anchored, but the stored chain ends "
        "at version 3: the later events were deleted (3 events verified before it)",
        f"BROKEN  {gone}: version 1 missing: version 5 was anchored, but the stored chain is "
        "empty: the later events were deleted (0 events verified before it)",
    ]
    over_http = (await http.get(f"/v1/cases/{cut}/verify")).json()
    assert (over_http["intact"], over_http["anchored"], over_http["verified"]) == (False, 5, 3)
    assert (over_http["broken"]["kind"], over_http["broken"]["version"]) == ("missing", 4)
    # A case known only by its anchor is tampered with, not unknown.
    one = await verify(str(gone), database_url=database_url, env=kafka_env)
    assert one.exit_code == 1, one.output
