"""The facts of the machine a benchmark ran on: every figure is only as good as these."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import psutil


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float]:
    """The 1, 5 and 15-minute load averages: other work on the machine skews every figure."""
    return [round(value, 2) for value in os.getloadavg()]


def machine_facts(load_before: list[float], **extra: Any) -> dict[str, Any]:
    """CPU, memory, Python and the load average before the run and now (after it)."""
    return {
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": {"before": load_before, "after": load_average()},
        **extra,
    }
