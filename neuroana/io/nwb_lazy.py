"""Lazy HDF5 datasets as dask arrays: each chunk is one contiguous read from a freshly opened file.

The arrays hold only the file path and the dataset name (so they pickle and ship to dask workers);
computing a chunk opens the file read-only, reads one hyper-slab with basic (contiguous) slices and
closes the file again, so no handle stays open. Computing a slice reads only the chunks it
overlaps, each with one contiguous hyper-slab read (chunks span whole frames and are cut along the
stored first axis, aligned to the dataset's HDF5 chunks).
"""

from __future__ import annotations

import numpy as np

from neuroana.io.nwb_file import PathLike, open_h5, scaled

__all__ = ["H5Slab", "lazy_array"]

#: target bytes per dask chunk (whole trailing dims, chunked along the first)
CHUNK_BYTES = 32 * 2**20


class H5Slab:
    """Array-like view of one HDF5 dataset, read on indexing (basic indexing only).

    ``transpose`` reverses the axes (ROI-first traces are given time-first); ``conversion`` and
    ``offset`` scale stored values into the series' unit (then the dtype is float64).
    """

    def __init__(self, path, name, shape, dtype, transpose=False, conversion=1.0, offset=0.0):
        self.path = path
        self.name = name
        self.transpose = bool(transpose)
        self.conversion = float(conversion)
        self.offset = float(offset)
        self.shape = tuple(int(s) for s in (shape[::-1] if transpose else shape))
        self.ndim = len(self.shape)
        self.dtype = (
            np.dtype(dtype) if conversion == 1.0 and offset == 0.0 else np.dtype(np.float64)
        )

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        if any(not isinstance(k, (slice, int, np.integer)) for k in key):
            raise TypeError(f"H5Slab supports basic indexing only (slices and ints), got {key!r}")
        key = key + (slice(None),) * (self.ndim - len(key))
        if self.transpose:
            key = key[::-1]
        with open_h5(self.path) as f:
            arr = np.asarray(f[self.name][key])
        if self.transpose:
            arr = arr.T
        return np.asarray(scaled(arr, self.conversion, self.offset), dtype=self.dtype)


def _chunks(shape: tuple[int, ...], itemsize: int, stored_chunks) -> tuple[int, ...]:
    if not shape:
        return ()
    row = int(np.prod(shape[1:], dtype=np.int64)) * itemsize or 1
    n = max(1, min(shape[0], CHUNK_BYTES // row))
    if stored_chunks and stored_chunks[0] > 0 and n >= stored_chunks[0]:
        n -= n % stored_chunks[0]  # whole HDF5 chunks along the first axis
    return (n, *shape[1:])


def lazy_array(path: PathLike, ds, *, transpose: bool = False, conversion=1.0, offset=0.0):
    """A dask array over the h5py dataset ``ds`` of the file at ``path`` (read on compute).

    Chunks span whole trailing dims and about :data:`CHUNK_BYTES` along the first (stored) axis,
    aligned to the dataset's HDF5 chunks when it has them.
    """
    import dask.array as da

    slab = H5Slab(path, ds.name, ds.shape, ds.dtype, transpose, conversion, offset)
    # chunk along the stored first axis (contiguous on disk), whole other axes
    chunks = _chunks(tuple(ds.shape), slab.dtype.itemsize, ds.chunks)
    if transpose:
        chunks = chunks[::-1]
    return da.from_array(
        slab,
        chunks=chunks,
        name=f"nwb-{ds.name}-{da.core.tokenize(str(path), ds.name, transpose)}",
        asarray=False,
        fancy=False,
        lock=False,
        meta=np.empty((0,) * slab.ndim, dtype=slab.dtype),
    )
