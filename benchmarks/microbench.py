"""What the in-process micro-benchmarks share: timing a piece of work, writing its results.

`codec.py` and `engine.py` import it as a sibling module (`from microbench import …`), as the
service benchmarks import `tokens`.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("results")


def microseconds_each(work: Callable[[], object], times: int, per_call: int = 1) -> float:
    """Microseconds per item: `work` called `times` times, each call doing `per_call` items."""
    started = time.perf_counter()
    for _ in range(times):
        work()
    return (time.perf_counter() - started) / (times * per_call) * 1e6


def write_results(kind: str, at: datetime, **figures: Any) -> Path:
    """`results/<kind>-<date>.json`, with the Python version and the machine's load average."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{kind}-{at.strftime('%Y-%m-%dT%H%M%S')}.json"
    document = {
        "at": at.isoformat(),
        **figures,
        "python": platform.python_version(),
        "load_average": os.getloadavg(),
    }
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {out}")
    return out
