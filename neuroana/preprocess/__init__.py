"""Stateless preprocessing on DataArrays: binning, smoothing, dF/F, z-scoring, windowing.

Every function takes and returns ``xarray.DataArray`` objects with named dims, keeps coordinates and
attrs, and reads sample spacing from the ``time`` coordinate (seconds).
"""

from neuroana.preprocess.binning import bin_edges, bin_spike_times
from neuroana.preprocess.calcium import dff
from neuroana.preprocess.normalize import zscore
from neuroana.preprocess.smoothing import smooth
from neuroana.preprocess.windows import sliding_windows

__all__ = ["bin_edges", "bin_spike_times", "dff", "sliding_windows", "smooth", "zscore"]
