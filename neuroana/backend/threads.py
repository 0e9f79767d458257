"""Thread rule for CPU fits: how many torch intra-op threads a fit may use.

The rule (used by every HMM-GLM fit and scoring call):

1. never more threads than the cores this process may run on (``len(os.sched_getaffinity(0))``,
   which honours ``taskset``, cgroups' cpusets and job schedulers), nor more than torch's current
   setting (so ``torch.set_num_threads(1)`` by the user is respected);
2. one thread when the work per iteration is small (below ``small`` multiply-adds): the kernels are
   then too short to share between threads, and on a busy machine OpenMP's barriers wait on threads
   that are descheduled, which made 2-thread HMM-GLM fits up to 10x slower than 1-thread fits;
3. one thread on a saturated machine (1-minute load average >= the usable cores), for the same
   reason: a 2-thread NTF fit on a saturated 2-core machine took 3-6x the CPU time of a 1-thread fit;
4. the previous setting is restored when the fit ends, also on error.

Examples
--------
>>> import torch
>>> from neuroana.backend.threads import fit_threads, limit_threads
>>> fit_threads(1000)
1
>>> before = torch.get_num_threads()
>>> with limit_threads(1):
...     torch.get_num_threads()
1
>>> torch.get_num_threads() == before
True
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from neuroana.backend.cores import usable_cores

__all__ = ["SMALL_WORK", "fit_threads", "limit_threads", "machine_busy", "usable_cores"]

#: below this many multiply-adds per iteration a fit runs on one thread
SMALL_WORK = 1 << 28


def fit_threads(
    work_size: float | None, small: float = SMALL_WORK, requested: int | None = None
) -> int:
    """Intra-op threads for a CPU fit doing about ``work_size`` multiply-adds per iteration.

    1 below ``small`` or when the machine is saturated (:func:`machine_busy`); otherwise
    ``min(torch.get_num_threads(), usable_cores())``. The NTF passes its own ``small`` (its
    kernels are memory-bound and share well at smaller sizes). ``work_size=None`` means unknown (large); ``requested`` (the user's wish, e.g. an estimator's
    ``n_threads``) is never exceeded.
    """
    if requested is not None and int(requested) < 1:
        raise ValueError(f"requested threads must be >= 1, got {requested}")
    if (work_size is not None and work_size < small) or machine_busy():
        return 1
    n = max(1, min(torch.get_num_threads(), usable_cores()))
    return n if requested is None else min(n, int(requested))


def machine_busy() -> bool:
    """True when the 1-minute load average is at least the usable cores (read at call time)."""
    try:
        return os.getloadavg()[0] >= usable_cores()
    except OSError:  # unavailable
        return False


@contextlib.contextmanager
def limit_threads(n: int) -> Iterator[int]:
    """Run the block with ``n`` torch intra-op threads (capped at :func:`usable_cores`), then restore
    the previous setting. Yields the number set."""
    before = torch.get_num_threads()
    n = max(1, min(int(n), usable_cores()))
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
