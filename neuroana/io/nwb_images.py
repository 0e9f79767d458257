"""Images and imaging series stored in an NWB file, as DataArrays (for viewers and figures)."""

from __future__ import annotations

import xarray as xr

from neuroana.io.nwb_file import PathLike, attr_str, file_label, open_h5, series_times, walk
from neuroana.io.nwb_lazy import lazy_array

IMAGE_TYPES = ("GrayscaleImage", "RGBImage", "RGBAImage", "Image")
SERIES_TYPES = ("TwoPhotonSeries", "OnePhotonSeries", "ImageSeries", "ImageMaskSeries")


def read_images(path: PathLike) -> dict[str, xr.DataArray]:
    """Every still image and every imaging series with frames in the file.

    Still images (``GrayscaleImage``, ``RGBImage``... e.g. suite2p's mean image) come back with dims
    ``("y", "x")`` or ``("y", "x", "channel")``; imaging series with frames stored in the file
    (``TwoPhotonSeries``, ``OnePhotonSeries``, ``ImageSeries``) with dims ``("time", "y", "x")``
    and a ``time`` coordinate in seconds. Series whose frames live in an external file (zero-sized
    ``data``) are skipped. Keys are the objects' paths in the file. The data are lazy dask arrays: nothing is read until
    computed, and a slice (``images[key][100:200]``) reads only the chunks of frames it overlaps,
    one contiguous read per chunk (each read opens the file read-only and closes it).

    Parameters
    ----------
    path : str or path-like
        The NWB file (opened read-only).

    Returns
    -------
    dict of str to xarray.DataArray

    Examples
    --------
    >>> from neuroana.io import read_images
    >>> images = read_images("session.nwb")  # doctest: +SKIP
    >>> images["/processing/ophys/Backgrounds_0/meanImg"].dims  # doctest: +SKIP
    ('y', 'x')
    """
    label = file_label(path)
    out: dict[str, xr.DataArray] = {}
    with open_h5(path) as f:
        for obj_path, obj in walk(f):
            kind = attr_str(obj.attrs, "neurodata_type")
            attrs = {"source_file": label, "neurodata_type": kind, "path": obj_path}
            if kind in IMAGE_TYPES and obj.ndim in (2, 3):
                dims = ("y", "x") if obj.ndim == 2 else ("y", "x", "channel")
                out[obj_path] = xr.DataArray(lazy_array(path, obj), dims=dims, attrs=attrs)
            elif kind in SERIES_TYPES and "data" in obj:
                data = obj["data"]
                if data.size == 0 or data.ndim != 3:
                    continue
                times = series_times(obj, data.shape[0], label)
                out[obj_path] = xr.DataArray(
                    lazy_array(path, data),
                    dims=("time", "y", "x"),
                    coords={"time": times},
                    attrs=attrs,
                )
    return out
