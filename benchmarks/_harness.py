"""Shared timing rules for every script in ``benchmarks/`` (import it before numpy).

What every benchmark does through this module:

* **OpenBLAS environment.** ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` (set on some machines; they
  slow numpy's OpenBLAS) are recorded and removed, and the script re-executes itself without them
  *before numpy is imported*, so numpy runs as users run it. :func:`prepare` does this; it must be
  called before ``import numpy`` (it refuses otherwise).
* **Equal threads.** :func:`set_threads` sets BLAS/OpenMP (threadpoolctl) and torch intra-op threads
  to the same number; the table reports it.
* **Wall clock, repeats, median (min-max).** :func:`time_interleaved` runs the contenders round-robin
  (ours and the anchor alternate, so a load change hits both) and keeps every wall time.
* **Busy machine.** A run whose spread ``(max - min) / median`` exceeds ``--max-spread`` or whose
  1-minute load exceeds the usable cores is flagged ``BUSY``; ``--strict`` makes that an error
  (exit 3). The ``uptime`` line is printed with the machine header.
* **Machine header.** CPU model, usable cores, GPU card, torch / numpy BLAS, the recorded OpenBLAS
  variables: :func:`header`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_RECORD = "NEUROANA_BENCH_OPENBLAS_ENV"
_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def prepare() -> None:
    """Remove the OpenBLAS variables (recording them) and re-exec; call before importing numpy."""
    if "numpy" in sys.modules:
        raise RuntimeError("benchmarks/_harness.prepare() must run before numpy is imported")
    found = {v: os.environ[v] for v in _VARS if v in os.environ}
    if found:
        env = {k: v for k, v in os.environ.items() if k not in _VARS}
        prev = os.environ.get(_RECORD, "")
        env[_RECORD] = ";".join(filter(None, [prev, *(f"{k}={v}" for k, v in found.items())]))
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable, *sys.argv], env)


def recorded_openblas_env() -> str:
    """What :func:`prepare` removed (``"none"`` when nothing was set)."""
    return os.environ.get(_RECORD) or "none"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def set_threads(n: int) -> str:
    """Same thread count for BLAS/OpenMP (threadpoolctl) and torch; returns a description."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)  # for subprocesses started from here
    parts = []
    try:
        from threadpoolctl import threadpool_info, threadpool_limits

        threadpool_limits(n)
        libs = sorted({f"{d['internal_api']}={d['num_threads']}" for d in threadpool_info()})
        parts.append("BLAS/OpenMP " + ",".join(libs))
    except ImportError:
        parts.append("BLAS threads unset (threadpoolctl missing)")
    if "torch" in sys.modules or _importable("torch"):
        import torch

        torch.set_num_threads(n)
        parts.append(f"torch {torch.get_num_threads()}")
    return f"{n} thread(s): " + "; ".join(parts)


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def card() -> str:
    """The CUDA card's name, or ``"no CUDA device"``."""
    if _importable("torch"):
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    return "no CUDA device"


def header(title: str) -> str:
    """Machine description printed at the top of every benchmark."""
    import numpy as np

    lines = [
        f"# {title}",
        f"CPU: {_cpu_model()}, {usable_cores()} usable core(s); GPU: {card()}",
        f"uptime: {_uptime()}",
        f"OpenBLAS variables removed for this run (numpy side as users run it): "
        f"{recorded_openblas_env()}",
        f"numpy {np.__version__}",
    ]
    if _importable("torch"):
        import torch

        lines[-1] += f", torch {torch.__version__}"
    return "\n".join(lines)


@dataclass
class Timing:
    """Wall times of one contender (seconds) and its last result."""

    name: str
    times: list[float] = field(default_factory=list)
    result: Any = None

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def spread(self) -> float:
        return (max(self.times) - min(self.times)) / max(self.median, 1e-12)

    def fmt(self, unit: str = "s", scale: float = 1.0, digits: int = 2) -> str:
        m, lo, hi = (v * scale for v in (self.median, min(self.times), max(self.times)))
        if len(self.times) == 1:
            return f"{m:.{digits}f} {unit} (1 run)"
        return f"{m:.{digits}f} {unit} ({lo:.{digits}f}-{hi:.{digits}f})"


def time_interleaved(
    fns: Mapping[str, Callable[[], Any]],
    repeats: int,
    *,
    sync: Callable[[], None] | None = None,
) -> dict[str, Timing]:
    """Run every contender ``repeats`` times, round-robin; wall clock (``perf_counter``)."""
    out = {name: Timing(name) for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if sync:
                sync()
            t0 = time.perf_counter()
            res = fn()
            if sync:
                sync()
            out[name].times.append(time.perf_counter() - t0)
            out[name].result = res
    return out


def busy_flags(timings: Mapping[str, Timing], max_spread: float) -> list[str]:
    """Reasons to distrust a run: spread above ``max_spread`` or a load above the usable cores."""
    flags = [
        f"{t.name}: spread {t.spread:.0%} > {max_spread:.0%}"
        for t in timings.values()
        if len(t.times) > 1 and t.spread > max_spread
    ]
    load = os.getloadavg()[0]
    if load > usable_cores():
        flags.append(f"1-min load {load:.2f} > {usable_cores()} usable cores")
    return flags


def add_arguments(p: argparse.ArgumentParser, *, repeats: int = 3, threads=(1,)) -> None:
    p.add_argument("--repeats", type=int, default=repeats, help="timed runs per contender")
    p.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=list(threads),
        help="thread counts (BLAS and torch set alike), one table section each",
    )
    p.add_argument(
        "--max-spread",
        type=float,
        default=0.25,
        help="(max - min) / median above which a run is flagged BUSY",
    )
    p.add_argument("--strict", action="store_true", help="exit 3 on a BUSY run instead of flagging")


def report_busy(timings: Mapping[str, Timing], args: argparse.Namespace) -> bool:
    """Print the BUSY flags (if any); exit 3 under ``--strict``. True when the run looked quiet."""
    flags = busy_flags(timings, args.max_spread)
    if not flags:
        return True
    print(f"BUSY: {'; '.join(flags)} -- uptime: {_uptime()}")
    if args.strict:
        print("refusing a run taken on a busy machine (--strict); rerun when it is quiet")
        sys.exit(3)
    return False
