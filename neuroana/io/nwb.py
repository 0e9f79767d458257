"""NWB into xarray: the public readers of :mod:`neuroana.io`, gathered in one place.

All readers open the file read-only (local path, or ``http(s)://`` / ``s3://`` through the
``stream`` extra), read only what they return, close it before returning, and raise
:class:`~neuroana.io.NWBError` naming the file and the problem.

The implementation is split by purpose: :mod:`.nwb_file` (opening, HDF5 helpers),
:mod:`.nwb_units` (spikes), :mod:`.nwb_intervals` (epochs, trials), :mod:`.nwb_ophys` (ROI traces
and masks), :mod:`.nwb_series` (behaviour), :mod:`.nwb_tree` (``open_nwb``), :mod:`.nwb_contents` (``list_contents``).
"""

from neuroana.io.errors import NWBError, NWBWarning, StreamingUnavailableError
from neuroana.io.nwb_contents import list_contents
from neuroana.io.nwb_intervals import read_intervals
from neuroana.io.nwb_ophys import read_roi_masks, read_roi_traces
from neuroana.io.nwb_series import read_behavior
from neuroana.io.nwb_tree import open_nwb
from neuroana.io.nwb_units import read_spike_counts, read_spike_times

__all__ = [
    "NWBError",
    "NWBWarning",
    "StreamingUnavailableError",
    "list_contents",
    "open_nwb",
    "read_behavior",
    "read_intervals",
    "read_roi_masks",
    "read_roi_traces",
    "read_spike_counts",
    "read_spike_times",
]
