"""The summary-table row shared by the benchmark scripts and ``run_all.py``.

Each benchmark script defines ``parse_rows(stdout) -> list[Row]`` next to the code that prints its
numbers; ``run_all.py`` runs the scripts the analysis registry lists and tabulates their rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NUM = r"(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)"


@dataclass
class Row:
    analysis: str
    measure: str
    anchor: str
    ours: str
    anchor_value: str
    ratio: str
    target: str
    met: str
    threads: str = "-"  # thread count of the measured side (and of the anchor when measured)


def fmt(x: float, unit: str = "", digits: int = 2) -> str:
    return f"{x:.{digits}f}{unit}"


def met(ok: bool) -> str:
    return "yes" if ok else "NO"


def threads_of(text: str) -> str:
    """Thread count from the harness line ``N thread(s): ...`` (first occurrence), else ``-``."""
    m = re.search(r"^(\d+) thread\(s\)", text, flags=re.M)
    return m.group(1) if m else "-"


def search(pattern: str, text: str, what: str) -> re.Match:
    m = re.search(pattern, text, flags=re.M)
    if m is None:
        raise LookupError(f"{what}: not found in the script's output")
    return m
