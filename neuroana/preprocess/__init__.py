"""Stateless preprocessing on DataArrays: binning, smoothing, dF/F, z-scoring, windowing.

Every function takes and returns ``xarray.DataArray`` objects with named dims, keeps coordinates and
attrs, and reads sample spacing from the ``time`` coordinate (seconds). Names are imported lazily.
"""

from neuroana._lazy import attach

_LAZY = {
    "bin_edges": "neuroana.preprocess.binning",
    "bin_spike_times": "neuroana.preprocess.binning",
    "dff": "neuroana.preprocess.calcium",
    "zscore": "neuroana.preprocess.normalize",
    "smooth": "neuroana.preprocess.smoothing",
    "sliding_windows": "neuroana.preprocess.windows",
}
__getattr__, __dir__, __all__ = attach(__name__, _LAZY)
