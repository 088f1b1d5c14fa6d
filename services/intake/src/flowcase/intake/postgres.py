"""Intake's PostgreSQL database (an adapter): its tables, the submission ledger and the status
store, as the service layer's ports (`ports.py`) describe them.

Every table is intake's own (`flowcase_intake`); the DDL is idempotent and runs on start under an
advisory lock, so replicas starting together do not race.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from flowcase.events.inbox import Inbox
from flowcase.intake.ports import Reservation, Reserved
from flowcase.intake.status import Observation, RequestState, RequestStatus, TimelineEntry

_SCHEMA_LOCK = 0x1A7A4E  # any constant shared by every intake replica

_SCHEMA = """
CREATE TABLE IF NOT EXISTS intake_idempotency_keys (
    scope text NOT NULL,
    key text NOT NULL,
    fingerprint text NOT NULL,
    request_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE TABLE IF NOT EXISTS intake_submissions (
    submission_id text PRIMARY KEY,
    fingerprint text NOT NULL,
    request_id uuid NOT NULL,
    channel text NOT NULL,
    accepted_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS intake_requests (
    request_id uuid PRIMARY KEY,
    seq bigserial NOT NULL UNIQUE,
    status text NOT NULL,
    status_since timestamptz NOT NULL,
    request_type text,
    requester text,
    priority text,
    channel text,
    submission_id text,
    submitted_at timestamptz,
    case_id uuid,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS intake_requests_by_status ON intake_requests (status, seq);
CREATE INDEX IF NOT EXISTS intake_requests_by_type ON intake_requests (request_type, seq);
CREATE TABLE IF NOT EXISTS intake_request_timeline (
    request_id uuid NOT NULL,
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    occurred_at timestamptz NOT NULL,
    status text NOT NULL,
    summary text NOT NULL,
    PRIMARY KEY (request_id, event_id)
);
-- Events of one instant (a workflow decision stamps all of its with one time) read in the order
-- they arrived: one request's workflow events share a partition, so that is the engine's order.
ALTER TABLE intake_request_timeline
    ADD COLUMN IF NOT EXISTS arrival bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE intake_requests ADD COLUMN IF NOT EXISTS submitted_by text;
CREATE INDEX IF NOT EXISTS intake_requests_by_requester ON intake_requests (requester, seq);
CREATE INDEX IF NOT EXISTS intake_requests_by_submitter ON intake_requests (submitted_by, seq);
CREATE TABLE IF NOT EXISTS intake_case_requests (
    case_id uuid PRIMARY KEY,
    request_id uuid NOT NULL
);
"""

RAW_RECORDS = Inbox("intake-raw-submissions")


async def create_schema(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
        await conn.execute(_SCHEMA)
        await RAW_RECORDS.create_table(conn)


class PostgresSubmissionLedger:
    """What intake decided about each submission, recorded in the decision's transaction
    (`ports.SubmissionLedger`)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def decision(self) -> AsyncIterator[PostgresLedgerEntry]:
        """A transaction: commits when the block ends, rolls back when it raises."""
        async with self._pool.acquire() as conn, conn.transaction():
            yield PostgresLedgerEntry(conn)


class PostgresLedgerEntry:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def claim_records(self, positions: list[str]) -> set[str]:
        """The positions among these not decided before (the rest are redeliveries), claimed in
        one statement."""
        return await RAW_RECORDS.claim_all(self._conn, positions)

    async def reserve_idempotency_key(
        self, scope: str, key: str, fingerprint: str, request_id: UUID
    ) -> Reserved:
        # A concurrent holder of the same key blocks this insert until it commits or rolls back.
        inserted = await self._conn.fetchval(
            "INSERT INTO intake_idempotency_keys (scope, key, fingerprint, request_id) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
            scope,
            key,
            fingerprint,
            request_id,
        )
        if inserted:
            return Reserved(Reservation.NEW, request_id)
        row = await self._conn.fetchrow(
            "SELECT fingerprint, request_id FROM intake_idempotency_keys "
            "WHERE scope = $1 AND key = $2",
            scope,
            key,
        )
        return _reserved(row, fingerprint)

    async def reserve_submission_id(
        self, submission_id: str, fingerprint: str, request_id: UUID, channel: str
    ) -> Reserved:
        inserted = await self._conn.fetchval(
            "INSERT INTO intake_submissions (submission_id, fingerprint, request_id, channel) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
            submission_id,
            fingerprint,
            request_id,
            channel,
        )
        if inserted:
            return Reserved(Reservation.NEW, request_id)
        row = await self._conn.fetchrow(
            "SELECT fingerprint, request_id FROM intake_submissions WHERE submission_id = $1",
            submission_id,
        )
        return _reserved(row, fingerprint)


def _reserved(row: asyncpg.Record, fingerprint: str) -> Reserved:
    same = row["fingerprint"] == fingerprint
    return Reserved(Reservation.REPLAY if same else Reservation.CONFLICT, row["request_id"])


_REQUEST_COLUMNS = (
    "request_id, status, status_since, request_type, requester, priority, channel, "
    "submission_id, submitted_at, case_id, submitted_by"
)


class PostgresStatusStore:
    """The request status read model: one row per request, and its timeline
    (`ports.StatusStore`)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def change(self) -> AsyncIterator[PostgresStatusChange]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield PostgresStatusChange(conn)

    async def holds(self, request_id: UUID) -> bool:
        async with self._pool.acquire() as conn:
            found: bool = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM intake_requests WHERE request_id = $1)", request_id
            )
        return found

    async def get(self, request_id: UUID) -> tuple[RequestState, list[TimelineEntry]] | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {_REQUEST_COLUMNS} FROM intake_requests WHERE request_id = $1",
                request_id,
            )
            if row is None:
                return None
            timeline = await conn.fetch(
                "SELECT event_id, event_type, occurred_at, status, summary "
                "FROM intake_request_timeline WHERE request_id = $1 "
                "ORDER BY occurred_at, arrival",
                request_id,
            )
        return _state(row), [
            TimelineEntry(
                event_id=t["event_id"],
                event_type=t["event_type"],
                occurred_at=t["occurred_at"],
                status=RequestStatus(t["status"]),
                summary=t["summary"],
            )
            for t in timeline
        ]

    async def page(
        self,
        *,
        status: RequestStatus | None,
        request_type: str | None,
        since: datetime | None,
        before: int | None,
        limit: int,
        owner: str | None = None,
    ) -> list[tuple[int, RequestState]]:
        """Newest first (by when intake first heard of the request); `before` is a position;
        with `owner`, only the requests it requested or submitted."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT seq, {_REQUEST_COLUMNS} FROM intake_requests "
                "WHERE ($1::text IS NULL OR status = $1) "
                "AND ($2::text IS NULL OR request_type = $2) "
                "AND ($3::timestamptz IS NULL OR submitted_at >= $3) "
                "AND ($4::bigint IS NULL OR seq < $4) "
                "AND ($6::text IS NULL OR requester = $6 OR submitted_by = $6) "
                "ORDER BY seq DESC LIMIT $5",
                status.value if status else None,
                request_type,
                since,
                before,
                limit,
                owner,
            )
        return [(row["seq"], _state(row)) for row in rows]

    async def reachable(self) -> str | None:
        async with self._pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
        return None


class PostgresStatusChange:
    """One transaction over the read model, serialized per request."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def request_of_case(self, case_id: UUID) -> UUID | None:
        request_id: UUID | None = await self._conn.fetchval(
            "SELECT request_id FROM intake_case_requests WHERE case_id = $1", case_id
        )
        return request_id

    async def link_case(self, case_id: UUID, request_id: UUID) -> None:
        await self._conn.execute(
            "INSERT INTO intake_case_requests (case_id, request_id) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING",
            case_id,
            request_id,
        )

    async def lock(self, request_ids: Sequence[UUID]) -> None:
        """Events of one request arrive on several consumers (HTTP and the projector): each
        request is changed by one transaction at a time. Locks are taken in one order (by id),
        so two batches touching the same requests never deadlock."""
        await self._conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(id, 0)) "
            "FROM unnest($1::text[]) WITH ORDINALITY AS locks(id, n) ORDER BY n",
            sorted(str(request_id) for request_id in request_ids),
        )

    async def recorded(self, observed: Sequence[Observation]) -> set[tuple[UUID, UUID]]:
        """The (request, event) pairs among these already in the timeline."""
        rows = await self._conn.fetch(
            "SELECT t.request_id, t.event_id FROM intake_request_timeline t "
            "JOIN unnest($1::uuid[], $2::uuid[]) AS seen(request_id, event_id) "
            "USING (request_id, event_id)",
            [seen.request_id for seen in observed],
            [seen.event_id for seen in observed],
        )
        return {(row["request_id"], row["event_id"]) for row in rows}

    async def load(self, request_ids: Sequence[UUID]) -> dict[UUID, RequestState]:
        rows = await self._conn.fetch(
            f"SELECT {_REQUEST_COLUMNS} FROM intake_requests WHERE request_id = ANY($1::uuid[])",
            request_ids,
        )
        return {row["request_id"]: _state(row) for row in rows}

    async def record(self, entries: Sequence[tuple[Observation, RequestState]]) -> None:
        """Add each observation to its request's timeline with the state it led to, in order,
        and store each request's last state."""
        if not entries:
            return
        # One statement for each table, whatever the batch's size: arrays in, unnested in order
        # (the timeline's arrival and a new request's seq follow that order).
        await self._conn.execute(
            "INSERT INTO intake_request_timeline "
            "(request_id, event_id, event_type, occurred_at, status, summary) "
            "SELECT request_id, event_id, event_type, occurred_at, status, summary FROM unnest("
            "$1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::text[], $6::text[]"
            ") WITH ORDINALITY "
            "AS entry(request_id, event_id, event_type, occurred_at, status, summary, n) "
            "ORDER BY n ON CONFLICT DO NOTHING",
            *_columns(
                (
                    seen.request_id,
                    seen.event_id,
                    seen.event_type,
                    seen.occurred_at,
                    state.status.value,
                    seen.summary,
                )
                for seen, state in entries
            ),
        )
        last = {state.request_id: state for _, state in entries}
        await self._conn.execute(
            f"INSERT INTO intake_requests ({_REQUEST_COLUMNS}) "
            f"SELECT {_REQUEST_COLUMNS} FROM unnest("
            "$1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], "
            "$7::text[], $8::text[], $9::timestamptz[], $10::uuid[], $11::text[]"
            f") WITH ORDINALITY AS state({_REQUEST_COLUMNS}, n) ORDER BY n "
            "ON CONFLICT (request_id) DO UPDATE SET status = EXCLUDED.status, "
            "status_since = EXCLUDED.status_since, request_type = EXCLUDED.request_type, "
            "requester = EXCLUDED.requester, priority = EXCLUDED.priority, "
            "channel = EXCLUDED.channel, submission_id = EXCLUDED.submission_id, "
            "submitted_at = EXCLUDED.submitted_at, case_id = EXCLUDED.case_id, "
            "submitted_by = EXCLUDED.submitted_by, updated_at = now()",
            *_columns(
                (
                    state.request_id,
                    state.status.value,
                    state.status_since,
                    state.request_type,
                    state.requester,
                    state.priority,
                    state.channel,
                    state.submission_id,
                    state.submitted_at,
                    state.case_id,
                    state.submitted_by,
                )
                for state in last.values()
            ),
        )


def _columns(rows: Iterable[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows as one list per column, for `unnest`."""
    return [list(column) for column in zip(*rows, strict=True)]


def _state(row: asyncpg.Record) -> RequestState:
    return RequestState(
        request_id=row["request_id"],
        status=RequestStatus(row["status"]),
        status_since=row["status_since"],
        request_type=row["request_type"],
        requester=row["requester"],
        priority=row["priority"],
        channel=row["channel"],
        submission_id=row["submission_id"],
        submitted_at=row["submitted_at"],
        case_id=row["case_id"],
        submitted_by=row["submitted_by"],
    )
