"""The facts in PostgreSQL: one table per fact type, keyed as the fact is, merged by upsert.

Every merge rule of `facts` is written as `INSERT ... ON CONFLICT (key) DO UPDATE`: earliest and
latest as LEAST and GREATEST (both skip NULLs), or as OR, and first-stated-wins as a row
comparison on `(at, event_id)`. So writing the same fact twice, or facts in any order, leaves the
same rows as the in-memory `Facts.merge`, and a redelivered event changes nothing without an
inbox (which would also grow by one row per event, for ever).

`load` reads back only the slice of facts the metrics of a period need (see its docstring), so a
dashboard over the last week stays fast with years of history stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from flowcase.events.catalogue.common import Outcome
from flowcase.events.catalogue.workflow import OverrideKind, StepKind
from flowcase.governance.facts import (
    AuditKind,
    AuditRecord,
    CaseFact,
    Facts,
    First,
    Last,
    OverrideFact,
    RequestFact,
    StepFact,
)
from flowcase.governance.windows import Period

TABLES = """
CREATE TABLE IF NOT EXISTS requests (
    request_id uuid PRIMARY KEY,
    request_type text,
    request_type_at timestamptz,
    request_type_event uuid,
    submitted_at timestamptz,
    definition_version integer,
    definition_version_at timestamptz,
    definition_version_event uuid,
    escalated_at timestamptz,
    outcome text,
    outcome_at timestamptz,
    outcome_event uuid
);
CREATE INDEX IF NOT EXISTS requests_by_type_and_submission
    ON requests (request_type, submitted_at);
ALTER TABLE requests
    ADD COLUMN IF NOT EXISTS submission_id text,
    ADD COLUMN IF NOT EXISTS submission_id_at timestamptz,
    ADD COLUMN IF NOT EXISTS submission_id_event uuid;
ALTER TABLE requests
    ADD COLUMN IF NOT EXISTS due_at timestamptz,
    ADD COLUMN IF NOT EXISTS due_at_at timestamptz,
    ADD COLUMN IF NOT EXISTS due_at_event uuid;

CREATE TABLE IF NOT EXISTS step_executions (
    request_id uuid NOT NULL,
    step text NOT NULL,
    kind text,
    kind_at timestamptz,
    kind_event uuid,
    entered_at timestamptz,
    entry_event uuid,
    sla_due_at timestamptz,
    completed_at timestamptz,
    sla_breached boolean NOT NULL DEFAULT false,
    PRIMARY KEY (request_id, step)
);
CREATE INDEX IF NOT EXISTS step_executions_by_entry ON step_executions (entered_at);

CREATE TABLE IF NOT EXISTS overrides (
    override_id uuid PRIMARY KEY,
    request_id uuid NOT NULL,
    at timestamptz NOT NULL,
    kind text NOT NULL,
    step text,
    rule text,
    definition_version integer NOT NULL
);
CREATE INDEX IF NOT EXISTS overrides_by_request ON overrides (request_id);

CREATE TABLE IF NOT EXISTS audit_records (
    record_id text PRIMARY KEY,
    kind text NOT NULL,
    at timestamptz NOT NULL,
    event_id uuid NOT NULL,
    actor text,
    rationale text,
    relied_on text[] NOT NULL,
    gap_acknowledged boolean NOT NULL,
    case_id uuid,
    request_id uuid
);
CREATE INDEX IF NOT EXISTS audit_records_by_time ON audit_records (at);

CREATE TABLE IF NOT EXISTS cases (
    case_id uuid PRIMARY KEY,
    request_id uuid,
    request_id_at timestamptz,
    request_id_event uuid,
    request_type text,
    request_type_at timestamptz,
    request_type_event uuid,
    opened_at timestamptz,
    resolved_at timestamptz
);
CREATE INDEX IF NOT EXISTS cases_by_opening ON cases (opened_at);
CREATE INDEX IF NOT EXISTS cases_by_resolution ON cases (resolved_at);
CREATE INDEX IF NOT EXISTS cases_by_request ON cases (request_id);
ALTER TABLE cases
    ADD COLUMN IF NOT EXISTS source_id text,
    ADD COLUMN IF NOT EXISTS source_id_at timestamptz,
    ADD COLUMN IF NOT EXISTS source_id_event uuid;
-- The ids of the events imported from historical logs (`import_batch`), so that an import can
-- say which of its events were new; live traffic keeps no such ledger.
CREATE TABLE IF NOT EXISTS imported_events (
    event_id uuid PRIMARY KEY
);
"""


class ImportBatch:
    """An import's transaction (`FactRepository.import_batch`)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def new(self, event_ids: Sequence[UUID]) -> set[UUID]:
        """Those of `event_ids` no import stored before, now recorded as imported."""
        rows = await self._conn.fetch(
            "INSERT INTO imported_events (event_id) SELECT DISTINCT unnest($1::uuid[]) "
            "ON CONFLICT DO NOTHING RETURNING event_id",
            list(event_ids),
        )
        return {row["event_id"] for row in rows}

    async def save(self, facts: Facts) -> None:
        await _write(self._conn, facts)


# From this many rows of one table a batch is copied into a staging table and merged by one
# `INSERT ... SELECT` (a large import's batch); fewer are upserted row by row in one pipelined
# `executemany` (a live batch), which costs fewer round trips.
STAGE_FROM = 200

# One staging table per fact table, shaped like it and emptied at every commit.
_STAGING = "".join(
    f"CREATE TEMP TABLE IF NOT EXISTS staged_{table} (LIKE {table}) ON COMMIT DELETE ROWS;"
    for table in ("requests", "step_executions", "overrides", "audit_records", "cases")
)


async def _write(conn: asyncpg.Connection, facts: Facts) -> None:
    writes = (
        (_REQUESTS, [_request_row(f) for _, f in sorted(facts.requests.items())]),
        (_STEPS, [_step_row(f) for _, f in sorted(facts.steps.items())]),
        (_OVERRIDES, [_override_row(f) for _, f in sorted(facts.overrides.items())]),
        (_AUDIT, [_audit_row(f) for _, f in sorted(facts.audit.items())]),
        (_CASES, [_case_row(f) for _, f in sorted(facts.cases.items())]),
    )
    if any(len(rows) >= STAGE_FROM for _, rows in writes):
        await conn.execute(_STAGING)
    for upsert, rows in writes:
        if len(rows) >= STAGE_FROM:
            await conn.copy_records_to_table(f"staged_{upsert.table}", records=rows)
            await conn.execute(upsert.from_staging)
        elif rows:
            await conn.executemany(upsert.row_by_row(len(rows[0])), rows)


@dataclass(frozen=True)
class _Upsert:
    """How rows of one table merge into it: `ON CONFLICT (key) DO ...`, applied to one row's
    parameters or to the staging table's rows (taken in key order, as `save` writes them)."""

    table: str
    alias: str
    key: str
    on_conflict: str

    def row_by_row(self, columns: int) -> str:
        """For rows of `columns` values, as the table's row functions make them."""
        values = ", ".join(f"${n}" for n in range(1, columns + 1))
        return f"INSERT INTO {self.table} AS {self.alias} VALUES ({values}) {self.on_conflict}"

    @property
    def from_staging(self) -> str:
        return (
            f"INSERT INTO {self.table} AS {self.alias} "
            f"SELECT * FROM staged_{self.table} ORDER BY {self.key} {self.on_conflict}"
        )


def _first_wins(table: str, at: str, event: str, *columns: str) -> str:
    """SET clauses taking the incoming columns when its `(at, event)` is earlier, or none is stored.

    An incoming row that states nothing (NULL `at`) compares as NULL and keeps the stored one.
    """
    return _stated_wins("<", table, at, event, *columns)


def _last_wins(table: str, at: str, event: str, *columns: str) -> str:
    """As `_first_wins`, taking the incoming columns when its `(at, event)` is later."""
    return _stated_wins(">", table, at, event, *columns)


def _stated_wins(compare: str, table: str, at: str, event: str, *columns: str) -> str:
    stored = f"({table}.{at}, {table}.{event})"
    wins = f"{table}.{at} IS NULL OR (EXCLUDED.{at}, EXCLUDED.{event}) {compare} {stored}"
    return ", ".join(
        f"{c} = CASE WHEN {wins} THEN EXCLUDED.{c} ELSE {table}.{c} END"
        for c in (*columns, at, event)
    )


def _first(value: Any, at: Any, event: Any) -> First[Any] | None:
    return None if at is None else First(value, at, event)


_REQUESTS = _Upsert(
    "requests",
    "r",
    "request_id",
    f"""ON CONFLICT (request_id) DO UPDATE SET
    {_first_wins("r", "request_type_at", "request_type_event", "request_type")},
    submitted_at = LEAST(r.submitted_at, EXCLUDED.submitted_at),
    {_last_wins("r", "definition_version_at", "definition_version_event", "definition_version")},
    escalated_at = LEAST(r.escalated_at, EXCLUDED.escalated_at),
    {_first_wins("r", "outcome_at", "outcome_event", "outcome")},
    {_first_wins("r", "submission_id_at", "submission_id_event", "submission_id")},
    {_last_wins("r", "due_at_at", "due_at_event", "due_at")}""",
)

_STEPS = _Upsert(
    "step_executions",
    "s",
    "request_id, step",
    f"""ON CONFLICT (request_id, step) DO UPDATE SET
    {_first_wins("s", "kind_at", "kind_event", "kind")},
    {_first_wins("s", "entered_at", "entry_event", "sla_due_at")},
    completed_at = GREATEST(s.completed_at, EXCLUDED.completed_at),
    sla_breached = s.sla_breached OR EXCLUDED.sla_breached""",
)

# Immutable: the stored override stays (as `OverrideFact.merge` keeps the stored one).
_OVERRIDES = _Upsert("overrides", "o", "override_id", "ON CONFLICT (override_id) DO NOTHING")

_AUDIT_COLUMNS = (
    "kind",
    "at",
    "event_id",
    "actor",
    "rationale",
    "relied_on",
    "gap_acknowledged",
    "case_id",
    "request_id",
)
# The whole record is first-stated-wins.
_AUDIT = _Upsert(
    "audit_records",
    "a",
    "record_id",
    f"""ON CONFLICT (record_id) DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in _AUDIT_COLUMNS)}
WHERE (EXCLUDED.at, EXCLUDED.event_id) < (a.at, a.event_id)""",
)

_CASES = _Upsert(
    "cases",
    "c",
    "case_id",
    f"""ON CONFLICT (case_id) DO UPDATE SET
    {_first_wins("c", "request_id_at", "request_id_event", "request_id")},
    {_first_wins("c", "request_type_at", "request_type_event", "request_type")},
    {_first_wins("c", "source_id_at", "source_id_event", "source_id")},
    opened_at = LEAST(c.opened_at, EXCLUDED.opened_at),
    resolved_at = LEAST(c.resolved_at, EXCLUDED.resolved_at)""",
)


def _parts(first: First[Any] | Last[Any] | None, convert: Any = None) -> tuple[Any, Any, Any]:
    if first is None:
        return (None, None, None)
    value = first.value if convert is None or first.value is None else convert(first.value)
    return (value, first.at, first.event_id)


def _request_row(r: RequestFact) -> tuple[Any, ...]:
    return (
        r.request_id,
        *_parts(r.request_type),
        r.submitted_at,
        *_parts(r.definition_version),
        r.escalated_at,
        *_parts(r.outcome, str),
        *_parts(r.submission_id),
        *_parts(r.due_at),
    )


def _step_row(s: StepFact) -> tuple[Any, ...]:
    entry = (s.entry.at, s.entry.event_id, s.entry.value) if s.entry else (None, None, None)
    return (
        s.request_id,
        s.step,
        *_parts(s.kind, str),
        *entry,
        s.completed_at,
        s.sla_breached,
    )


def _override_row(o: OverrideFact) -> tuple[Any, ...]:
    return (o.override_id, o.request_id, o.at, str(o.kind), o.step, o.rule, o.definition_version)


def _audit_row(a: AuditRecord) -> tuple[Any, ...]:
    return (
        a.record_id,
        str(a.kind),
        a.at,
        a.event_id,
        a.actor,
        a.rationale,
        list(a.relied_on),
        a.gap_acknowledged,
        a.case_id,
        a.request_id,
    )


def _case_row(c: CaseFact) -> tuple[Any, ...]:
    return (
        c.case_id,
        *_parts(c.request_id),
        *_parts(c.request_type),
        c.opened_at,
        c.resolved_at,
        *_parts(c.source_id),
    )


def _request(row: asyncpg.Record) -> RequestFact:
    return RequestFact(
        row["request_id"],
        request_type=_first(row["request_type"], row["request_type_at"], row["request_type_event"]),
        submitted_at=row["submitted_at"],
        definition_version=None
        if row["definition_version_at"] is None
        else Last(
            row["definition_version"], row["definition_version_at"], row["definition_version_event"]
        ),
        escalated_at=row["escalated_at"],
        outcome=_first(
            Outcome(row["outcome"]) if row["outcome"] else None,
            row["outcome_at"],
            row["outcome_event"],
        ),
        submission_id=_first(
            row["submission_id"], row["submission_id_at"], row["submission_id_event"]
        ),
        due_at=None
        if row["due_at_at"] is None
        else Last(row["due_at"], row["due_at_at"], row["due_at_event"]),
    )


def _step(row: asyncpg.Record) -> StepFact:
    return StepFact(
        row["request_id"],
        row["step"],
        kind=_first(
            StepKind(row["kind"]) if row["kind"] else None, row["kind_at"], row["kind_event"]
        ),
        entry=_first(row["sla_due_at"], row["entered_at"], row["entry_event"]),
        completed_at=row["completed_at"],
        sla_breached=row["sla_breached"],
    )


def _override(row: asyncpg.Record) -> OverrideFact:
    return OverrideFact(
        override_id=row["override_id"],
        request_id=row["request_id"],
        at=row["at"],
        kind=OverrideKind(row["kind"]),
        step=row["step"],
        rule=row["rule"],
        definition_version=row["definition_version"],
    )


def _audit(row: asyncpg.Record) -> AuditRecord:
    return AuditRecord(
        record_id=row["record_id"],
        kind=AuditKind(row["kind"]),
        at=row["at"],
        event_id=row["event_id"],
        actor=row["actor"],
        rationale=row["rationale"],
        relied_on=tuple(row["relied_on"]),
        gap_acknowledged=row["gap_acknowledged"],
        case_id=row["case_id"],
        request_id=row["request_id"],
    )


def _case(row: asyncpg.Record) -> CaseFact:
    return CaseFact(
        row["case_id"],
        request_id=_first(row["request_id"], row["request_id_at"], row["request_id_event"]),
        request_type=_first(row["request_type"], row["request_type_at"], row["request_type_event"]),
        opened_at=row["opened_at"],
        resolved_at=row["resolved_at"],
        source_id=_first(row["source_id"], row["source_id_at"], row["source_id_event"]),
    )


# The slice of one period (see `FactRepository.load`). `{typed}` is the condition on a process
# type column: `= $3`, or `IS NOT NULL` for every type; two query texts keep the type index usable.
_SLICE = {
    "requests": """
        SELECT * FROM requests r
        WHERE r.request_type {typed} AND r.submitted_at >= $1 AND r.submitted_at < $2""",
    "steps": """
        SELECT s.* FROM requests r JOIN step_executions s USING (request_id)
        WHERE r.request_type {typed} AND r.submitted_at >= $1 AND r.submitted_at < $2
        UNION
        SELECT s.* FROM step_executions s JOIN requests r USING (request_id)
        WHERE s.entered_at >= $1 AND s.entered_at < $2 AND r.request_type {typed}""",
    "overrides": """
        SELECT o.* FROM requests r JOIN overrides o USING (request_id)
        WHERE r.request_type {typed} AND r.submitted_at >= $1 AND r.submitted_at < $2""",
    "cases": """
        SELECT c.* FROM cases c LEFT JOIN requests r ON r.request_id = c.request_id
        WHERE c.opened_at >= $1 AND c.opened_at < $2
          AND COALESCE(c.request_type, r.request_type) {typed}
        UNION
        SELECT c.* FROM cases c LEFT JOIN requests r ON r.request_id = c.request_id
        WHERE c.resolved_at >= $1 AND c.resolved_at < $2
          AND COALESCE(c.request_type, r.request_type) {typed}""",
    "audit": """
        SELECT a.* FROM audit_records a
        LEFT JOIN cases c ON c.case_id = a.case_id
        LEFT JOIN requests rc ON rc.request_id = c.request_id
        LEFT JOIN requests rr ON rr.request_id = a.request_id
        WHERE a.at >= $1 AND a.at < $2
          AND CASE WHEN a.case_id IS NOT NULL THEN COALESCE(c.request_type, rc.request_type)
                   ELSE rr.request_type END {typed}""",
}

# Every distinct value of an indexed column, one index probe per value (a loose index scan).
_DISTINCT = """
WITH RECURSIVE types(t) AS (
    SELECT min({column}) FROM {table}
    UNION ALL
    SELECT (SELECT min({column}) FROM {table} WHERE {column} > types.t)
    FROM types WHERE types.t IS NOT NULL
)
SELECT t FROM types WHERE t IS NOT NULL
"""


class FactRepository:
    """The governance facts in the service's own PostgreSQL database."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create_tables(self) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(TABLES)

    async def save(self, facts: Facts) -> None:
        """Merge facts into the tables, in one transaction.

        Rows are written in key order, so two replicas writing overlapping keys at once wait
        for each other instead of deadlocking.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            await _write(conn, facts)

    @asynccontextmanager
    async def import_batch(self) -> AsyncIterator[ImportBatch]:
        """One transaction of an import: which of its events are new, and their facts."""
        async with self._pool.acquire() as conn, conn.transaction():
            yield ImportBatch(conn)

    async def process_types(self) -> list[str]:
        """Every process type stated by a request or a case, sorted."""
        async with self._pool.acquire() as conn:
            found: set[str] = set()
            for table in ("requests", "cases"):
                sql = _DISTINCT.format(table=table, column="request_type")
                found.update(row["t"] for row in await conn.fetch(sql))
        return sorted(found)

    async def load(self, period: Period, process_type: str | None = None) -> Facts:
        """The facts the metrics of `period` need, for one process type or for every one.

        That is: requests submitted in the period, with all their step executions (an SLA
        breach counts at submission) and overrides; step executions entered in it; cases
        opened or resolved in it; audit records recorded in it; and the requests and cases
        those link to, so the pure code resolves each fact's process type as it would over
        every fact. `measure` and `series` over this slice equal them over all facts.
        """
        typed = "= $3" if process_type else "IS NOT NULL"
        args: tuple[Any, ...] = (period.start, period.end)
        if process_type:
            args += (process_type,)
        facts = Facts()
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            rows = {
                name: await conn.fetch(sql.format(typed=typed), *args)
                for name, sql in _SLICE.items()
            }
            for row in rows["requests"]:
                facts.merge(_request(row))
            for row in rows["steps"]:
                facts.merge(_step(row))
            for row in rows["overrides"]:
                facts.merge(_override(row))
            for row in rows["cases"]:
                facts.merge(_case(row))
            for row in rows["audit"]:
                facts.merge(_audit(row))
            await self._load_links(conn, facts)
        return facts

    async def _load_links(self, conn: asyncpg.Connection, facts: Facts) -> None:
        case_ids = {a.case_id for a in facts.audit.values() if a.case_id} - facts.cases.keys()
        for row in await conn.fetch("SELECT * FROM cases WHERE case_id = ANY($1)", list(case_ids)):
            facts.merge(_case(row))
        request_ids: set[UUID] = {s.request_id for s in facts.steps.values()}
        request_ids |= {c.request_id.value for c in facts.cases.values() if c.request_id}
        request_ids |= {a.request_id for a in facts.audit.values() if a.request_id}
        request_ids -= facts.requests.keys()
        for row in await conn.fetch(
            "SELECT * FROM requests WHERE request_id = ANY($1)", list(request_ids)
        ):
            facts.merge(_request(row))
