"""Case commands and event appends per second, next to a plain PostgreSQL insert rate.

    uv run python benchmarks/case.py --seconds 5 [--writers 8]

Runs against the PostgreSQL and broker the test fixtures use (the FLOWCASE_* environment, else
the local stack), on a fresh database and its own topics, and measures in one run:

1. plain PostgreSQL: one INSERT and COMMIT per row (psycopg, the event store's driver) of a row
   shaped like a stored case event, from `--writers` threads with a connection each;
2. case commands (application): `CaseApplication.add_note` from `--writers` threads, each on its
   own case: load (snapshot + events), check the version, append one chained event, commit;
3. case commands (HTTP): the same command through the API (`POST /v1/cases/{id}/notes` with
   If-Match), `--writers` concurrent clients in this process: first with the service's workers
   stopped (the API alone), then with the relay publishing to Kafka and the search projector
   running beside it, as in production;
4. events appended: cases of 20 events saved in one transaction each, from `--writers` threads;
5. the relay publishing everything stored so far to Kafka, then the search projector folding it
   (each alone, from the backlog the phases above left).

The HTTP phases each get a fresh database, so the relay and projector start from nothing.

The figure to report is each rate next to the plain insert rate. Results go to
benchmarks/results/case-<time>.json. Nothing here is asserted: it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
from tokens import AUTH, bearer

from flowcase.bench.scratch import run_on_shared_stack, scratch_database, scratch_topics
from flowcase.case.aggregate import Case
from flowcase.case.application import CaseApplication
from flowcase.case.commands import AddNote
from flowcase.case.composition import CaseAssembly, build_service
from flowcase.devstack.endpoints import Endpoints
from flowcase.events.settings import DatabaseSettings
from flowcase.eventstore import postgres_env
from flowcase.runtime import HttpSettings
from flowcase.runtime.auth import Role

EVENTS_PER_CASE = 20


def threaded(writers: int, seconds: float, work: Callable[[int, Callable[[], bool]], int]) -> dict:
    """Run `work(writer, running)` in `writers` threads for `seconds`; each returns its count."""
    counts = [0] * writers
    deadline = time.monotonic() + seconds

    def running() -> bool:
        return time.monotonic() < deadline

    def worker(n: int) -> None:
        counts[n] = work(n, running)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(writers)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return {"count": sum(counts), "seconds": round(elapsed, 2), "per_second": sum(counts) / elapsed}


def plain_inserts(url: str, writers: int, seconds: float) -> dict:
    row = json.dumps(
        {"note_id": "n-1", "text": "Lockout followed 5 failed MFA prompts", "actor": "agent-7"}
        | {"chain_hash": "0" * 64, "timestamp": datetime.now(UTC).isoformat()}
    ).encode()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bench_plain (originator_id uuid, originator_version integer, "
            "topic text, state bytea, notification_id bigserial, "
            "PRIMARY KEY (originator_id, originator_version))"
        )

    def work(_: int, running: Callable[[], bool]) -> int:
        count = 0
        originator = uuid.uuid4()
        with psycopg.connect(url) as conn:
            while running():
                count += 1
                conn.execute(
                    "INSERT INTO bench_plain VALUES (%s, %s, %s, %s)",
                    (originator, count, "flowcase.case.aggregate:Case.NoteAdded", row),
                )
                conn.commit()
        return count

    return threaded(writers, seconds, work)


def application_commands(app: CaseApplication, writers: int, seconds: float) -> dict:
    def work(n: int, running: Callable[[], bool]) -> int:
        case_id = app.open_case(f"Benchmark case {n}", actor="bench")
        version = 1
        while running():
            note = AddNote(text="Lockout followed 5 failed MFA prompts", expected_version=version)
            version = app.execute(case_id, note, actor="bench").version
        return version - 1

    return threaded(writers, seconds, work)


def appended_events(app: CaseApplication, writers: int, seconds: float) -> dict:
    def work(_: int, running: Callable[[], bool]) -> int:
        events = 0
        while running():
            case = Case.open_manually("Bulk case", actor="bench")
            for n in range(EVENTS_PER_CASE - 1):
                case.add_note(f"note {n}", actor="bench")
            app.save(case)
            events += EVENTS_PER_CASE
        return events

    return threaded(writers, seconds, work)


async def case_service(endpoints: Endpoints, url: str) -> CaseAssembly:
    kafka = await scratch_topics(endpoints.kafka_bootstrap)
    return await build_service(
        kafka=kafka, database=DatabaseSettings(url=url), http=HttpSettings(), auth=AUTH
    )


async def drained(service: CaseAssembly) -> dict[str, Any]:
    """The relay and the projector, run one after the other over the whole stored backlog."""
    started = time.monotonic()
    published = await service.relay.catch_up()
    relay_seconds = time.monotonic() - started
    started = time.monotonic()
    projected = await service.projector.catch_up()
    projection_seconds = time.monotonic() - started
    return {
        "relay": {
            "count": published,
            "seconds": round(relay_seconds, 2),
            "per_second": published / relay_seconds,
        },
        "projection": {
            "count": projected,
            "seconds": round(projection_seconds, 2),
            "per_second": projected / projection_seconds,
        },
    }


async def http_commands(
    service: CaseAssembly, writers: int, seconds: float, *, with_workers: bool
) -> dict[str, Any]:
    if not with_workers:
        service.workers = []
    async with service.running():
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://case", headers=bearer(Role.ADMIN)
        ) as client:

            async def writer(n: int, deadline: float) -> tuple[int, int]:
                opened = await client.post("/v1/cases", json={"title": f"HTTP case {n}"})
                case_id, etag = opened.json()["case_id"], opened.headers["ETag"]
                done = refused = 0
                while time.monotonic() < deadline:
                    response = await client.post(
                        f"/v1/cases/{case_id}/notes",
                        json={"text": "Asked when the lockout started"},
                        headers={"If-Match": etag},
                    )
                    if response.status_code == 200:
                        done += 1
                        etag = response.headers["ETag"]
                    else:
                        refused += 1
                return done, refused

            started = time.monotonic()
            results = await asyncio.gather(*(writer(n, started + seconds) for n in range(writers)))
            elapsed = time.monotonic() - started
            caught_up_from = time.monotonic()
            for _ in range(1200):  # at most a minute
                if not (await service.relay.backlog() or await service.projector.backlog()):
                    break
                await asyncio.sleep(0.05)
            caught_up = time.monotonic() - caught_up_from
    done = sum(d for d, _ in results)
    measured = {
        "count": done,
        "refused": sum(r for _, r in results),
        "seconds": round(elapsed, 2),
        "per_second": done / elapsed,
    }
    if with_workers:
        measured["relay_and_projection_caught_up_after_seconds"] = round(caught_up, 2)
    return measured


async def run(endpoints: Endpoints, seconds: float, writers: int) -> dict[str, Any]:
    async with scratch_database(endpoints.database_url, "bench_case") as url:
        plain = await asyncio.to_thread(plain_inserts, url, writers, seconds)
        app = CaseApplication(env=postgres_env(url, pool_size=writers))
        try:
            commands = await asyncio.to_thread(application_commands, app, writers, seconds)
            appended = await asyncio.to_thread(appended_events, app, writers, seconds)
        finally:
            app.close()
        service = await case_service(endpoints, url)
        try:
            backlog = await drained(service)
        finally:
            await service.close()
    async with scratch_database(endpoints.database_url, "bench_case") as url:
        service = await case_service(endpoints, url)
        http_alone = await http_commands(service, writers, seconds, with_workers=False)
    async with scratch_database(endpoints.database_url, "bench_case") as url:
        service = await case_service(endpoints, url)
        over_http = await http_commands(service, writers, seconds, with_workers=True)

    def ratio(measured: dict[str, Any]) -> float:
        return round(measured["per_second"] / plain["per_second"], 3)

    measured_rates = (plain, commands, appended, http_alone, over_http, *backlog.values())
    for measured in measured_rates:
        measured["per_second"] = round(measured["per_second"], 1)
    return {
        "settings": {"seconds_per_phase": seconds, "writers": writers},
        "plain_postgresql_inserts": plain,
        "case_commands_application": commands | {"vs_plain_insert": ratio(commands)},
        "case_commands_http_without_workers": http_alone | {"vs_plain_insert": ratio(http_alone)},
        "case_commands_http": over_http | {"vs_plain_insert": ratio(over_http)},
        "events_appended": appended
        | {"events_per_transaction": EVENTS_PER_CASE, "vs_plain_insert": ratio(appended)},
        "relay_publishing_the_stored_backlog": backlog["relay"],
        "projection_of_the_stored_backlog": backlog["projection"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each phase")
    parser.add_argument("--writers", type=int, default=8, help="concurrent writers")
    args = parser.parse_args()
    run_on_shared_stack("case", lambda endpoints: run(endpoints, args.seconds, args.writers))


if __name__ == "__main__":
    main()
