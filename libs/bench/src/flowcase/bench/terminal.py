"""The run's summary as rich tables on the terminal (adapter)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table


def _ms(stage: dict[str, Any]) -> str:
    if not stage["count"]:
        return "—"
    return f"{stage['p50']:g} / {stage['p99']:g} / {stage['max']:g}"


def _cpu(step: dict[str, Any], name: str) -> str:
    cpu, rss = step["cpu_percent"].get(name), step["rss_mib"].get(name)
    if cpu is None:
        return "—"
    return f"{cpu['mean']:g} ({rss['max']:.0f})" if rss else f"{cpu['mean']:g}"


def _seconds(value: float | None) -> str:
    return "not drained" if value is None else f"{value:g}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def _drain_table(drain: dict[str, Any]) -> Table:
    counts, throughput = drain["counts"], drain["throughput"]
    published, cpu = drain["publish"], drain["platform_cpu_ms_per_completed"]
    governance = drain["governance_lag_seconds"].get("governance", {})
    table = Table(
        title=f"Saturation: {drain['requests']} requests published at once on the {drain['via']} "
        "topic, drained"
    )
    table.add_column("")
    table.add_column("", justify="right")
    reached = f"{counts['reached_outcome']} of {counts['scheduled']}"
    if not drain["drained"]:
        reached += f" [red](gave up: {counts['outstanding'] + counts['unanswered']} left)[/red]"
    first, rate = drain["first_outcome_seconds"], published["per_second"]
    rows = [
        ("published in, s (per second)", f"{published['seconds']:g} ({rate or 0:,.0f})"),
        ("reached their outcome", reached),
        ("first outcome after, s", "—" if first is None else f"{first:g}"),
        ("drain time (first publish → last outcome), s", _seconds(drain["drain_seconds"])),
        ("completed /s over the drain", f"{throughput['completed_per_second']:g}"),
        (
            "completed /s after the first outcome",
            f"{throughput['completed_per_second_after_first'] or '—'}",
        ),
        ("platform CPU per completed request, ms", f"{cpu['total'] or '—'}"),
        (
            "  by process",
            ", ".join(f"{name} {ms:g}" for name, ms in cpu["by_process"].items()) or "—",
        ),
        (
            "governance behind at the end / max, s",
            f"{governance.get('last', '—')} / {governance.get('max', '—')}",
        ),
        (
            "consumer lag when it began, messages",
            ", ".join(f"{group} {lag:g}" for group, lag in drain["consumer_lag_at_start"].items())
            or "—",
        ),
        (
            "÷ Kafka produce→consume",
            _ratio(drain["ratios"]["completed_vs_kafka_produce_consume"]),
        ),
    ]
    for label, value in rows:
        table.add_row(label, value)
    return table


def print_summary(document: dict[str, Any], console: Console) -> None:
    baselines = document["baselines"]
    kafka, postgres = baselines["kafka"], baselines["postgres"]
    base = Table(title="Baselines on the same broker and database")
    base.add_column("baseline")
    base.add_column("per second", justify="right")
    base.add_column("latency ms p50 / p99 / max", justify="right")
    base.add_row(
        "Kafka produce → consume (as fast as it goes)",
        f"{kafka['throughput']['messages_per_second']:,.0f} msgs",
        _ms(kafka["throughput"]["produce_to_consume_ms"]),
    )
    base.add_row(
        f"Kafka paced at {kafka['paced']['rate']:g}/s (due → consumed)",
        f"{kafka['paced']['rate']:g} msgs",
        _ms(kafka["paced"]["due_to_consumed_ms"]),
    )
    single, batched = postgres["one_row_per_transaction"], postgres["batched"]
    base.add_row(
        "PostgreSQL appends, 1 row per transaction",
        f"{single['rows_per_second']:,.0f} rows",
        _ms(single["transaction_ms"]),
    )
    base.add_row(
        f"PostgreSQL appends, {batched['rows_per_transaction']} rows per transaction",
        f"{batched['rows_per_second']:,.0f} rows",
        _ms(batched["transaction_ms"]),
    )
    console.print(base)

    steps = Table(title="The platform, open loop (one column per step; latency ms p50 / p99 / max)")
    steps.add_column("")
    for step in document["steps"]:
        steps.add_column(f"{step['via']} {step['rate']:g}/s", justify="right")
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        (
            "offered / accepted /s",
            lambda s: "{offered_per_second:g} / {accepted_per_second:g}".format(**s["throughput"]),
        ),
        ("completed /s (in window)", lambda s: f"{s['throughput']['completed_per_second']:g}"),
        ("routine completed /s", lambda s: f"{s['throughput']['routine_completed_per_second']:g}"),
        (
            "kept up (drain s)",
            lambda s: (
                ("yes" if s["kept_up"] else "[red]no[/red]") + f" ({_seconds(s['drain_seconds'])})"
            ),
        ),
        ("backlog at window end", lambda s: f"{s['backlog_at_window_end']}"),
        ("submit → accepted", lambda s: _ms(s["stages_ms"]["submit_to_accepted"])),
        (
            "submit → completed (routine)",
            lambda s: _ms(s["stages_ms"]["submit_to_completed_routine"]),
        ),
        (
            "approval requested → completed",
            lambda s: _ms(s["stages_ms"]["approval_requested_to_completed"]),
        ),
        ("escalation → case opened", lambda s: _ms(s["stages_ms"]["escalation_to_case_opened"])),
        (
            "governance behind, s (max)",
            lambda s: f"{s['governance_lag_seconds'].get('governance', {}).get('max', '—')}",
        ),
        ("driver lateness", lambda s: _ms(s["driver_lateness_ms"])),
        (
            "÷ Kafka produce→consume",
            lambda s: _ratio(s["ratios"]["completed_vs_kafka_produce_consume"]),
        ),
        (
            "÷ PG appends, 1 row/txn",
            lambda s: _ratio(s["ratios"]["completed_vs_postgres_single_row_appends"]),
        ),
        (
            "÷ PG appends, batched",
            lambda s: _ratio(s["ratios"]["completed_vs_postgres_batched_appends"]),
        ),
    ]
    for label, cell in rows:
        steps.add_row(label, *(cell(step) for step in document["steps"]))
    console.print(steps)

    drain = document.get("drain")
    if drain is not None:
        console.print(_drain_table(drain))

    cpu = Table(title="CPU % of one core, mean in each step's window (RSS MiB, max)")
    cpu.add_column("process")
    columns = []
    idle = document.get("idle")
    if idle is not None:
        cpu.add_column(f"idle {idle['seconds']:g}s", justify="right")
        columns.append(idle)
    columns.extend(document["steps"])
    for step in document["steps"]:
        cpu.add_column(f"{step['via']} {step['rate']:g}/s", justify="right")
    if drain is not None:
        cpu.add_column(f"drain of {drain['requests']}", justify="right")
        columns.append(drain)
    names = sorted({name for column in columns for name in column["cpu_percent"]})
    for name in names:
        cpu.add_row(name, *(_cpu(column, name) for column in columns))
    console.print(cpu)
    saturation = document["saturation"]
    console.print(
        f"highest rate kept up: {saturation['highest_rate_kept_up']}/s; most completed: "
        f"{saturation['max_completed_per_second']}/s (at {saturation['at_rate']}/s via "
        f"{saturation['via']}); load average {document['machine']['load_average']}"
    )
    profile = document.get("profile")
    if profile and profile.get("hot_frames"):
        console.print(f"py-spy on {profile['service']}: {profile['file']}")
        for frame in profile["hot_frames"]["self"][:8]:
            console.print(f"  {frame['share']:6.1%}  {frame['frame']}")
    elif profile:
        console.print(f"[yellow]py-spy skipped:[/yellow] {profile['skipped']}")
