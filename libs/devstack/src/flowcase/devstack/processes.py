"""Background processes with pid files that survive crashes of whoever started them."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Set by the test plugin while a test not marked `integration` runs: `make test-unit` promises
# no server, so a test that would start one fails and says to mark it.
UNIT_TEST_ENV = "FLOWCASE_UNIT_TEST"


class StackError(RuntimeError):
    """A clear, actionable reason the stack cannot start or stop."""


class PortTaken(StackError):
    """A port a server needs is held by another process."""

    def __init__(self, port: int, message: str) -> None:
        super().__init__(message)
        self.port = port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on the port now.

    Binding, not connecting, is the test: a port can be held without a listener (a socket
    bound by a server still starting, the local end of a connection). SO_REUSEADDR, as Kafka,
    PostgreSQL and uvicorn set it, so a connection of the past in TIME_WAIT does not count.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno != errno.EADDRINUSE
        return True


@dataclass(frozen=True)
class PortUser:
    # None: a process of another user, or a socket bound without listening (/proc/net/tcp
    # lists listeners and connections only)
    pid: int | None
    command: str = ""

    def __str__(self) -> str:
        if self.pid is None:
            return "a process not found (another user's, or bound without listening)"
        command = " ".join(self.command.split())
        command = command if len(command) <= 240 else f"{command[:240]}…"
        return f"pid {self.pid} ({command})"


def port_user(port: int, host: str = "127.0.0.1") -> PortUser | None:
    """Who holds the port so that a server cannot listen on it; None when it is free."""
    if port_free(port, host):
        return None
    sockets = _socket_inodes(port)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours to look into
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in sockets:
                    pid = int(entry.name)
                    return PortUser(pid, cmdline(pid).strip())
    return PortUser(None)


def _socket_inodes(port: int) -> set[str]:
    """The sockets bound to the port, IPv4 and IPv6 (Java binds IPv4 as mapped IPv6), as the
    `socket:[inode]` that /proc/PID/fd links to."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                local_port, inode = int(fields[1].rsplit(":", 1)[1], 16), fields[9]
                if local_port == port and inode != "0":
                    found.add(f"socket:[{inode}]")
    return found


# A line saying why a server failed: a log record at ERROR or worse (Kafka's log4j, PostgreSQL,
# uvicorn, a service's JSON), a bind failure, or an exception's own line (Java's and Python's,
# with their causes) but not its stack frames.
_CAUSE = re.compile(
    r"\b(ERROR|FATAL|PANIC|CRITICAL|SEVERE)\b"
    r'|"level": "(error|critical)"'
    r"|(?i:address already in use)"
    r"|^(Caused by: )?[A-Za-z_][\w.$]*(Exception|Error)\b"
)


def error_lines(text: str, *, lines: int = 20) -> list[str]:
    """The lines of a log that say why its server failed, each once, the first `lines` of them."""
    return list(dict.fromkeys(line for line in text.splitlines() if _CAUSE.search(line)))[:lines]


def log_excerpt(text: str, *, lines: int = 20) -> list[str]:
    """What a failed server's log says about why: its error lines, or its last lines when it
    logged no error."""
    return error_lines(text, lines=lines) or text.splitlines()[-lines:]


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


@dataclass
class StartUp:
    """A server being started, so that a failed start names its cause: a port another process
    holds, the errors it logged in this start (not a previous one's, nor its configuration dump).
    """

    what: str  # "Kafka", "the intake service"
    logs: Sequence[Path]
    ports: Sequence[int] = ()
    hint: str = "stop that process"  # how to free a taken port, or move off it
    _offsets: dict[Path, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._offsets = {log: log.stat().st_size if log.exists() else 0 for log in self.logs}

    def check_ports(self) -> None:
        """PortTaken when another process holds a port the server needs."""
        for port in self.ports:
            if (user := port_user(port)) is not None:
                raise PortTaken(port, f"{self.what} cannot start: {self._taken(port, user)}")

    def failure(self, how: str, *, exited: bool, output: str = "") -> StackError:
        """The error for a start that went wrong `how` ("exited during start-up")."""
        said = f"\n{output.strip()}" if output.strip() else ""
        if exited:  # what it held, it let go: a port held now is held by another
            for port in self.ports:
                if (user := port_user(port)) is not None:
                    return PortTaken(
                        port, f"{self.what} {how}: {self._taken(port, user)}{said}{self._excerpt()}"
                    )
        return StackError(f"{self.what} {how}{said}{self._excerpt()}")

    def _taken(self, port: int, user: PortUser) -> str:
        return f"port {port} is in use by {user}; {self.hint}"

    def _excerpt(self) -> str:
        """The error lines of the logs that have some, else the last lines of each."""
        written = {}
        for log, offset in self._offsets.items():
            with contextlib.suppress(OSError), open(log, "rb") as file:
                file.seek(offset)
                if text := file.read().decode(errors="replace").strip():
                    written[log] = text
        erring = {log: found for log, text in written.items() if (found := error_lines(text))}
        excerpts = erring or {log: log_excerpt(text) for log, text in written.items()}
        return "".join(f"\n{log}:\n" + "\n".join(lines) for log, lines in excerpts.items())


def spawn(
    args: Sequence[str],
    *,
    log_file: Path,
    pid_file: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    startup: StartUp | None = None,
) -> int:
    """Start a process in its own session (Ctrl-C in the terminal does not reach it directly),
    unless a port its `startup` needs is taken."""
    if startup is not None:
        startup.check_ports()
    if unit_test := os.environ.get(UNIT_TEST_ENV):
        raise StackError(f"{unit_test} starts {Path(args[0]).name} but is not marked integration")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        try:
            proc = subprocess.Popen(
                list(args),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            what = startup.what if startup is not None else args[0]
            raise StackError(
                f"{what} cannot start: {args[0]} is not installed (run `make install`)"
            ) from exc
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
    startup: StartUp,
    still_running: Callable[[], bool] | None = None,
) -> None:
    """Until `check` holds, or the failure of `startup` with its cause.

    For `still_running` of a process just spawned, `alive(pid)`, not `read_pid`: for a moment
    after exec its command line reads empty, which read_pid takes for another process.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # Exited first: another process on the port may answer the check in its stead.
        if still_running is not None and not still_running():
            raise startup.failure("exited during start-up", exited=True)
        if check():
            return
        time.sleep(0.2)
    raise startup.failure(f"was not ready after {timeout:.0f}s", exited=False)
