"""Input and output: NWB readers into xarray, atomic result writers, data manifests.

This is the only subpackage that imports pynwb, h5py, zarr and the streaming packages. Names are
imported lazily (PEP 562), so ``import neuroana.io`` is cheap and never imports torch.
"""

from neuroana._lazy import attach

_LAZY = {
    "NWBError": "neuroana.io.errors",
    "NWBWarning": "neuroana.io.errors",
    "StreamingUnavailableError": "neuroana.io.errors",
    "read_fisbe": "neuroana.io.fisbe",
    "write_fisbe": "neuroana.io.fisbe",
    "contents_rows": "neuroana.io.nwb_contents",
    "list_contents": "neuroana.io.nwb_contents",
    "open_nwb": "neuroana.io.nwb_tree",
    "read_intervals": "neuroana.io.nwb_intervals",
    "read_roi_masks": "neuroana.io.nwb_ophys",
    "read_roi_traces": "neuroana.io.nwb_ophys",
    "read_behavior": "neuroana.io.nwb_series",
    "read_spike_counts": "neuroana.io.nwb_units",
    "read_spike_times": "neuroana.io.nwb_units",
    "read_images": "neuroana.io.nwb_images",
    "write_session_nwb": "neuroana.io.nwb_write",
    "write_json_atomic": "neuroana.io.results",
    "write_netcdf_atomic": "neuroana.io.results",
    "write_zarr_atomic": "neuroana.io.results",
    "atomic_dir": "neuroana.io.atomic",
    "atomic_path": "neuroana.io.atomic",
    "read_benucci": "neuroana.io.benucci",
    "fetch": "neuroana.io.download",
    "list_manifests": "neuroana.io.manifests",
    "load_manifest": "neuroana.io.manifests",
}
__getattr__, __dir__, __all__ = attach(__name__, _LAZY)
