"""Where a profiled process spent its time, read from py-spy's speedscope file (pure)."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any


def hot_frames(document: dict[str, Any], top: int = 15) -> dict[str, Any]:
    """The frames most often on the CPU (self) and most often on the stack (total), as shares
    of all samples of every thread. py-spy samples only active threads unless told otherwise,
    so idle waiting does not count."""
    frames = document["shared"]["frames"]
    own: Counter[int] = Counter()
    total: Counter[int] = Counter()
    samples = 0
    weights = 0.0
    for profile in document["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            if not stack:
                continue
            samples += 1
            weights += weight
            own[stack[-1]] += weight
            for frame in set(stack):
                total[frame] += weight

    def named(counter: Counter[int]) -> list[dict[str, Any]]:
        return [
            {"frame": _name(frames[index]), "share": round(weight / weights, 4)}
            for index, weight in counter.most_common(top)
        ]

    if not samples:
        return {"samples": 0, "self": [], "total": []}
    return {"samples": samples, "self": named(own), "total": named(total)}


def _name(frame: dict[str, Any]) -> str:
    # The part after site-packages/, the repository's src/ or the standard library's folder
    # names the module; the rest is this machine's layout.
    where = re.sub(r"^.*(site-packages/|/src/|/lib/python3\.\d+/)", "", frame.get("file") or "")
    line = frame.get("line")
    return f"{frame['name']} ({where}:{line})" if line else f"{frame['name']} ({where})"
