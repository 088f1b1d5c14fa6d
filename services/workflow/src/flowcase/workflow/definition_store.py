"""Every definition version the service ever published, kept in its database (an adapter).

Running instances stay on the version they started with, also across restarts and after a new
version of a file has replaced the old one in the folder: the registry is rebuilt at start from
every stored version, then the folder's definitions are added. A stored version is kept as the
YAML text it was published from, parsed again on load (the parser is the one source of truth).
"""

from __future__ import annotations

from pathlib import Path

import asyncpg

from flowcase.workflow.definition_files import SUFFIXES, parse_definition
from flowcase.workflow.registry import DefinitionRegistry

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS workflow_definitions (
    request_type text NOT NULL,
    version integer NOT NULL,
    file text NOT NULL,
    source text NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (request_type, version)
)
"""


async def load_definitions(pool: asyncpg.Pool, folder: Path) -> DefinitionRegistry:
    """The registry of every stored version plus the folder's definitions, which are stored
    first if new. Raises `InvalidDefinition` for a bad file and `VersionConflict` for a
    published version whose file has changed (publish a new version instead)."""
    files = [(path.name, path.read_text(encoding="utf-8")) for path in _sources(folder)]
    async with pool.acquire() as conn:
        await conn.execute(CREATE_TABLE)
        registry = DefinitionRegistry(
            parse_definition(row["source"], row["file"])
            for row in await conn.fetch(
                "SELECT file, source FROM workflow_definitions ORDER BY request_type, version"
            )
        )
        for name, text in files:
            definition = parse_definition(text, name)
            registry.publish(definition)
            await conn.execute(
                "INSERT INTO workflow_definitions (request_type, version, file, source) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                definition.request_type,
                definition.version,
                name,
                text,
            )
    return registry


def _sources(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES)
