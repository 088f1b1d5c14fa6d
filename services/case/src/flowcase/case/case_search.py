"""The case search read model (asyncpg, the service's own database): one row per case.

The projector (`case_search_projector`) folds every stored case event into these tables, in
the store's order, recording its position in the same transaction. Every value here comes from
the events (timestamps included), so a rebuild from the event store gives the same rows.

`sla_due_at` is the deadline the case is working against now: the earliest of the escalated
request's promise (`due_at`, the workflow's `resolve_within`, the same clock since submission)
and the due times of its open tasks; null when it has none of them.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import asyncpg

from flowcase.case.aggregate import Case
from flowcase.events.catalogue.case import CaseStatus
from flowcase.eventstore.follower import LogFollower

SCHEMA = """
CREATE TABLE IF NOT EXISTS case_search (
    case_id uuid PRIMARY KEY,
    version integer NOT NULL,
    title text NOT NULL,
    status text NOT NULL,
    priority text NOT NULL,
    origin text NOT NULL,
    request_id uuid,
    request_type text,
    team text,
    assignee text,
    opened_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    resolved_at timestamptz,
    outcome_code text,
    sla_due_at timestamptz
);
CREATE INDEX IF NOT EXISTS case_search_opened ON case_search (opened_at DESC, case_id DESC);
CREATE INDEX IF NOT EXISTS case_search_status ON case_search (status, opened_at DESC);
CREATE INDEX IF NOT EXISTS case_search_team ON case_search (team, opened_at DESC);
CREATE INDEX IF NOT EXISTS case_search_assignee ON case_search (assignee, opened_at DESC);
CREATE INDEX IF NOT EXISTS case_search_type ON case_search (request_type, opened_at DESC);
CREATE INDEX IF NOT EXISTS case_search_sla ON case_search (sla_due_at);
ALTER TABLE case_search ADD COLUMN IF NOT EXISTS due_at timestamptz;
ALTER TABLE case_search ADD COLUMN IF NOT EXISTS promise_broken_at timestamptz;
ALTER TABLE case_search ADD COLUMN IF NOT EXISTS clock_paused_at timestamptz;
CREATE INDEX IF NOT EXISTS case_search_promises ON case_search (due_at)
    WHERE promise_broken_at IS NULL AND status NOT IN ('resolved', 'closed');
CREATE TABLE IF NOT EXISTS case_search_tasks (
    case_id uuid NOT NULL,
    task_id text NOT NULL,
    due_at timestamptz,
    completed boolean NOT NULL DEFAULT false,
    PRIMARY KEY (case_id, task_id)
);
"""

COLUMNS = (
    "case_id, version, title, status, priority, origin, request_id, request_type, team, "
    "assignee, opened_at, updated_at, resolved_at, outcome_code, sla_due_at"
)

MAX_LIMIT = 200


async def create_schema(conn: asyncpg.Connection) -> None:
    await conn.execute(SCHEMA)
    await LogFollower.create_table(conn)  # where the projector records its position


async def apply(conn: asyncpg.Connection, event: Case.Event) -> None:
    """Fold one stored case event into the read model (inside the projector's transaction)."""
    case_id = event.originator_id
    if isinstance(event, Case.CaseOpened):
        await conn.execute(
            "INSERT INTO case_search (case_id, version, title, status, priority, origin, "
            "request_id, request_type, opened_at, updated_at, due_at, sla_due_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $10)",
            case_id,
            event.originator_version,
            event.title,
            CaseStatus.OPEN.value,
            event.priority,
            event.origin,
            event.request_id,
            event.request_type,
            event.timestamp,
            # Openings stored before the request's clock was kept have none.
            getattr(event, "due_at", None),
        )
        return
    changes: dict[str, Any] = {}
    if isinstance(event, Case.CaseAssigned):
        changes = {"team": event.team, "assignee": event.assignee}
    elif isinstance(event, Case.CaseClaimed):
        changes = {"assignee": event.assignee}
    elif isinstance(event, Case.StatusChanged):
        changes = {"status": event.to_status}
    elif isinstance(event, Case.CaseResolved):
        changes = {
            "status": CaseStatus.RESOLVED.value,
            "resolved_at": event.timestamp,
            "outcome_code": event.outcome_code,
        }
    elif isinstance(event, Case.PromiseBroken):
        changes = {"promise_broken_at": event.timestamp}
    elif isinstance(event, Case.ClockPaused):
        changes = {"clock_paused_at": event.timestamp}
    elif isinstance(event, Case.ClockResumed):
        changes = {"clock_paused_at": None, "due_at": event.due_at}
    elif isinstance(event, Case.TaskAdded):
        await conn.execute(
            "INSERT INTO case_search_tasks (case_id, task_id, due_at) VALUES ($1, $2, $3)",
            case_id,
            event.task_id,
            event.due_at,
        )
    elif isinstance(event, Case.TaskCompleted):
        await conn.execute(
            "UPDATE case_search_tasks SET completed = true WHERE case_id = $1 AND task_id = $2",
            case_id,
            event.task_id,
        )
    assignments = ", ".join(f"{column} = ${n}" for n, column in enumerate(changes, start=4))
    deadline = ""
    if isinstance(event, Case.TaskAdded | Case.TaskCompleted | Case.ClockResumed):
        # The earliest of the promise (as this event leaves it) and the open tasks' due times.
        promise = "case_search.due_at"  # the old row's, unless this event moves it
        if "due_at" in changes:
            promise = f"${4 + list(changes).index('due_at')}"
        deadline = (
            f", sla_due_at = LEAST({promise}, (SELECT min(t.due_at) "
            "FROM case_search_tasks t WHERE t.case_id = $1 AND NOT t.completed))"
        )
    await conn.execute(
        "UPDATE case_search SET version = $2, updated_at = $3"
        + (f", {assignments}" if assignments else "")
        + deadline
        + " WHERE case_id = $1",
        case_id,
        event.originator_version,
        event.timestamp,
        *changes.values(),
    )


class InvalidCursor(ValueError):
    pass


class Sort(StrEnum):
    OPENED = "opened"
    """Newest opened first: every case."""
    DEADLINE = "deadline"
    """Soonest deadline (`sla_due_at`) first: the cases that have one, the overdue on top."""


@dataclass(frozen=True)
class Filters:
    status: CaseStatus | None = None
    team: str | None = None
    assignee: str | None = None
    request_type: str | None = None
    opened_before: datetime | None = None
    opened_after: datetime | None = None
    sla_due_before: datetime | None = None
    # Whose cases the caller may see: these teams (None: every team) and, with `unassigned`,
    # the cases no team has yet.
    visible_teams: frozenset[str] | None = None
    unassigned: bool = True


@dataclass(frozen=True)
class Page:
    rows: list[asyncpg.Record]
    next_cursor: str | None


def encode_cursor(key: datetime, case_id: UUID, sort: Sort = Sort.OPENED) -> str:
    """Opaque to callers: the sort key of the last row of a page, and the order it is of."""
    raw = json.dumps([key.isoformat(), str(case_id), sort.value]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: Sort = Sort.OPENED) -> tuple[datetime, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key, case_id, of = json.loads(raw)
        if Sort(of) is not sort:
            raise ValueError(f"a cursor of the {of} order, not {sort.value}")
        return datetime.fromisoformat(key), UUID(case_id)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidCursor(f"not a cursor this service returned for this order ({exc})") from exc


class CaseSearch:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def promises_due(self, now: datetime, *, limit: int = 500) -> list[UUID]:
        """Open cases whose escalated request's promise has passed, not yet stated broken: the
        soonest due first."""
        rows = await self._pool.fetch(
            "SELECT case_id FROM case_search WHERE due_at <= $1 AND promise_broken_at IS NULL "
            "AND clock_paused_at IS NULL AND status NOT IN ('resolved', 'closed') "
            "ORDER BY due_at, case_id LIMIT $2",
            now,
            limit,
        )
        return [row["case_id"] for row in rows]

    async def search(
        self,
        filters: Filters,
        *,
        limit: int,
        cursor: str | None = None,
        sort: Sort = Sort.OPENED,
    ) -> Page:
        """Cases matching every given filter, in `sort`'s order, `limit` at a time."""
        limit = min(limit, MAX_LIMIT)
        conditions: list[str] = []
        args: list[Any] = []

        def where(condition: str, value: Any) -> None:
            args.append(value)
            conditions.append(condition.format(f"${len(args)}"))

        for column in ("status", "team", "assignee", "request_type"):
            if (value := getattr(filters, column)) is not None:
                where(f"{column} = {{}}", value)
        if filters.visible_teams is not None:
            unassigned = " OR team IS NULL" if filters.unassigned else ""
            where(f"(team = ANY({{}}){unassigned})", list(filters.visible_teams))
        if filters.opened_before is not None:
            where("opened_at < {}", filters.opened_before)
        if filters.opened_after is not None:
            where("opened_at >= {}", filters.opened_after)
        if filters.sla_due_before is not None:
            where("sla_due_at < {}", filters.sla_due_before)
        # The order's column, the direction it pages in, and the comparison that goes on.
        column, direction, after = (
            ("opened_at", "DESC", "<") if sort is Sort.OPENED else ("sla_due_at", "ASC", ">")
        )
        if sort is Sort.DEADLINE:
            conditions.append("sla_due_at IS NOT NULL")
        if cursor is not None:
            key, case_id = decode_cursor(cursor, sort)
            args.extend([key, case_id])
            conditions.append(f"({column}, case_id) {after} (${len(args) - 1}, ${len(args)})")
        args.append(limit + 1)
        query = (
            f"SELECT {COLUMNS} FROM case_search"
            + (f" WHERE {' AND '.join(conditions)}" if conditions else "")
            + f" ORDER BY {column} {direction}, case_id {direction} LIMIT ${len(args)}"
        )
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(query, *args)
        page = rows[:limit]
        cursor_after = None
        if len(rows) > limit and page:
            cursor_after = encode_cursor(page[-1][column], page[-1]["case_id"], sort)
        return Page(rows=page, next_cursor=cursor_after)

    async def team_of(self, case_id: UUID) -> tuple[bool, str | None]:
        """Whether the case is in the read model, and its team there."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow("SELECT team FROM case_search WHERE case_id = $1", case_id)
        return (row is not None, row["team"] if row else None)

    async def all_rows(self) -> list[dict[str, Any]]:
        """Every row, in key order (for comparing a rebuilt projection with a live one)."""
        async with self._pool.acquire() as conn:
            cases = await conn.fetch(f"SELECT {COLUMNS} FROM case_search ORDER BY case_id")
            tasks = await conn.fetch("SELECT * FROM case_search_tasks ORDER BY case_id, task_id")
        return [dict(row) for row in cases] + [dict(row) for row in tasks]
