"""The Flowcase services as local processes (`python -m flowcase.<name>`)."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from flowcase.devstack.layout import Layout
from flowcase.devstack.processes import StartUp, alive, read_pid, spawn, terminate, wait_until


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

    @property
    def pid_file(self) -> Path:
        return self.layout.pid_file(self.service.name)

    @property
    def log_file(self) -> Path:
        return self.layout.logs / f"{self.service.name}.log"

    def pid(self) -> int | None:
        return read_pid(self.pid_file, self.service.module)

    def start(self, env: dict[str, str], *, timeout: float = 60.0) -> bool:
        pid = self.pid()
        startup = StartUp(
            f"the {self.service.name} service",
            logs=(self.log_file,),
            ports=(self.service.port,) if pid is None else (),
        )
        if pid is None:
            pid = spawn(
                [sys.executable, "-m", self.service.module],
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
            started = True
        else:
            started = False
        wait_until(self.ready, timeout=timeout, startup=startup, still_running=lambda: alive(pid))
        return started

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
