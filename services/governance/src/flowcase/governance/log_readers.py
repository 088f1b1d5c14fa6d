"""Historical logs in, catalogue envelopes out: JSON lines of envelopes and CSV of activities.

Each reader yields, in file order, an `Envelope` for every valid record and a `Rejected` (where
and why) for every invalid one, so nothing is dropped silently and the caller decides whether
to skip and report or stop. Blank lines carry nothing and are passed over.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeAlias

from flowcase.events import Envelope, EventDecodeError, decode_all
from flowcase.governance.activity_log import OPTIONAL_FIELDS, EntryError, entry_of, envelope_of


@dataclass(frozen=True)
class Rejected:
    """An invalid record: where it is (`line 12`, `events[3] (id e-4)`) and why."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


Parsed: TypeAlias = Envelope | Rejected

CSV_REQUIRED = ("timestamp", "activity")
CSV_COLUMNS = CSV_REQUIRED + OPTIONAL_FIELDS
_COLUMNS = f"columns: {', '.join(CSV_COLUMNS)}"


def read_jsonl(lines: Iterable[bytes | str]) -> Iterator[Parsed]:
    """One Flowcase envelope per line, exactly as `flowcase.events.encode` writes it."""
    for number, line in enumerate(lines, start=1):
        data = line.encode() if isinstance(line, str) else line
        if not data.strip():
            continue
        try:
            yield from decode_all(data)
        except EventDecodeError as exc:
            yield Rejected(f"line {number}", f"{exc.reason}: {exc.detail}")


def read_csv(lines: Iterable[str]) -> Iterator[Parsed]:
    """A header row naming columns of `CSV_COLUMNS` (any order; `timestamp` and `activity`
    required), then one activity per row. An unknown column is an error for the whole file:
    its values would otherwise be dropped without a word."""
    reader = csv.reader(iter(lines))
    header = next(reader, None)
    if header is None:
        yield Rejected("line 1", f"the file is empty: a header row comes first ({_COLUMNS})")
        return
    names = [name.strip() for name in header]
    unknown = [name for name in names if name not in CSV_COLUMNS]
    missing = [name for name in CSV_REQUIRED if name not in names]
    if unknown or missing or len(set(names)) != len(names):
        problems = []
        if unknown:
            problems.append(f"unknown column(s) {', '.join(unknown)}")
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if len(set(names)) != len(names):
            problems.append("a column is named twice")
        yield Rejected("line 1", f"{'; '.join(problems)} ({_COLUMNS})")
        return
    rows = 0
    for row in reader:
        where = f"line {reader.line_num}"
        if len(row) > len(names):
            yield Rejected(where, f"{len(row)} values for {len(names)} columns")
            continue
        if all(not value.strip() for value in row):
            continue
        rows += 1
        # A short row leaves its last columns unset: refused like a long one, since which
        # value belongs to which column is no longer certain.
        if len(row) < len(names):
            yield Rejected(where, f"{len(row)} values for {len(names)} columns")
            continue
        try:
            yield envelope_of(entry_of(dict(zip(names, row, strict=True))))
        except EntryError as exc:
            yield Rejected(where, str(exc))
    if rows == 0:
        yield Rejected(f"line {reader.line_num + 1}", "no rows after the header")


def utf8_problem(chunks: Iterable[bytes]) -> Rejected | None:
    """Where a file read in `chunks` stops being UTF-8, or None when all of it is. A CSV is read
    as text: checked first, a file in another encoding is refused whole, before anything is
    stored, rather than failing part way."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    for chunk in chunks:
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            # `exc.object` is the chunk after the bytes of a character the last one began,
            # which hold no newline.
            line += exc.object.count(b"\n", 0, exc.start)
            return Rejected(
                f"line {line}",
                f"not UTF-8 (byte 0x{exc.object[exc.start]:02x}): save the file as UTF-8 and "
                "import it again; nothing was imported",
            )
        line += chunk.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return Rejected(f"line {line}", "not UTF-8 (the file ends inside a character)")
    return None
