"""`flowcase case …`: check the audit chains of cases straight from the service's database against
their heads anchored on Kafka, and rebuild the case search read model from the event store."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg
import typer
from aiokafka.errors import KafkaError
from eventsourcing.persistence import PersistenceError

from flowcase.case.application import CaseApplication
from flowcase.case.case_search import create_schema
from flowcase.case.case_search_projector import CaseSearchProjector
from flowcase.case.chain import ChainAnchor, ChainReport, verify_chain
from flowcase.case.chain_anchors import anchors_on
from flowcase.case.errors import CaseNotFound
from flowcase.events.kafka import read_to_end
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.events.topics import Topic
from flowcase.eventstore import postgres_env

app = typer.Typer(help="Case records of the case service.", no_args_is_help=True)


@app.callback()
def case() -> None:
    """Case records of the case service."""


DATABASE_URL = typer.Option(
    None,
    "--database-url",
    help="The case service's database; FLOWCASE_DATABASE_URL, else the local stack's "
    "flowcase_case.",
)


# A command line answers in seconds whether the database is there, not after a 30 s pool wait.
QUICK_CONNECT = {"POSTGRES_CONNECT_TIMEOUT": "5", "POSTGRES_POOL_TIMEOUT": "5"}


def _database_url(given: str | None) -> str:
    return given or DatabaseSettings.of_service("case").url


def describe(report: ChainReport) -> str:
    if report.broken is None:
        events = f"{report.verified} event{'s' if report.verified != 1 else ''}"
        anchored = (
            f"anchored at version {report.anchored}"
            if report.anchored is not None
            else "not anchored yet"
        )
        return f"ok      {report.case_id}: {events}, head {report.head[:16]}…, {anchored}"
    broken = report.broken
    return (
        f"BROKEN  {report.case_id}: version {broken.version} {broken.kind}: {broken.detail} "
        f"({report.verified} events verified before it)"
    )


# Long enough for a broker that is up, short enough for one that is not there.
ANCHORS_TIMEOUT = 15.0


def _read_anchors() -> dict[UUID, ChainAnchor]:
    kafka = KafkaSettings()
    topic = kafka.topic(Topic.CASE_CHAIN_HEADS)
    try:
        return anchors_on(asyncio.run(read_to_end(kafka, topic, timeout=ANCHORS_TIMEOUT)))
    except (KafkaError, OSError, TimeoutError) as exc:
        typer.echo(
            f"cannot read the chain anchors from {topic} on {kafka.bootstrap}: {exc!r}\n"
            "(is it the case service's Kafka? FLOWCASE_KAFKA_BOOTSTRAP)",
            err=True,
        )
        raise typer.Exit(2) from None


@app.command()
def verify(
    case_id: UUID | None = typer.Argument(None, metavar="CASE_ID", help="The case to verify."),
    all_cases: bool = typer.Option(False, "--all", help="Verify every case in the store."),
    database_url: str | None = DATABASE_URL,
) -> None:
    """Recompute the hash chain of CASE_ID (or of every case with --all) from the stored events
    and check it against the case's head anchored on Kafka (FLOWCASE_KAFKA_*); report the first
    break of each. Exit 1 if any chain is broken, 2 if the case is unknown or the database or
    the anchors cannot be read."""
    if (case_id is None) == (not all_cases):
        typer.echo("give a CASE_ID or --all (not both)", err=True)
        raise typer.Exit(2)
    url = _database_url(database_url)
    typer.echo(f"case chains in {_shown(url)}", err=True)
    broken = checked = anchored = 0
    try:
        # Reading only: a verify pointed at the wrong database must say so, not create an empty
        # case store there and report that nothing in it is broken.
        env = {**postgres_env(url, pool_size=1, create_table=False), **QUICK_CONNECT}
        application = CaseApplication(env=env)
        try:
            # The database first: pointed at the wrong one, the command says so before Kafka.
            case_ids = [case_id] if case_id is not None else list(application.case_ids())
            anchors = _read_anchors()
            if case_id is None:
                # A case whose every event was deleted is found by its anchor alone.
                stored = set(case_ids)
                case_ids += [anchored_id for anchored_id in anchors if anchored_id not in stored]
            for each in case_ids:
                try:
                    records = application.chain_records(each)
                except CaseNotFound as exc:
                    if each not in anchors:
                        typer.echo(str(exc), err=True)
                        raise typer.Exit(2) from None
                    records = []
                report = verify_chain(each, records, anchors.get(each))
                checked += 1
                broken += not report.intact
                anchored += report.anchored is not None
                typer.echo(describe(report))
        finally:
            application.close()
    except PersistenceError as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        typer.echo(
            f"cannot read case events from {_shown(url)}: {first_line}\n"
            "(is it the case service's database? --database-url or FLOWCASE_DATABASE_URL)",
            err=True,
        )
        raise typer.Exit(2) from None
    if not checked:
        typer.echo(f"no case in {_shown(url)}: nothing verified", err=True)
        raise typer.Exit(2)
    typer.echo(
        f"{checked - broken} of {checked} case chains intact; {anchored} checked against "
        f"their anchors, {checked - anchored} not anchored yet",
        err=True,
    )
    if broken:
        raise typer.Exit(1)


def _shown(url: str) -> str:
    """The database named without its password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{host}:{parts.port}{parts.path}" if parts.port else f"{host}{parts.path}"


@app.command("rebuild-search")
def rebuild_search(database_url: str | None = DATABASE_URL) -> None:
    """Empty the case search read model and replay every stored case event into it (safe while
    the service runs: its projector waits, then goes on from the rebuilt position)."""
    applied, held = asyncio.run(_rebuild(_database_url(database_url)))
    # A running service's own projector may take batches of the rebuild between this
    # command's: the read model then holds them all, but this command replayed fewer.
    typer.echo(
        f"case search rebuilt from {held} stored events: {applied} replayed by this command"
        + ("" if applied >= held else ", the others by the running case service")
    )


async def _rebuild(url: str) -> tuple[int, int]:
    """Events this command replayed, and the stored events the read model now holds."""
    application = CaseApplication(env=postgres_env(url, pool_size=1))
    try:
        async with asyncpg.create_pool(url, min_size=1, max_size=2) as pool:
            async with pool.acquire() as conn:
                await create_schema(conn)
            projector = CaseSearchProjector(application=application, pool=pool)
            applied = await projector.rebuild()
            position = await projector.position()
            table = application.recorder.events_table_name  # type: ignore[attr-defined]
            async with pool.acquire() as conn:
                held = await conn.fetchval(
                    f"SELECT count(*) FROM {table} WHERE notification_id <= $1", position
                )
            return applied, int(held)
    finally:
        application.close()
