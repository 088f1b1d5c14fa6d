"""The transactional inbox: what a consumer has already processed, recorded with its effects.

A handler claims the message id inside the same PostgreSQL transaction as its state change, so a
redelivered message (after a crash before the offset commit, or a re-publish) changes nothing:

    async with conn.transaction():
        if not await inbox.claim(conn, str(envelope.event_id)):
            return
        ...  # the state change
"""

from __future__ import annotations

import asyncpg


class Inbox:
    def __init__(self, consumer: str, *, table: str = "flowcase_inbox") -> None:
        self.consumer = consumer
        self._table = table

    async def create_table(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            f"""
            CREATE TABLE IF NOT EXISTS {self._table} (
                consumer text NOT NULL,
                message_id text NOT NULL,
                consumed_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (consumer, message_id)
            )
            """
        )

    async def claim_all(self, conn: asyncpg.Connection, message_ids: list[str]) -> set[str]:
        """The ids among these this consumer sees for the first time, claimed in one statement
        (a consumed batch). Runs inside the caller's transaction."""
        _require_transaction(conn)
        rows = await conn.fetch(
            f"INSERT INTO {self._table} (consumer, message_id) "
            "SELECT $1, message_id FROM unnest($2::text[]) AS message_id "
            "ON CONFLICT DO NOTHING RETURNING message_id",
            self.consumer,
            message_ids,
        )
        return {row["message_id"] for row in rows}

    async def claim(self, conn: asyncpg.Connection, message_id: str) -> bool:
        """True the first time this consumer sees the id. Runs inside the caller's transaction."""
        _require_transaction(conn)
        inserted = await conn.fetchval(
            f"INSERT INTO {self._table} (consumer, message_id) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING RETURNING true",
            self.consumer,
            message_id,
        )
        return bool(inserted)


def _require_transaction(conn: asyncpg.Connection) -> None:
    if not conn.is_in_transaction():
        raise RuntimeError("an inbox claim must run inside the transaction of the state change")
