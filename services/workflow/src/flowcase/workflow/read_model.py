"""The service's tables beside the event store (an adapter): the instance list the API pages
through, the durable timers, and how far the projection has read the notification log.

Both tables are projections of the event store (see `projection.py`): whatever happens to them,
they can be rebuilt from the stored events, so they need no transaction with the events.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from flowcase.workflow.state import InstanceState

CREATE_TABLES = """
CREATE TABLE IF NOT EXISTS workflow_instances (
    request_id uuid PRIMARY KEY,
    instance_id uuid NOT NULL,
    request_type text NOT NULL,
    process text NOT NULL,
    definition_version integer NOT NULL,
    status text NOT NULL,
    current_step text,
    current_kind text,
    escalation text,
    team text,
    priority text NOT NULL,
    requester text NOT NULL,
    started_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version integer NOT NULL
);
CREATE INDEX IF NOT EXISTS workflow_instances_by_start
    ON workflow_instances (started_at DESC, request_id);
CREATE INDEX IF NOT EXISTS workflow_instances_waiting_on_actions
    ON workflow_instances (request_id) WHERE status = 'running' AND current_kind = 'action';
CREATE INDEX IF NOT EXISTS workflow_instances_pending_approvals
    ON workflow_instances (request_type) WHERE status = 'running' AND current_kind = 'approval';
CREATE TABLE IF NOT EXISTS workflow_timers (
    request_id uuid NOT NULL,
    timer_id text NOT NULL,
    fire_at timestamptz NOT NULL,
    PRIMARY KEY (request_id, timer_id)
);
CREATE INDEX IF NOT EXISTS workflow_timers_by_time ON workflow_timers (fire_at);
"""


@dataclass(frozen=True)
class InstanceRow:
    request_id: UUID
    request_type: str
    process: str
    definition_version: int
    status: str
    current_step: str | None
    escalation: str | None
    team: str | None
    priority: str
    requester: str
    started_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class DueTimer:
    request_id: UUID
    timer_id: str
    fire_at: datetime


class ReadModel:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create_tables(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(CREATE_TABLES)

    # Written by the projection, in one transaction per batch

    @staticmethod
    async def apply(
        conn: asyncpg.Connection,
        instances: list[tuple[InstanceState, UUID, int, datetime, datetime]],
    ) -> None:
        """Bring each instance's row and timers to its state (in the projection's transaction)."""
        for state, id_, version, started_at, updated_at in instances:
            await conn.execute(
                """
                INSERT INTO workflow_instances (request_id, instance_id, request_type, process,
                    definition_version, status, current_step, current_kind, escalation, team,
                    priority, requester, started_at, updated_at, version)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                ON CONFLICT (request_id) DO UPDATE SET
                    definition_version = EXCLUDED.definition_version, status = EXCLUDED.status,
                    current_step = EXCLUDED.current_step, current_kind = EXCLUDED.current_kind,
                    escalation = EXCLUDED.escalation, team = EXCLUDED.team,
                    updated_at = EXCLUDED.updated_at, version = EXCLUDED.version
                WHERE workflow_instances.version < EXCLUDED.version
                """,
                state.request_id,
                id_,
                state.request_type,
                state.process,
                state.definition_version,
                state.status.value,
                state.current_step,
                state.current_kind.value if state.current_kind else None,
                state.escalation.value if state.escalation else None,
                state.route.team if state.route else None,
                state.priority.value,
                state.requester,
                started_at,
                updated_at,
                version,
            )
            timers = state.timers()
            await conn.execute(
                "DELETE FROM workflow_timers WHERE request_id = $1 AND NOT timer_id = ANY($2)",
                state.request_id,
                list(timers),
            )
            await conn.executemany(
                "INSERT INTO workflow_timers (request_id, timer_id, fire_at) VALUES ($1, $2, $3) "
                "ON CONFLICT (request_id, timer_id) DO UPDATE SET fire_at = EXCLUDED.fire_at",
                [(state.request_id, timer_id, at) for timer_id, at in timers.items()],
            )

    # Read by the API, the timer loop and the action recovery

    async def instances(
        self,
        *,
        request_type: str | None = None,
        status: str | None = None,
        teams: Collection[str] | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[InstanceRow]:
        """Newest first; with `teams`, only the instances routed to one of them."""
        rows = await self.pool.fetch(
            """
            SELECT request_id, request_type, process, definition_version, status, current_step,
                   escalation, team, priority, requester, started_at, updated_at
            FROM workflow_instances
            WHERE ($1::text IS NULL OR request_type = $1) AND ($2::text IS NULL OR status = $2)
              AND ($5::text[] IS NULL OR team = ANY($5))
            ORDER BY started_at DESC, request_id
            LIMIT $3 OFFSET $4
            """,
            request_type,
            status,
            limit,
            offset,
            None if teams is None else list(teams),
        )
        return [InstanceRow(**dict(row)) for row in rows]

    async def started(
        self, request_type: str, since: datetime | None, until: datetime | None
    ) -> list[UUID]:
        """The requests of a type whose instance started in `[since, until)` (either end open
        when None), in the order they started."""
        rows = await self.pool.fetch(
            """
            SELECT request_id FROM workflow_instances
            WHERE request_type = $1
              AND ($2::timestamptz IS NULL OR started_at >= $2)
              AND ($3::timestamptz IS NULL OR started_at < $3)
            ORDER BY started_at, request_id
            """,
            request_type,
            since,
            until,
        )
        return [row["request_id"] for row in rows]

    async def waiting(
        self,
        request_type: str,
        version: int,
        *,
        after: UUID | None = None,
        limit: int | None = None,
    ) -> list[tuple[UUID, str | None]]:
        """The running instances of a type and version (each at the step it waits at), by
        request id after `after`: a migration's instances, page by page."""
        rows = await self.pool.fetch(
            """
            SELECT request_id, current_step FROM workflow_instances
            WHERE request_type = $1 AND definition_version = $2 AND status = 'running'
              AND ($3::uuid IS NULL OR request_id > $3)
            ORDER BY request_id
            LIMIT $4
            """,
            request_type,
            version,
            after,
            limit,
        )
        return [(row["request_id"], row["current_step"]) for row in rows]

    async def count_waiting(self, request_type: str, version: int) -> int:
        count: int = await self.pool.fetchval(
            "SELECT count(*) FROM workflow_instances "
            "WHERE request_type = $1 AND definition_version = $2 AND status = 'running'",
            request_type,
            version,
        )
        return count

    async def waiting_on_actions(self, *, unchanged_since: datetime | None = None) -> list[UUID]:
        """The running instances at an action step; with `unchanged_since`, only those that
        have not moved since then."""
        rows = await self.pool.fetch(
            "SELECT request_id FROM workflow_instances "
            "WHERE status = 'running' AND current_kind = 'action' "
            "AND ($1::timestamptz IS NULL OR updated_at <= $1)",
            unchanged_since,
        )
        return [row["request_id"] for row in rows]

    async def next_timer_at(self) -> datetime | None:
        at: datetime | None = await self.pool.fetchval("SELECT min(fire_at) FROM workflow_timers")
        return at

    async def reachable(self) -> str | None:
        await self.pool.fetchval("SELECT 1")
        return None
