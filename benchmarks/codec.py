"""Decoding and encoding envelopes: microseconds per message, for every catalogued event type.

    uv run python benchmarks/codec.py [--rounds 2000]

Side by side in one process: `decode` (pydantic's core validates an envelope of the payload's own
type straight from the bytes) against the general way it replaced (`json.loads`, then
`Envelope.model_validate`, which reads `event_type` to pick the payload model), and `encode`.
The messages are the catalogue's published examples, one of each type. Results go to
benchmarks/results/codec-<date>.json. Nothing here is asserted: it measures.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from microbench import microseconds_each, write_results

from flowcase.events import Envelope, decode, encode
from flowcase.events.catalogue.base import example_payloads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    rounds = parser.parse_args().rounds
    envelopes = [
        Envelope.wrap(p, source="bench", request_id=getattr(p, "request_id", None))
        for p in example_payloads()
    ]
    data = [encode(e) for e in envelopes]
    n = len(data)
    figures = {
        "decode (pydantic core, from bytes)": microseconds_each(
            lambda: [decode(d) for d in data], rounds, n
        ),
        "json.loads + Envelope.model_validate": microseconds_each(
            lambda: [Envelope.model_validate(json.loads(d)) for d in data], rounds, n
        ),
        "encode": microseconds_each(lambda: [encode(e) for e in envelopes], rounds, n),
    }
    for name, us in figures.items():
        print(f"{name:40} {us:6.2f} µs per message")
    write_results(
        "codec",
        datetime.now(UTC),
        messages=n,
        rounds=rounds,
        microseconds_per_message=figures,
    )


if __name__ == "__main__":
    main()
