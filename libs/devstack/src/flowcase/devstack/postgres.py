"""PostgreSQL from Debian's packages, in a data folder of the stack, on its own port.

PostgreSQL refuses to run as root; when the stack runs as root the server runs as the `postgres`
system user (the Debian package creates it) and owns its data folder.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import asyncpg

from flowcase.devstack.layout import Layout, Ports
from flowcase.devstack.processes import StackError, StartUp, port_open, wait_until

SUPERUSER = "flowcase"

SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "300",
    "shared_buffers": "256MB",
    "wal_level": "replica",
    "log_min_messages": "warning",
    "log_line_prefix": "'%m [%p] %d '",
}


def _find_bindir() -> Path:
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip()
        candidates.append(Path(out))
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    candidates.extend(reversed(versions))
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    raise StackError("PostgreSQL server binaries not found: run `make install` (apt: postgresql)")


@dataclass
class PostgresServer:
    layout: Layout
    ports: Ports

    @property
    def dsn(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.ports.postgres}/postgres"

    def database_url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.ports.postgres}/{database}"

    @property
    def log_file(self) -> Path:
        return self.layout.logs / "postgres.log"

    @cached_property
    def run_as(self) -> str | None:
        """The system user the server runs as, when we are root (PostgreSQL refuses root)."""
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam("postgres")
        except KeyError as exc:
            raise StackError(
                "running as root needs the `postgres` system user (apt: postgresql)"
            ) from exc
        return "postgres"

    @cached_property
    def folder(self) -> Path:
        folder = self.layout.home / "postgres"
        if self.run_as and not self._reachable_by_run_as(folder):
            # The checkout sits where the postgres user cannot reach (e.g. under /root): keep the
            # data in a per-checkout folder of the system temp dir instead.
            digest = hashlib.sha256(str(self.layout.home).encode()).hexdigest()[:12]
            folder = Path(tempfile.gettempdir()) / f"flowcase-postgres-{digest}"
        return folder

    def _reachable_by_run_as(self, folder: Path) -> bool:
        probe = folder.parent
        probe.mkdir(parents=True, exist_ok=True)
        return (
            subprocess.run(
                ["runuser", "-u", self.run_as or "", "--", "test", "-x", str(probe)]
            ).returncode
            == 0
        )

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def _as_server_user(self, args: list[str]) -> list[str]:
        return ["runuser", "-u", self.run_as, "--", *args] if self.run_as else args

    def _prepare_folder(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.layout.logs.mkdir(parents=True, exist_ok=True)
        self.log_file.touch()
        if self.run_as:
            user = pwd.getpwnam(self.run_as)
            for path in (self.folder, self.log_file):
                os.chown(path, user.pw_uid, user.pw_gid)

    def _initdb(self, bindir: Path) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        result = subprocess.run(
            self._as_server_user(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ]
            ),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise StackError(f"initdb failed:\n{result.stdout}{result.stderr}")
        # Unix sockets off: clients reach the server on its loopback port only.
        settings = {**SERVER_SETTINGS, "unix_socket_directories": "''"}
        with open(self.data / "postgresql.auto.conf", "a") as conf:
            conf.writelines(f"{k} = {v}\n" for k, v in settings.items())

    def running(self) -> bool:
        return self.status_code() == 0

    def status_code(self) -> int:
        if not (self.data / "PG_VERSION").exists():
            return 4
        bindir = _find_bindir()
        return subprocess.run(
            self._as_server_user([str(bindir / "pg_ctl"), "status", "-D", str(self.data)]),
            capture_output=True,
        ).returncode

    def start(self, *, timeout: float = 60.0) -> bool:
        """Start the server unless it already runs; True if this call started it."""
        bindir = _find_bindir()
        if self.running():
            wait_until(self.healthy, timeout=timeout, startup=self._startup())
            return False
        startup = self._startup(ports=(self.ports.postgres,))
        startup.check_ports()
        self._prepare_folder()
        self._initdb(bindir)
        # pg_ctl removes a stale postmaster.pid left by a crash by itself.
        result = subprocess.run(
            self._as_server_user(
                [
                    str(bindir / "pg_ctl"),
                    "start",
                    "-w",
                    "-t",
                    str(int(timeout)),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log_file),
                    "-o",
                    f"-p {self.ports.postgres}",
                ]
            ),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            # pg_ctl gives up after the timeout on a server still starting: that one holds its port.
            raise startup.failure("did not start", exited=not self.running(), output=result.stderr)
        wait_until(self.healthy, timeout=timeout, startup=startup)
        return True

    def _startup(self, ports: tuple[int, ...] = ()) -> StartUp:
        return StartUp(
            "PostgreSQL",
            logs=(self.log_file,),
            ports=ports,
            hint="stop that process, or move this stack's PostgreSQL with "
            f"FLOWCASE_POSTGRES_PORT (now {self.ports.postgres})",
        )

    def healthy(self) -> bool:
        return port_open(self.ports.postgres) and asyncio.run(_connects(self.dsn))

    def stop(self) -> None:
        if not self.running():
            return
        subprocess.run(
            self._as_server_user(
                [str(_find_bindir() / "pg_ctl"), "stop", "-m", "fast", "-D", str(self.data)]
            ),
            capture_output=True,
        )


async def _connects(dsn: str) -> bool:
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True
