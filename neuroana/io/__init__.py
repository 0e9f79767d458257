"""Input and output: NWB readers into xarray, atomic result writers, data manifests.

This is the only subpackage that imports pynwb, h5py, zarr and the streaming packages.
"""

from neuroana.io.errors import NWBError, NWBWarning, StreamingUnavailableError
from neuroana.io.fisbe import read_fisbe, write_fisbe
from neuroana.io.nwb import (
    list_contents,
    open_nwb,
    read_behavior,
    read_intervals,
    read_roi_masks,
    read_roi_traces,
    read_spike_counts,
    read_spike_times,
)
from neuroana.io.nwb_images import read_images
from neuroana.io.nwb_write import write_session_nwb
from neuroana.io.results import write_json_atomic, write_netcdf_atomic, write_zarr_atomic

__all__ = [
    "NWBError",
    "NWBWarning",
    "StreamingUnavailableError",
    "list_contents",
    "open_nwb",
    "read_behavior",
    "read_fisbe",
    "read_images",
    "read_intervals",
    "read_roi_masks",
    "read_roi_traces",
    "read_spike_counts",
    "read_spike_times",
    "write_fisbe",
    "write_json_atomic",
    "write_netcdf_atomic",
    "write_session_nwb",
    "write_zarr_atomic",
]
