"""The `flowcase` command loads only the part it is asked for, and lists every part."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from flowcase.cli.main import build_app

LOADED = """
import json, sys
from typer.testing import CliRunner
from flowcase.cli.main import build_app
result = CliRunner().invoke(build_app(), sys.argv[1:])
assert result.exit_code == 0, result.output
print(json.dumps([m for m in sys.modules if m.startswith("flowcase.")]))
"""


def loaded_by(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", LOADED, *args], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout))


def test_a_command_imports_its_own_part_alone() -> None:
    """`flowcase governance import` starts without the workflow's rule engine, the case
    service or the benchmarks (which took seconds to import, before each command)."""
    modules = loaded_by("governance", "import", "--help")
    assert "flowcase.governance.cli" in modules
    for other in ("flowcase.workflow", "flowcase.case", "flowcase.bench", "flowcase.devstack"):
        assert not any(m == other or m.startswith(f"{other}.") for m in modules), other


def test_the_help_lists_every_part() -> None:
    result = CliRunner().invoke(build_app(), ["--help"])
    assert result.exit_code == 0
    for part in ("bench", "case", "demo", "events", "governance", "processes", "stack", "trace"):
        assert f" {part} " in result.output, part
