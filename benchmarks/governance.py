"""Governance: histories imported and topics replayed per second, and the dashboard's load time.

    uv run python benchmarks/governance.py [--events 1000000] [--topic-events 1000000]

Runs against the broker and PostgreSQL the test fixtures use (the FLOWCASE_* environment, else
the local stack), on fresh databases and its own topics, and measures in one run:

1. history: a seeded, realistic year of traffic (`--events` envelopes over 365 days, four
   process types, steps, approvals, overrides, escalations to cases with decisions and
   resolutions) written as JSON lines, exactly as `flowcase.events.encode` writes them, and the
   same year as a CSV activity log and an OCEL 2.0 log (the activities that state its facts,
   `activity_log.entries_of`);
2. import: each file imported into an empty database by `flowcase governance import` run as a
   user runs it (a child process, default batch size), timed from start to exit, with the
   child's peak memory (its maximum resident set);
3. topics: the year's last `--topic-events` events published to Kafka first, then governance's
   consumer started in this process in a new group on a new database, and timed from its first
   projected batch until it projected them all (a replay of the topics from offset 0);
4. dashboard: the service's HTTP API (uvicorn) over the imported year, its clock at the year's
   end: `GET /` for each view the header offers (median of `--repeat` loads, after one warm-up),
   and, where Debian's Chromium is installed, the page's load event in headless Chromium
   (Playwright), as the dashboard test loads it.

Results go to benchmarks/results/governance-<time>.json. Nothing here is asserted: it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn
from commands import flowcase
from prometheus_client import REGISTRY
from tokens import AUTH, bearer, token

from flowcase.bench.scratch import free_port, run_on_shared_stack, scratch_database, scratch_topics
from flowcase.devstack.endpoints import Endpoints
from flowcase.events import Envelope, Outcome, decode, encode
from flowcase.events.catalogue import case, intake, workflow
from flowcase.events.catalogue.workflow import OverrideKind, StepKind
from flowcase.events.kafka import EventProducer
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.governance.activity_log import OPTIONAL_FIELDS, RELIED_ON_SEPARATOR, entries_of
from flowcase.governance.composition import build_service
from flowcase.governance.log_readers import CSV_COLUMNS, read_jsonl
from flowcase.governance.ocel2 import write_ocel2
from flowcase.governance.projector import fold
from flowcase.governance.settings import GovernanceSettings
from flowcase.runtime.auth import Role

CHROMIUM = "/usr/bin/chromium"
START = datetime(2025, 12, 1, tzinfo=UTC)  # a Monday; the year runs 52 weeks and a day
DAYS = 365
# (process type, share of requests, escalation rate, override rate, steps)
PROCESSES = (
    ("invoice-approval", 0.4, 0.05, 0.08, ("validate", "route", "approve", "pay")),
    ("vendor-onboarding", 0.2, 0.25, 0.05, ("validate", "screen", "approve")),
    ("access-request", 0.25, 0.15, 0.02, ("validate", "approve", "provision")),
    ("incident-triage", 0.15, 0.6, 0.0, ("classify", "assign")),
)


# --- 1. a year of history -----------------------------------------------------------------------


def year_of_history(target: int, seed: int = 2026) -> Iterator[Envelope]:
    """About `target` events, one request at a time, spread evenly over the year by submission."""
    rng = random.Random(seed)
    per_request = 11.0  # the average of the shapes below (measured), so the year is whole
    requests = max(1, round(target / per_request))

    def wrap(payload: Any, at: datetime, actor: str | None = None) -> Envelope:
        return Envelope.wrap(payload, source="benchmark", occurred_at=at, actor=actor)

    for n in range(requests):
        process, _, escalation, override, steps = rng.choices(
            PROCESSES, weights=[p[1] for p in PROCESSES]
        )[0]
        submitted = START + timedelta(days=DAYS * n / requests, seconds=rng.randint(0, 3600))
        rid = uuid.UUID(int=rng.getrandbits(128))
        yield wrap(
            intake.RequestSubmitted(
                request_id=rid,
                request_type=process,
                requester=f"user-{rng.randint(1, 500)}",
                priority="normal",
                submitted_at=submitted,
                channel="http",
                payload={"n": n},
            ),
            submitted,
        )
        at = submitted + timedelta(seconds=1)
        yield wrap(
            workflow.InstanceStarted(
                request_id=rid,
                instance_id=uuid.uuid5(rid, "instance"),
                request_type=process,
                process=process,
                definition_version=1 + (n * 3 // requests),
            ),
            at,
        )
        escalated = rng.random() < escalation
        for i, step in enumerate(steps):
            kind = StepKind.APPROVAL if step == "approve" else StepKind.ACTION
            yield wrap(
                workflow.StepEntered(
                    request_id=rid, step=step, kind=kind, sla_due_at=at + timedelta(hours=8)
                ),
                at,
            )
            at += timedelta(minutes=rng.expovariate(1 / 90))
            if escalated and i == len(steps) - 1:
                break
            if kind is StepKind.APPROVAL:
                yield wrap(
                    workflow.ApprovalDecided(
                        request_id=rid,
                        step=step,
                        decision="approved",
                        rationale=rng.choice(["within budget", "policy 4.2", None]),
                        relied_on=["policy"],
                    ),
                    at,
                    actor="approver",
                )
            if rng.random() < override / len(steps):
                yield wrap(
                    workflow.OverrideApplied(
                        request_id=rid,
                        override_id=uuid.UUID(int=rng.getrandbits(128)),
                        override=OverrideKind.FORCE_ROUTE,
                        step=step,
                        rule="amount <= 1000",
                        definition_version=1,
                        reason="known vendor",
                        relied_on=["vendor-record"],
                    ),
                    at,
                    actor="supervisor",
                )
            yield wrap(
                workflow.StepCompleted(request_id=rid, step=step, kind=kind, outcome="done"), at
            )
        if not escalated:
            yield wrap(workflow.InstanceCompleted(request_id=rid, outcome=Outcome.COMPLETED), at)
            continue
        yield wrap(
            workflow.EscalatedToCase(
                request_id=rid,
                request_type=process,
                process=process,
                definition_version=1,
                reason_code="rule",
                reason="needs a person",
                step=steps[-1],
                intake_payload={"n": n},
                history=[],
            ),
            at,
        )
        cid = uuid.uuid5(rid, "case")
        yield wrap(
            case.CaseOpened(
                case_id=cid,
                request_id=rid,
                request_type=process,
                origin="escalation",
                title=f"{process} {n}",
            ),
            at,
        )
        # Resolution time: lognormal around 6 hours, slowly rising over the year for one type.
        drift = 1 + (n / requests if process == "vendor-onboarding" else 0)
        resolved = at + timedelta(hours=rng.lognormvariate(1.8, 0.6) * drift)
        yield wrap(
            case.DecisionRecorded(
                case_id=cid,
                decision_id="d-1",
                decision="proceed",
                rationale="checked",
                relied_on=["n-1"],
            ),
            resolved - timedelta(minutes=5),
            actor="agent",
        )
        yield wrap(
            case.CaseResolved(
                case_id=cid, request_id=rid, outcome_code="done", rationale="ok", relied_on=["d-1"]
            ),
            resolved,
            actor="agent",
        )
        yield wrap(
            workflow.InstanceCompleted(
                request_id=rid, outcome=Outcome.RESOLVED_BY_CASE, case_id=cid
            ),
            resolved,
        )


def write_history(path: Path, target: int) -> dict[str, Any]:
    started = time.monotonic()
    count = 0
    with path.open("wb") as f:
        for envelope in year_of_history(target):
            f.write(encode(envelope) + b"\n")
            count += 1
    return {
        "events": count,
        "bytes": path.stat().st_size,
        "seconds": round(time.monotonic() - started, 1),
    }


def write_activity_logs(history: Path, csv_path: Path, ocel_path: Path) -> dict[str, Any]:
    """The year's facts restated as activities (what `flowcase governance export` restates), as
    a CSV with every column and as OCEL 2.0."""
    started = time.monotonic()
    with history.open("rb") as f:
        facts = fold(e for e in read_jsonl(f) if isinstance(e, Envelope))
    entries = list(entries_of(facts))
    del facts
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for entry in entries:
            writer.writerow(
                [_cell(entry.at)]
                + [entry.activity.value]
                + [_cell(getattr(entry, name)) for name in OPTIONAL_FIELDS]
            )
    with ocel_path.open("w", encoding="utf-8") as f:
        json.dump(write_ocel2(entries), f)
    return {
        "activities": len(entries),
        "csv_bytes": csv_path.stat().st_size,
        "ocel_bytes": ocel_path.stat().st_size,
        "activity_logs_seconds": round(time.monotonic() - started, 1),
    }


def _cell(value: Any) -> str:
    match value:
        case None | False | ():
            return ""
        case datetime():
            return value.isoformat()
        case tuple():
            return RELIED_ON_SEPARATOR.join(value)
        case StrEnum():
            return value.value
    return str(value)


# --- 2. import ----------------------------------------------------------------------------------


def import_file(path: Path, database_url: str) -> dict[str, Any]:
    """`flowcase governance import FILE` as a user runs it, into an empty database: from start
    to exit, so the rate includes the command's start (`startup_seconds` of the run)."""
    ran = flowcase("governance", "import", str(path), "--database-url", database_url)
    new = int(re.search(r"imported (\d+) new events", ran.stdout)[1])  # type: ignore[index]
    return {
        "events": new,
        "seconds": round(ran.seconds, 1),
        "per_second": round(new / ran.seconds, 1),
        "peak_rss_mib": ran.peak_rss_mib,
        "summary": ran.stdout.strip().splitlines()[-1],
    }


def startup_seconds() -> float:
    """How long the command takes to start and answer `--help` (median of three)."""
    runs = [flowcase("governance", "import", "--help").seconds for _ in range(3)]
    return round(statistics.median(runs), 2)


async def table_rows(database_url: str) -> dict[str, int]:
    conn = await asyncpg.connect(database_url)
    try:
        return {
            table: await conn.fetchval(f"SELECT count(*) FROM {table}")
            for table in ("requests", "step_executions", "overrides", "audit_records", "cases")
        }
    finally:
        await conn.close()


# --- 3. a replay of the topics ------------------------------------------------------------------


def tail(path: Path, count: int) -> list[Envelope]:
    with path.open("rb") as f:
        lines = f.readlines()
    return [decode(line) for line in lines[-count:]]


def projected(group: str, topics: list[str]) -> float:
    return sum(
        REGISTRY.get_sample_value(
            "flowcase_messages_processed_total", {"topic": topic, "group": group}
        )
        or 0.0
        for topic in topics
    )


async def publish(kafka: KafkaSettings, events: list[Envelope]) -> float:
    started = time.monotonic()
    async with EventProducer(kafka, client_id="benchmark-governance") as producer:
        for i in range(0, len(events), 5000):
            await producer.publish_all(events[i : i + 5000])
    return time.monotonic() - started


async def replay_topics(
    kafka: KafkaSettings, database_url: str, events: int, batch_size: int
) -> dict[str, Any]:
    """Governance's consumer, in a new group on a new database, from offset 0 to the end."""
    service = await build_service(
        kafka,
        DatabaseSettings(url=database_url),
        settings=GovernanceSettings(
            consumer_group=f"benchmark-{uuid.uuid4().hex[:8]}", batch_size=batch_size
        ),
        auth=AUTH,
    )
    runner = service.consumer.runner
    task = asyncio.create_task(service.consumer.run())
    try:
        launched = time.monotonic()
        first = None
        while (done := projected(runner.group_id, runner.topics)) < events:
            if task.done():
                task.result()
            if first is None and done > 0:
                first = (time.monotonic(), done)
            await asyncio.sleep(0.01)
        finished = time.monotonic()
    finally:
        service.consumer.stop()
        await task
        await service.close()
    assert first is not None
    return {
        "events": events,
        "seconds_to_first_batch": round(first[0] - launched, 1),
        "seconds": round(finished - first[0], 1),
        "per_second": round((events - first[1]) / (finished - first[0]), 1),
        "batch_size": batch_size,
    }


# --- 4. the dashboard ---------------------------------------------------------------------------


VIEWS = {
    "last 24 hours by hour": "/?granularity=hour&windows=24",
    "last 7 days by day (default)": "/",
    "last 30 days by day": "/?granularity=day&windows=30",
    "last 12 weeks by week": "/?granularity=week&windows=12",
    "last 52 weeks by week": "/?granularity=week&windows=52",
}


async def dashboard(kafka: KafkaSettings, database_url: str, repeat: int) -> dict[str, Any]:
    end = START + timedelta(days=DAYS)
    service = await build_service(
        kafka, DatabaseSettings(url=database_url), clock=lambda: end, auth=AUTH
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(service.app, host="127.0.0.1", port=port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    base = f"http://127.0.0.1:{port}"
    try:
        while not server.started:  # noqa: ASYNC110 (uvicorn has no event for it)
            await asyncio.sleep(0.05)
        http: dict[str, Any] = {}
        async with httpx.AsyncClient(
            base_url=base, timeout=60, headers=bearer(Role.OPS_LEADER)
        ) as client:
            for label, path in VIEWS.items():
                await client.get(path)
                times = []
                for _ in range(repeat):
                    started = time.perf_counter()
                    response = await client.get(path)
                    times.append(time.perf_counter() - started)
                    assert response.status_code == 200, response.text
                http[label] = {
                    "path": path,
                    "median_ms": round(statistics.median(times) * 1000, 1),
                    "max_ms": round(max(times) * 1000, 1),
                    "bytes": len(response.content),
                }
        browser = await chromium_load(base, repeat) if shutil.which(CHROMIUM) else None
    finally:
        server.should_exit = True
        await serving
        await service.close()
    return {"http": http, "chromium_load_event": browser}


async def chromium_load(base: str, repeat: int) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            # The first visit hands over the token; the dashboard keeps it in a cookie.
            await page.goto(f"{base}/?token={token(Role.OPS_LEADER)}", wait_until="load")
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                await page.goto(f"{base}/", wait_until="load")
                times.append(time.perf_counter() - started)
            # The browser's own account of the last load: navigation start to the load event.
            timing = await page.evaluate(
                "() => { const t = performance.getEntriesByType('navigation')[0];"
                " return {response_end: t.responseEnd, load_event_end: t.loadEventEnd}; }"
            )
        finally:
            await browser.close()
    return {
        "path": "/",
        "median_ms": round(statistics.median(times) * 1000, 1),
        "max_ms": round(max(times) * 1000, 1),
        "last_navigation_timing_ms": {k: round(v, 1) for k, v in timing.items()},
    }


# --- the run ------------------------------------------------------------------------------------


async def run(endpoints: Endpoints, args: argparse.Namespace) -> dict[str, Any]:
    kafka = await scratch_topics(endpoints.kafka_bootstrap)
    admin_url = endpoints.database_url
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "history.jsonl"
        csv_path, ocel_path = Path(folder) / "history.csv", Path(folder) / "history.json"
        print(f"history: {args.events} events …", file=sys.stderr)
        history = await asyncio.to_thread(write_history, path, args.events)
        logs = await asyncio.to_thread(write_activity_logs, path, csv_path, ocel_path)
        imports: dict[str, Any] = {"startup_seconds": startup_seconds()}
        for name, file in (("csv", csv_path), ("ocel2", ocel_path), ("jsonl", path)):
            print(f"import {name} … ({history}, {logs})", file=sys.stderr)
            async with scratch_database(admin_url, "bench_governance") as url:
                imports[name] = await asyncio.to_thread(import_file, file, url)
                imports[name]["rows"] = await table_rows(url)
            print(imports[name], file=sys.stderr)
        print("topics …", file=sys.stderr)
        events = tail(path, args.topic_events)
        published = await publish(kafka, events)
        async with scratch_database(admin_url, "bench_governance") as url:
            topics = await replay_topics(kafka, url, len(events), args.batch_size)
        topics["publish_seconds"] = round(published, 1)
        del events
        print(f"dashboard … ({topics})", file=sys.stderr)
        async with scratch_database(admin_url, "bench_governance") as url:
            await asyncio.to_thread(import_file, path, url)
            board = await dashboard(kafka, url, args.repeat)
    return {
        "history": history | {"days": DAYS, "first_day": START.date().isoformat()} | logs,
        "import": imports,
        "topics": topics,
        "dashboard": board,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the year")
    parser.add_argument(
        "--topic-events",
        type=int,
        default=1_000_000,
        help="the year's last events published and replayed from the topics",
    )
    parser.add_argument(
        "--batch-size", type=int, default=1000, help="the consumer's records per fetch"
    )
    parser.add_argument("--repeat", type=int, default=5, help="dashboard loads per view")
    args = parser.parse_args()
    run_on_shared_stack("governance", lambda endpoints: run(endpoints, args))


if __name__ == "__main__":
    main()
