"""Flowcase's benchmark harness.

`flowcase bench` drives the whole platform open-loop on a stack of its own, next to the raw
Kafka and PostgreSQL baselines that bound it on the same machine. The pure parts (the schedule,
the mix, histograms, stage summaries, ratios, the results document) have no I/O; the adapters
(Kafka readers and writers, HTTP submitters, process sampling, py-spy) are named for what they
adapt. `flowcase.bench.scratch`, `.machine` and `.results` also serve the per-service scripts
under `benchmarks/`.
"""
