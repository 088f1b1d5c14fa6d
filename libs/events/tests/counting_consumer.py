"""A consumer process for the crash test: each delivery is logged, its effect applied once.

Run as a script: `python counting_consumer.py BOOTSTRAP TOPIC GROUP DATABASE_URL [--crash]`.
With --crash the process SIGKILLs itself after the database commit and before the offset commit.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import asyncpg

from flowcase.events import Envelope
from flowcase.events.inbox import Inbox
from flowcase.events.kafka import ConsumerRunner, EventProducer, decoded, stop_on_signals
from flowcase.events.kafka.consumer import Record
from flowcase.events.settings import KafkaSettings

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    topic text, part int, "offset" bigint, at timestamptz DEFAULT now()
);
CREATE TABLE IF NOT EXISTS effects (event_id text PRIMARY KEY);
"""


async def main(bootstrap: str, topic: str, group: str, dsn: str, crash: bool) -> None:
    settings = KafkaSettings(bootstrap=bootstrap)
    inbox = Inbox(group)
    conn = await asyncpg.connect(dsn)
    await conn.execute(SCHEMA)
    await inbox.create_table(conn)

    async def handle(envelope: Envelope, record: Record) -> None:
        await conn.execute(
            'INSERT INTO deliveries (topic, part, "offset") VALUES ($1, $2, $3)',
            record.topic,
            record.partition,
            record.offset,
        )
        async with conn.transaction():
            if await inbox.claim(conn, str(envelope.event_id)):
                await conn.execute("INSERT INTO effects VALUES ($1)", str(envelope.event_id))
        if crash:
            os.kill(os.getpid(), signal.SIGKILL)

    async with EventProducer(settings, client_id=group) as deadletter:
        runner = ConsumerRunner(
            settings, group_id=group, topics=[topic], handler=decoded(handle), deadletter=deadletter
        )
        stop_on_signals(runner.stop)
        await runner.run()
    await conn.close()


if __name__ == "__main__":
    bootstrap, topic, group, dsn = sys.argv[1:5]
    asyncio.run(main(bootstrap, topic, group, dsn, crash="--crash" in sys.argv))
