"""Background processes with pid files that survive crashes of whoever started them."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

# Set by the test plugin while a test not marked `integration` runs: `make test-unit` promises
# no server, so a test that would start one fails and says to mark it.
UNIT_TEST_ENV = "FLOWCASE_UNIT_TEST"


class StackError(RuntimeError):
    """A clear, actionable reason the stack cannot start or stop."""


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); it is not running.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def read_pid(pid_file: Path, marker: str) -> int | None:
    """The pid in the file if that process is alive and is ours; a stale file is removed."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if alive(pid) and marker in cmdline(pid):
        return pid
    pid_file.unlink(missing_ok=True)
    return None


def spawn(
    args: Sequence[str],
    *,
    log_file: Path,
    pid_file: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start a process in its own session (Ctrl-C in the terminal does not reach it directly)."""
    if unit_test := os.environ.get(UNIT_TEST_ENV):
        raise StackError(f"{unit_test} starts {Path(args[0]).name} but is not marked integration")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            list(args),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    pid_file.write_text(str(proc.pid))
    return proc.pid


def terminate(pid: int, *, timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within the timeout."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            _reap(pid)
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    log_file: Path | None = None,
    still_running: Callable[[], bool] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if still_running is not None and not still_running():
            raise StackError(f"{what} exited during start-up{_tail(log_file)}")
        time.sleep(0.2)
    raise StackError(f"{what} was not ready after {timeout:.0f}s{_tail(log_file)}")


def _tail(log_file: Path | None, lines: int = 15) -> str:
    if log_file is None or not log_file.exists():
        return ""
    text = log_file.read_text(errors="replace").splitlines()[-lines:]
    return f"; last lines of {log_file}:\n" + "\n".join(text)
