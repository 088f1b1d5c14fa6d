"""The soak and long fault run (`make soak`, not part of `make test`).

Runs the mixed load for FLOWCASE_SOAK_SECONDS at FLOWCASE_SOAK_RATE requests per second, injects
the next fault of the rotation every FLOWCASE_SOAK_FAULT_EVERY seconds (0: none), and samples
every FLOWCASE_SOAK_SAMPLE_SECONDS the memory (RSS) of every process, the lag of every consumer
group and the latency of the window. The samples go to `benchmarks/results/reliability-soak-
<time>.json` and a table; then the run is checked like the short one.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

SECONDS = float(os.environ.get("FLOWCASE_SOAK_SECONDS", "0"))
RATE = float(os.environ.get("FLOWCASE_SOAK_RATE", "3"))
FAULT_EVERY = float(os.environ.get("FLOWCASE_SOAK_FAULT_EVERY", "45"))
SAMPLE_EVERY = float(os.environ.get("FLOWCASE_SOAK_SAMPLE_SECONDS", "10"))
RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not SECONDS, reason="set FLOWCASE_SOAK_SECONDS (make soak)"),
]

ROTATION = (
    ("kill", "intake"),
    ("kill", "workflow"),
    ("restart_kafka",),
    ("kill", "case"),
    ("rebalance", "workflow"),
    ("kill", "governance"),
    ("restart_postgres",),
    ("duplicate_delivery",),
    ("rebalance", "case"),
    ("rebalance", "governance"),
)


@pytest.mark.timeout(SECONDS + 900)
async def test_reliability_soak(platform, truth, driver, faults, checks) -> None:
    assert all((await platform.all_ready()).values())
    started = time.monotonic()
    samples: list[dict] = []
    stop = asyncio.Event()

    async def load() -> None:
        while not stop.is_set():
            driver.submit_soon()
            await asyncio.sleep(1 / RATE)

    async def inject() -> None:
        n = 0
        while FAULT_EVERY and not stop.is_set():
            await asyncio.sleep(FAULT_EVERY)
            if stop.is_set():
                return
            name, *args = ROTATION[n % len(ROTATION)]
            await getattr(faults, name)(*args)
            n += 1

    async def sample() -> None:
        while not stop.is_set():
            window_start = time.monotonic()
            await asyncio.sleep(SAMPLE_EVERY)
            lag = {}
            try:
                lag = await checks.lag()
            except Exception as exc:  # the broker may be restarting right now
                lag = {"unavailable": repr(exc)[:100]}
            samples.append(
                {
                    "t": round(time.monotonic() - started, 1),
                    "accepted": len(truth.accepted),
                    "completed": len(driver.completed_at),
                    "faults": sum(truth.faults.values()),
                    "rss_mb": {
                        k: round(v / 2**20, 1) if v else None
                        for k, v in platform.stack.memory().items()
                    },
                    "lag": lag,
                    "latency": driver.latencies(since=window_start - SAMPLE_EVERY),
                }
            )

    tasks = [asyncio.create_task(t()) for t in (load, inject, sample)]
    await asyncio.sleep(SECONDS)
    stop.set()
    await asyncio.gather(*tasks)
    await driver.drain()
    quiet = await checks.quiescence(driver, stall=300)
    verdict = await checks.verify()
    report = {
        "started": truth.started_at.isoformat(),
        "seconds": SECONDS,
        "rate_per_second": RATE,
        "fault_every_seconds": FAULT_EVERY,
        "figures": verdict.figures,
        "latency_overall": driver.latencies(),
        "quiescence": quiet,
        "fault_log": faults.log,
        "samples": samples,
        "problems": verdict.problems,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"reliability-soak-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(report, indent=1, default=str))
    _print_table(samples)
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}, indent=1, default=str))
    print(f"written to {out}")
    assert not verdict.problems, "\n".join(verdict.problems)


def _print_table(samples: list[dict]) -> None:
    names = sorted({k for s in samples for k in s["rss_mb"]})
    groups = sorted({k for s in samples for k in s["lag"] if k != "unavailable"})
    header = [
        "t(s)",
        "accepted",
        "done",
        "faults",
        *(f"{n} MB" for n in names),
        "lag total",
        "p50 s",
        "p95 s",
    ]
    print("\n" + " | ".join(header))
    for s in samples:
        lag = s["lag"]
        total = "n/a" if "unavailable" in lag else str(sum(lag.get(g, 0) for g in groups))
        print(
            " | ".join(
                [
                    str(s["t"]),
                    str(s["accepted"]),
                    str(s["completed"]),
                    str(s["faults"]),
                    *(str(s["rss_mb"].get(n)) for n in names),
                    total,
                    str(s["latency"]["outcome_p50_seconds"]),
                    str(s["latency"]["outcome_p95_seconds"]),
                ]
            )
        )
