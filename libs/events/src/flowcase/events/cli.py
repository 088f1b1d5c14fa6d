"""`flowcase events …`: export the contract."""

from __future__ import annotations

import io
import json
from pathlib import Path

import typer
from ruamel.yaml import YAML

from flowcase.events.catalogue.base import REGISTRY
from flowcase.events.schemas import all_json_schemas, asyncapi_document

app = typer.Typer(
    help="The event contract: catalogue, JSON Schemas, AsyncAPI.", no_args_is_help=True
)


@app.command("list")
def list_events() -> None:
    """Print every catalogued event type with its topic and schema version."""
    for event_type, model in sorted(REGISTRY.items()):
        typer.echo(f"{event_type:34} v{model.schema_version}  {model.topic.value}")


@app.command()
def asyncapi() -> None:
    """Print the AsyncAPI 3.0 document of every topic (YAML)."""
    document = io.StringIO()
    YAML().dump(asyncapi_document(), document)  # keys in the document's order
    typer.echo(document.getvalue(), nl=False)


@app.command()
def schemas(
    out: Path = typer.Argument(..., help="Folder to write one JSON Schema file per event into."),
) -> None:
    """Write the JSON Schema of every event and of the raw submission."""
    out.mkdir(parents=True, exist_ok=True)
    for name, schema in all_json_schemas().items():
        (out / name).write_text(json.dumps(schema, indent=2) + "\n")
    typer.echo(f"wrote {len(REGISTRY) + 1} schemas to {out}")
