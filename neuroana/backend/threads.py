"""How many torch intra-op threads a fit may use.

The rule (one place, so every analysis oversubscribes the same way: never):

1. never more threads than the cores this process may run on (``os.sched_getaffinity``; a
   container or ``taskset`` limit counts, the machine's total does not);
2. never more than the user asked for (``requested``; ``None`` = no wish);
3. one thread for a small problem (fewer than ``min_work_per_thread`` multiply-adds per step and
   thread): thread start-up and synchronisation then cost more than they save, and on a shared,
   busy machine a second thread waits for a core and the whole step waits with it (measured in
   issue 13: 2 threads on a busy 2-core machine trained 15x slower than 1).

:func:`torch_threads` applies the choice for the duration of a ``with`` block and restores the
previous setting afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

MIN_WORK_PER_THREAD = 5e7


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity set; ``os.cpu_count()`` where unknown).

    Examples
    --------
    >>> from neuroana.backend.threads import available_cores
    >>> available_cores() >= 1
    True
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


def choose_threads(
    work: float | None = None,
    requested: int | None = None,
    *,
    min_work_per_thread: float = MIN_WORK_PER_THREAD,
    cores: int | None = None,
) -> int:
    """Number of intra-op threads for a step of ``work`` multiply-adds (the module's rule).

    Parameters
    ----------
    work : float, optional
        Approximate multiply-adds per optimisation step; ``None`` = unknown (large).
    requested : int, optional
        The user's wish; never exceeded.
    min_work_per_thread : float
        Work below which one more thread is not worth starting.
    cores : int, optional
        Cores available (default :func:`available_cores`).

    Returns
    -------
    int
        ``1 <= n <= min(cores, requested)``.

    Examples
    --------
    >>> from neuroana.backend.threads import choose_threads
    >>> choose_threads(1e6, cores=8)
    1
    >>> choose_threads(1e12, cores=8), choose_threads(1e12, requested=2, cores=8)
    (8, 2)
    """
    if requested is not None and int(requested) < 1:
        raise ValueError(f"requested threads must be >= 1, got {requested}")
    n = available_cores() if cores is None else max(1, int(cores))
    if requested is not None:
        n = min(n, int(requested))
    if work is not None:
        n = min(n, max(1, int(work // min_work_per_thread)))
    return max(1, n)


@contextmanager
def torch_threads(n: int) -> Iterator[int]:
    """Set ``torch.set_num_threads(n)`` inside the block; restore the previous value after.

    Examples
    --------
    >>> import torch
    >>> from neuroana.backend.threads import torch_threads
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield int(n)
    finally:
        torch.set_num_threads(old)
