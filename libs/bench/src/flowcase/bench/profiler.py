"""py-spy on one service during the platform phase (adapter): a speedscope file beside the
results, and its hottest frames in them. Skipped, with the reason, where ptrace is not allowed."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from flowcase.bench.speedscope import hot_frames


def _py_spy() -> str:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy") or "py-spy"


class Profiler:
    def __init__(self, service: str, pid: int, output: Path) -> None:
        self.service, self.pid, self.output = service, pid, output
        self.process: asyncio.subprocess.Process | None = None
        self.skipped: str | None = None

    async def start(self) -> bool:
        """Start sampling; False (and `skipped` says why) when py-spy cannot attach."""
        probe = await asyncio.create_subprocess_exec(
            _py_spy(), "dump", "--pid", str(self.pid),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, error = await probe.communicate()
        if probe.returncode != 0:
            self.skipped = error.decode(errors="replace").strip()[-300:] or "py-spy failed"
            return False
        self.process = await asyncio.create_subprocess_exec(
            _py_spy(), "record", "--pid", str(self.pid), "--rate", "100", "--nonblocking",
            "--format", "speedscope", "--output", str(self.output),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        return True

    async def stop(self) -> dict[str, Any]:
        if self.process is None:
            return {"service": self.service, "skipped": self.skipped}
        # py-spy writes its file when interrupted, as after Ctrl-C.
        self.process.send_signal(signal.SIGINT)
        await asyncio.wait_for(self.process.wait(), timeout=60)
        if not self.output.exists():
            return {"service": self.service, "skipped": "py-spy wrote no profile"}
        return {
            "service": self.service,
            "file": self.output.name,
            "hot_frames": hot_frames(json.loads(self.output.read_text())),
        }
