"""The Flowcase services as local processes (`python -m flowcase.<name>`)."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from flowcase.devstack.layout import Layout
from flowcase.devstack.processes import (
    StackError,
    StartUp,
    alive,
    read_pid,
    spawn,
    terminate,
    wait_until,
)
from flowcase.devstack.supervisor import Supervision


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    package: str | None = None

    @property
    def module(self) -> str:
        return self.package or f"flowcase.{self.name}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def installed(self) -> bool:
        try:
            return importlib.util.find_spec(f"{self.module}.__main__") is not None
        except ModuleNotFoundError:
            return False


SERVICES = (
    Service("intake", 8001),
    Service("workflow", 8002),
    Service("case", 8003),
    Service("governance", 8004),
)

# Answers the webhooks workflow actions call, so routine requests complete on one machine.
WEBHOOK_SINK = Service("webhook-sink", 8009, package="flowcase.devstack.webhook_sink")


@dataclass
class ServiceProcess:
    service: Service
    layout: Layout
    # Restarted whenever it exits unasked, as compose's `restart: unless-stopped` does: the
    # stack's processes are. The reliability suite's are not: it kills and restarts them itself.
    supervised: bool = False

    @property
    def pid_file(self) -> Path:
        """Names the supervisor of a supervised process, which `stop` asks to stop both."""
        return self.layout.pid_file(self.service.name)

    @property
    def supervision_file(self) -> Path:
        return self.layout.run / f"{self.service.name}.supervision.json"

    @property
    def log_file(self) -> Path:
        return self.layout.logs / f"{self.service.name}.log"

    def pid(self) -> int | None:
        return read_pid(self.pid_file, self.service.module)

    def supervision(self) -> Supervision | None:
        """The supervisor's account (the service's pid, its restarts) while it runs."""
        return Supervision.read(self.supervision_file) if self.pid() is not None else None

    def start(self, env: dict[str, str], *, timeout: float = 60.0) -> bool:
        """Start unless running, and wait until `/readyz` answers 200; whether it started it."""
        pid = self.pid()
        startup = self._startup(check_port=pid is None)
        started = pid is None
        if pid is None:
            pid = self._spawn(env, startup)
        launched = pid
        try:
            wait_until(
                self.ready,
                timeout=timeout,
                startup=startup,
                still_running=lambda: alive(launched) and not (started and self._exited()),
            )
        except StackError:
            if started and self.supervised:
                self.stop()  # else its supervisor goes on restarting a start that failed
            raise
        return started

    def launch(self, env: dict[str, str]) -> int:
        """Start it without waiting until it is ready (it may be waiting for a dependency)."""
        return self._spawn(env, self._startup(check_port=True))

    def _startup(self, *, check_port: bool) -> StartUp:
        return StartUp(
            f"the {self.service.name} service",
            logs=(self.log_file,),
            ports=(self.service.port,) if check_port else (),
        )

    def _spawn(self, env: dict[str, str], startup: StartUp) -> int:
        command = [sys.executable, "-m", self.service.module]
        if self.supervised:
            self.supervision_file.unlink(missing_ok=True)  # a dead supervisor's, not this one's
            command = [
                sys.executable,
                "-m",
                "flowcase.devstack.supervisor",
                str(self.supervision_file),
                "--",
                *command,
            ]
        return spawn(
            command,
            log_file=self.log_file,
            pid_file=self.pid_file,
            env={
                **env,
                "FLOWCASE_HTTP_PORT": str(self.service.port),
                "OTEL_SERVICE_NAME": f"flowcase-{self.service.name}",
            },
            cwd=self.layout.root,
            startup=startup,
        )

    def _exited(self) -> bool:
        """Whether a supervised service has exited since its supervisor started it."""
        supervision = Supervision.read(self.supervision_file) if self.supervised else None
        return supervision is not None and supervision.last_exit_code is not None

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.service.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            terminate(pid)
        self.pid_file.unlink(missing_ok=True)
        self.supervision_file.unlink(missing_ok=True)
