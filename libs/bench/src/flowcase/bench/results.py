"""Where benchmark results go: one JSON file per run under the checkout's benchmarks/results."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flowcase.devstack.layout import repo_root


def results_folder() -> Path:
    return repo_root() / "benchmarks" / "results"


def result_path(kind: str, folder: Path | None = None, *, suffix: str = ".json") -> Path:
    """`<folder>/<kind>-<UTC time>.json`, the folder created if needed."""
    folder = folder or results_folder()
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{kind}-{datetime.now(UTC):%Y-%m-%dT%H%M%S}{suffix}"


def write_results(document: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
