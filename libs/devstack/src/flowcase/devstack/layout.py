"""Where the local stack keeps its files and which ports it listens on."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from flowcase.events.settings import LOCAL_POSTGRES_PORT


def repo_root() -> Path:
    """The checkout this package runs from (the stack needs deploy/ from it)."""
    for start in (Path.cwd(), Path(__file__).resolve()):
        for folder in (start, *start.parents):
            if (folder / "deploy" / "kafka" / "pom.xml").is_file():
                return folder
    raise RuntimeError("cannot find the Flowcase checkout (deploy/kafka/pom.xml) from here")


@dataclass(frozen=True)
class Layout:
    root: Path  # the checkout
    home: Path  # state: data, logs, pid files

    @classmethod
    def default(cls) -> Layout:
        root = repo_root()
        home = Path(os.environ.get("FLOWCASE_HOME", root / ".flowcase")).resolve()
        return cls(root=root, home=home)

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def run(self) -> Path:
        return self.home / "run"

    def pid_file(self, name: str) -> Path:
        return self.run / f"{name}.pid"


@dataclass(frozen=True)
class Ports:
    kafka: int = 19092
    postgres: int = LOCAL_POSTGRES_PORT

    @property
    def kafka_controller(self) -> int:
        return self.kafka + 1

    @property
    def kafka_faults(self) -> int:
        """A second broker listener that tests reach through a fault-injecting proxy."""
        return self.kafka + 2

    @property
    def kafka_faults_proxy(self) -> int:
        return self.kafka + 3

    @classmethod
    def from_env(cls) -> Ports:
        return cls(
            kafka=int(os.environ.get("FLOWCASE_KAFKA_PORT", cls.kafka)),
            postgres=int(os.environ.get("FLOWCASE_POSTGRES_PORT", cls.postgres)),
        )
