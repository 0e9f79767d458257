"""Shared machinery: device and dtype resolution, seeding, and the one fit loop.

Every analysis fits through :func:`fit_loop`, so progress bars, convergence rules, early stopping,
history and checkpoint/resume behave the same everywhere.
"""

from neuroana.backend.device import resolve_device, resolve_dtype
from neuroana.backend.fitloop import (
    FitCancelled,
    FitProgress,
    FitResult,
    atomic_save,
    fit_loop,
    observe_fits,
)
from neuroana.backend.seeding import make_generators

__all__ = [
    "FitCancelled",
    "FitProgress",
    "FitResult",
    "atomic_save",
    "fit_loop",
    "make_generators",
    "observe_fits",
    "resolve_device",
    "resolve_dtype",
]
