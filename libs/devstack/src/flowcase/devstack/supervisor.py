"""`python -m flowcase.devstack.supervisor STATE -- COMMAND…`: keep one service process running.

The local stack's answer to compose's `restart: unless-stopped`: a service that exits without
being asked to (a crash, a kill -9, an exit on a failure it could not wait out) is started again
after a backoff, and each restart is counted in the STATE file that `flowcase stack status`
shows. SIGTERM (what `flowcase stack down` sends, to the supervisor named in the pid file) is
passed on to the service, and once the service has exited the supervisor exits too: nothing
restarts what `down` stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import signal
import sys
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

# Restart delays, as compose's: doubling from FIRST_DELAY up to LONGEST_DELAY while the process
# keeps exiting soon after its start, back to FIRST_DELAY once one ran STEADY seconds (it
# crashed, but not in a loop).
FIRST_DELAY = 1.0
LONGEST_DELAY = 30.0
STEADY = 10.0

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Supervision:
    """What the STATE file holds: the service's pid now, how often it was restarted and why."""

    pid: int | None = None
    restarts: int = 0
    last_exit_code: int | None = None  # negative: killed by that signal
    last_exit_at: str | None = None  # ISO 8601, UTC

    @classmethod
    def read(cls, path: Path) -> Supervision | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def write(self, path: Path) -> None:
        # Whole or not at all: `stack status` may read it at any moment.
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(asdict(self)))
        partial.replace(path)

    def last_exit(self) -> str:
        """`SIGKILL at 2026-12-04 20:54:27 UTC`, `exit 1 at …`; empty before any exit."""
        if self.last_exit_code is None or self.last_exit_at is None:
            return ""
        code = self.last_exit_code
        how = signal.Signals(-code).name if code < 0 else f"exit {code}"
        at = datetime.fromisoformat(self.last_exit_at).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"{how} at {at}"


def _die_with_the_supervisor() -> None:
    """In the service, before exec: the kernel SIGKILLs it when its supervisor dies, so that a
    supervisor killed outright never leaves a service running that no pid file names."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))


def _say(text: str) -> None:
    # The service's log is the supervisor's stdout too: one line there per restart.
    print(f"supervisor: {text}", flush=True)


async def supervise(command: list[str], state_file: Path) -> None:
    """Run `command` again each time it exits, until SIGTERM or SIGINT."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    stopped = asyncio.ensure_future(stopping.wait())
    state = Supervision()
    quick_exits = 0
    while True:
        child = await asyncio.create_subprocess_exec(*command, preexec_fn=_die_with_the_supervisor)
        state = replace(state, pid=child.pid)
        state.write(state_file)
        started = loop.time()
        exited = asyncio.ensure_future(child.wait())
        await asyncio.wait({exited, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if stopping.is_set():
            with contextlib.suppress(ProcessLookupError):
                child.terminate()  # it drains and exits; then so does its supervisor
            await exited
            return
        code = exited.result()
        quick_exits = 1 if loop.time() - started >= STEADY else quick_exits + 1
        delay = min(FIRST_DELAY * 2 ** (quick_exits - 1), LONGEST_DELAY)
        state = replace(
            state,
            pid=None,
            last_exit_code=code,
            last_exit_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        state.write(state_file)
        _say(f"{' '.join(command)} stopped ({state.last_exit()}); restarting in {delay:.0f} s")
        await asyncio.wait({stopped}, timeout=delay)
        if stopping.is_set():
            return
        state = replace(state, restarts=state.restarts + 1)


def main() -> None:
    arguments = sys.argv[1:]
    if len(arguments) < 3 or arguments[1] != "--":
        sys.exit("usage: python -m flowcase.devstack.supervisor STATE -- COMMAND…")
    asyncio.run(supervise(arguments[2:], Path(arguments[0])))


if __name__ == "__main__":
    main()
