"""Shared machinery: device and dtype resolution, seeding, and the one fit loop.

Every analysis fits through :func:`fit_loop`, so progress bars, convergence rules, early stopping,
history and checkpoint/resume behave the same everywhere. Names are imported lazily (PEP 562).
"""

from neuroana._lazy import attach

_LAZY = {
    "resolve_device": "neuroana.backend.device",
    "resolve_dtype": "neuroana.backend.device",
    "FitCancelled": "neuroana.backend.fitloop",
    "FitProgress": "neuroana.backend.fitloop",
    "FitResult": "neuroana.backend.fitloop",
    "observe_fits": "neuroana.backend.fitloop",
    "atomic_save": "neuroana.backend.fitloop",
    "fit_loop": "neuroana.backend.fitloop",
    "make_generators": "neuroana.backend.seeding",
    "seeded_default_generator": "neuroana.backend.seeding",
}
__getattr__, __dir__, __all__ = attach(__name__, _LAZY)
