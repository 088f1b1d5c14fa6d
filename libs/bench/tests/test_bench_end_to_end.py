"""The harness end to end, briefly, on a dedicated stack: every request it offers, at a rate or
in a drain, reaches its outcome, and the results file has every stage, baseline and drain figure.
Speed is never asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowcase.bench.run import BenchSettings, run_bench
from flowcase.bench.stages import STAGES

pytestmark = pytest.mark.integration


async def test_a_short_run_reaches_every_outcome_and_writes_whole_results(tmp_path: Path) -> None:
    settings = BenchSettings(
        rates=(20.0,),
        seconds=3.0,
        vias=("http", "raw"),
        baseline_seconds=1.0,
        drain=200,
        output=tmp_path,
    )

    document, path = await run_bench(settings)

    assert path.parent == tmp_path
    assert json.loads(path.read_text()) == json.loads(json.dumps(document))
    assert [(s["via"], s["rate"]) for s in document["steps"]] == [("http", 20.0), ("raw", 20.0)]
    for step in document["steps"]:
        counts = step["counts"]
        assert counts["scheduled"] == 60 == sum(counts["by_kind"].values())
        assert counts["accepted"] == counts["scheduled"], counts
        assert counts["outcome_in_window"] + counts["outcome_after_window"] == counts["accepted"]
        for missing in ("refused", "unanswered", "outstanding", "wrong_outcome"):
            assert counts[missing] == 0, counts
        assert set(step["stages_ms"]) == set(STAGES)
        assert step["stages_ms"]["submit_to_accepted"]["count"] == counts["accepted"]
        assert (
            step["stages_ms"]["submit_to_completed_routine"]["count"]
            == (counts["by_kind"]["routine"])
        )
        assert (
            step["stages_ms"]["approval_requested_to_completed"]["count"]
            == (counts["by_kind"]["approval"])
        )
        assert (
            step["stages_ms"]["escalation_to_case_opened"]["count"]
            == (counts["by_kind"]["escalation"])
        )
        assert {"workflow", "intake", "kafka", "postgres", "driver"} <= set(step["cpu_percent"])
        assert "governance" in step["consumer_lag_messages"]
        assert set(step["ratios"]) >= {"completed_vs_kafka_produce_consume"}
    kafka, postgres = document["baselines"]["kafka"], document["baselines"]["postgres"]
    assert kafka["throughput"]["consumed"] == kafka["throughput"]["messages"] > 0
    assert kafka["paced"]["consumed"] == kafka["paced"]["messages"]
    assert postgres["one_row_per_transaction"]["rows"] > 0
    assert postgres["batched"]["rows"] % postgres["batched"]["rows_per_transaction"] == 0
    assert document["machine"]["load_average"]["after"]
    drain = document["drain"]
    counts = drain["counts"]
    assert (
        counts["scheduled"] == 200 == counts["reached_outcome"] == sum(counts["by_kind"].values())
    )
    for missing in ("refused", "unanswered", "outstanding", "wrong_outcome"):
        assert counts[missing] == 0, counts
    assert drain["drained"] is True
    assert 0 < drain["first_outcome_seconds"] <= drain["drain_seconds"]
    assert drain["publish"]["per_second"] > 0
    assert sum(drain["completed_each_second"]) == 200
    assert drain["throughput"]["completed_per_second"] > 0
    platform = drain["platform_cpu_ms_per_completed"]["by_process"]
    assert set(platform) == {"workflow", "intake", "governance", "case", "kafka", "postgres"}
    assert drain["platform_cpu_ms_per_completed"]["total"] > 0
    assert "governance" in drain["governance_lag_seconds"]
    assert drain["ratios"]["completed_vs_kafka_produce_consume"] is not None
    assert document["settings"]["drain"] == {"requests": 200, "stall_seconds": 60.0}
