"""The `flowcase` command as a user runs it, from a benchmark: a child process in this
environment, timed from start to exit, saying its peak memory as it exits.

`governance.py` and `what_if.py` import it as a sibling module (`from commands import …`).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass

# VmHWM is the high-water mark of the child's own memory since exec; ru_maxrss would carry over
# the size of the benchmark process that forked it.
_FLOWCASE = (
    sys.executable,
    "-c",
    "import re, sys\n"
    "from pathlib import Path\n"
    "from flowcase.cli.main import main\n"
    "try:\n"
    "    main()\n"
    "finally:\n"
    "    status = Path('/proc/self/status').read_text()\n"
    "    peak = re.search(r'VmHWM:\\s+(\\d+) kB', status)[1]\n"
    "    print(f'peak_rss_kib={peak}', file=sys.stderr)\n",
)


@dataclass(frozen=True)
class Ran:
    stdout: str
    seconds: float
    peak_rss_mib: float


def flowcase(*args: str) -> Ran:
    """`flowcase ARGS…` to its exit; a failure raises with the end of what it said."""
    started = time.monotonic()
    done = subprocess.run([*_FLOWCASE, *args], capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"flowcase {' '.join(args)} failed: {done.stderr[-2000:]}")
    peak = int(re.search(r"peak_rss_kib=(\d+)", done.stderr)[1])  # type: ignore[index]
    return Ran(done.stdout, seconds, round(peak / 1024, 1))
