"""Sparse instance representation of FISBe label arrays, following the official pre-processing.

The official evaluation (``evalinstseg``) turns a ``(C, Z, Y, X)`` label array into instances by:
(prediction only) zeroing every *value* whose voxel count over the whole array is ``<= 800``;
dropping empty channels (unless there is one channel); giving binary channels the id ``i + 1``;
relabelling each channel sequentially with an offset that runs across channels, so the same value
in two channels becomes two instances. Here the same result is built from the non-zero voxels of
each channel only: no relabelled copy of the volume, no per-instance full-volume mask.

Lazy inputs (zarr, dask, h5py arrays, numpy memmaps, dask-backed DataArrays) are read one channel
at a time: only that channel is dense in memory while its non-zero voxels are extracted, and later
look-ups go through :class:`SparseChannel`, so peak memory is one channel plus the sparse data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuroana.segmentation.errors import FisbeInputError

__all__ = [
    "Instances",
    "LazyChannels",
    "SparseChannel",
    "as_label_channels",
    "build_instances",
    "is_lazy",
]


@dataclass(frozen=True)
class Instances:
    """Instances of one side (GT or prediction) after the official pre-processing.

    Instance ``k`` (0-based) has the official id ``k + 1``.
    """

    shape: tuple[int, int, int]
    channels: tuple  # kept channels: original 3-D arrays (not copied) or SparseChannel
    tables: tuple[tuple[np.ndarray, np.ndarray], ...]  # per channel: sorted raw values, new ids
    channel_of: np.ndarray  # (n,) kept-channel index of each instance
    flat: tuple[np.ndarray, ...]  # (n,) sorted flat voxel indices of each instance
    overlap_voxels: tuple[np.ndarray, ...]  # per instance: flat indices shared with another one
    fw_values: np.ndarray  # raw (post-binary) values in first-seen order, for dim_neurons
    fw_ids: np.ndarray  # their new ids

    @property
    def n(self) -> int:
        return len(self.flat)

    @property
    def has_overlap(self) -> bool:
        return any(len(v) for v in self.overlap_voxels)

    def ids_at(self, coords: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        """New instance ids at voxels ``coords``: array ``(n_channels, n_voxels)``, 0 = none."""
        out = np.zeros((len(self.channels), len(coords[0])), dtype=np.int64)
        if len(coords[0]) == 0:
            return out
        for c, (chan, (vals, ids)) in enumerate(zip(self.channels, self.tables, strict=True)):
            if len(vals) == 0:
                continue
            raw = chan[coords]
            pos = np.searchsorted(vals, raw)
            pos_c = np.minimum(pos, len(vals) - 1)
            hit = vals[pos_c] == raw
            out[c] = np.where(hit, ids[pos_c], 0)
        return out


def as_label_channels(labels, name: str) -> np.ndarray:
    """Validate a label array and return it as ``(C, Z, Y, X)`` (a view when possible)."""
    if hasattr(labels, "dims") and hasattr(labels, "values"):  # xarray.DataArray
        dims = tuple(labels.dims)
        if dims[-3:] == ("z", "y", "x") and len(dims) == 4:
            labels = labels.values
        elif dims == ("z", "y", "x"):
            labels = labels.values
        else:
            raise FisbeInputError(
                f"{name} has dims {dims}; expected ('instance'|'channel', 'z', 'y', 'x') "
                "or ('z', 'y', 'x')"
            )
    arr = np.asarray(labels)
    if arr.dtype == bool:
        arr = arr.view(np.uint8)
    if not np.issubdtype(arr.dtype, np.integer):
        raise FisbeInputError(
            f"{name} has dtype {arr.dtype}; expected integer instance ids "
            "(uint8/uint16/uint32/int...), not floating point or other types"
        )
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4:
        raise FisbeInputError(
            f"{name} has shape {arr.shape}; expected (Z, Y, X) or (C, Z, Y, X) with 3 spatial axes"
        )
    if 0 in arr.shape[1:]:
        raise FisbeInputError(f"{name} has shape {arr.shape}; expected a non-empty volume")
    if arr.shape[0] == 0:  # no channels = no instances: the same as one empty channel
        arr = np.zeros((1, *arr.shape[1:]), dtype=arr.dtype)
    if np.issubdtype(arr.dtype, np.signedinteger):
        mn = min(int(ch.min()) for ch in arr)
        if mn < 0:
            raise FisbeInputError(
                f"{name} contains the negative id {mn}; expected ids >= 0 (0 = background)"
            )
    return arr


class SparseChannel:
    """One channel kept as its sorted non-zero flat indices and values; ``chan[coords]`` works."""

    def __init__(self, idx: np.ndarray, vals: np.ndarray, shape: tuple[int, int, int]) -> None:
        self.idx, self.vals, self.shape = idx, vals, shape

    def __getitem__(self, coords: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        flat = np.ravel_multi_index(coords, self.shape)
        out = np.zeros(len(flat), dtype=self.vals.dtype)
        if len(self.idx) == 0:
            return out
        pos = np.minimum(np.searchsorted(self.idx, flat), len(self.idx) - 1)
        hit = self.idx[pos] == flat
        out[hit] = self.vals[pos[hit]]
        return out


def is_lazy(labels) -> bool:
    """True for inputs read channel by channel (anything array-like but an in-memory ndarray)."""
    if hasattr(labels, "dims") and hasattr(labels, "variable"):  # xarray.DataArray
        labels = labels.variable._data
        return not isinstance(labels, np.ndarray) or isinstance(labels, np.memmap)
    if isinstance(labels, np.memmap):
        return True
    if isinstance(labels, np.ndarray):
        return False
    return all(hasattr(labels, a) for a in ("shape", "dtype", "__getitem__"))


class LazyChannels:
    """A validated ``(C, Z, Y, X)`` label array that is only read one channel at a time."""

    def __init__(self, labels, name: str) -> None:
        if hasattr(labels, "dims") and hasattr(labels, "variable"):
            dims = tuple(labels.dims)
            if not (dims == ("z", "y", "x") or (len(dims) == 4 and dims[-3:] == ("z", "y", "x"))):
                raise FisbeInputError(
                    f"{name} has dims {dims}; expected ('instance'|'channel', 'z', 'y', 'x') "
                    "or ('z', 'y', 'x')"
                )
            labels = labels.data
        dtype = np.dtype(labels.dtype)
        if dtype.kind != "b" and not np.issubdtype(dtype, np.integer):
            raise FisbeInputError(
                f"{name} has dtype {dtype}; expected integer instance ids "
                "(uint8/uint16/uint32/int...), not floating point or other types"
            )
        shape = tuple(int(s) for s in labels.shape)
        if len(shape) == 3:
            shape = (1,) + shape
        elif len(shape) != 4:
            raise FisbeInputError(
                f"{name} has shape {shape}; expected (Z, Y, X) or (C, Z, Y, X) with 3 spatial axes"
            )
        if shape[0] == 0 or 0 in shape[1:]:
            raise FisbeInputError(f"{name} has shape {shape}; expected a non-empty volume")
        self.data, self.name, self.shape, self.dtype = labels, name, shape, dtype
        self._three_d = len(labels.shape) == 3

    def nonzero(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        """Sorted flat indices and values of the non-zero voxels of channel ``c``.

        Uses the source's ``channel_nonzero(c)`` when it has one (e.g. a FISBe zarr reading only
        its stored chunks), else reads the dense channel and scans it.
        """
        get = getattr(self.data, "channel_nonzero", None)
        out = get(c) if get is not None and not self._three_d else None
        if out is None:
            chan = self.read(c)
            return _nonzero(chan)
        idx, vals = out
        if vals.dtype.kind == "b":
            vals = vals.view(np.uint8)
        if np.issubdtype(vals.dtype, np.signedinteger) and len(vals) and vals.min() < 0:
            raise FisbeInputError(
                f"{self.name} contains the negative id {int(vals.min())} (channel {c}); "
                "expected ids >= 0 (0 = background)"
            )
        return idx, vals

    def read(self, c: int) -> np.ndarray:
        """Channel ``c`` as an in-memory ``(Z, Y, X)`` array (validated: no negative id)."""
        part = self.data[...] if self._three_d else self.data[c]
        if hasattr(part, "compute"):  # dask
            part = part.compute()
        chan = np.array(part, copy=True) if isinstance(part, np.memmap) else np.asarray(part)
        chan = np.ascontiguousarray(chan)
        if chan.dtype == bool:
            chan = chan.view(np.uint8)
        if np.issubdtype(chan.dtype, np.signedinteger) and chan.size:
            mn = int(chan.min())
            if mn < 0:
                raise FisbeInputError(
                    f"{self.name} contains the negative id {mn} (channel {c}); expected ids >= 0 "
                    "(0 = background)"
                )
        return chan


def _nonzero(chan: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices and values of the non-zero voxels of one channel.

    Sparse volumes are scanned 8 bytes at a time (a uint64 view), then only the non-zero words
    are expanded: several times faster than ``np.flatnonzero`` on uint8/uint16 labels.
    """
    flat = chan.reshape(-1)
    k = 8 // flat.itemsize if flat.itemsize in (1, 2, 4) else 0
    if k and flat.flags.c_contiguous and flat.size >= 64:
        n = flat.size // k * k
        words = np.flatnonzero(flat[:n].view(np.uint64))
        cand = (words[:, None] * k + np.arange(k)).reshape(-1)
        idx = np.concatenate([cand[flat[cand] != 0], np.flatnonzero(flat[n:]) + n])
    else:
        idx = np.flatnonzero(flat)
    return idx, flat[idx]


def _value_counts(vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(vals) == 0:
        return vals[:0], np.zeros(0, dtype=np.int64)
    vmax = int(vals.max())
    if vmax < 4 * len(vals) + 65536:
        cnt = np.bincount(vals, minlength=vmax + 1)
        u = np.flatnonzero(cnt)
        return u.astype(vals.dtype), cnt[u]
    return np.unique(vals, return_counts=True)


def build_instances(arr: np.ndarray | LazyChannels, min_size: int | None) -> Instances:
    """Official pre-processing of one side; ``min_size`` = size filter (``<=``), None for GT.

    ``arr`` is an in-memory ``(C, Z, Y, X)`` array (kept and indexed directly) or a
    :class:`LazyChannels` (read one channel at a time; only sparse data are kept).
    """
    shape = tuple(int(s) for s in arr.shape[1:])
    lazy = isinstance(arr, LazyChannels)
    if lazy:
        nz = [arr.nonzero(c) for c in range(arr.shape[0])]  # one channel in memory at a time
    else:
        nz = [_nonzero(arr[c]) for c in range(arr.shape[0])]

    if min_size is not None and min_size > 0:
        per = [_value_counts(v) for _, v in nz]
        allv = np.concatenate([u for u, _ in per]) if per else np.zeros(0)
        allc = np.concatenate([c for _, c in per]) if per else np.zeros(0)
        if len(allv):
            u, inv = np.unique(allv, return_inverse=True)
            tot = np.bincount(inv, weights=allc).astype(np.int64)
            small = u[tot <= min_size]
            if len(small):
                nz = [
                    (i[~np.isin(v, small)], v[~np.isin(v, small)]) if len(v) else (i, v)
                    for i, v in nz
                ]

    keep = list(range(len(nz)))
    if len(nz) > 1:
        keep = [c for c in keep if len(nz[c][0])]
    if not keep:  # official code fails here (max of an empty array); treat as no instances
        keep = [0]
        nz = [(nz[0][0][:0], nz[0][1][:0])]
    vmax = max((int(nz[c][1].max()) for c in keep if len(nz[c][1])), default=0)
    binary = vmax == 1

    channels, tables, channel_of, flats = [], [], [], []
    fw_values, fw_ids = [], []
    offset = 1
    for k, c in enumerate(keep):
        idx, vals = nz[c]
        if lazy:
            channels.append(SparseChannel(idx, vals, shape))
        else:
            channels.append(arr[c] if c < arr.shape[0] else arr[0])
        if len(vals) == 0:
            tables.append((vals[:0], np.zeros(0, dtype=np.int64)))
            offset = 1
            continue
        u, inv = np.unique(vals, return_inverse=True)
        ids = np.arange(offset, offset + len(u), dtype=np.int64)
        tables.append((u, ids))
        post = (u.astype(np.int64) * (k + 1)) if binary else u.astype(np.int64)
        for pv, nid in zip(post, ids, strict=True):
            if pv not in fw_values:
                fw_values.append(int(pv))
                fw_ids.append(int(nid))
        if len(u) == 1:
            groups = [idx]
        else:
            order = np.argsort(inv, kind="stable")
            bounds = np.cumsum(np.bincount(inv, minlength=len(u)))[:-1]
            groups = np.split(idx[order], bounds)
        flats.extend(groups)
        channel_of.extend([k] * len(u))
        offset = int(ids[-1]) + 1

    overlap = _overlap_voxels(flats, int(np.prod(shape)))
    return Instances(
        shape=shape,
        channels=tuple(channels),
        tables=tuple(tables),
        channel_of=np.asarray(channel_of, dtype=np.int64),
        flat=tuple(flats),
        overlap_voxels=overlap,
        fw_values=np.asarray(fw_values, dtype=np.int64),
        fw_ids=np.asarray(fw_ids, dtype=np.int64),
    )


def _overlap_voxels(flats: list[np.ndarray], size: int) -> tuple[np.ndarray, ...]:
    """Per instance, the voxels that another instance of the same side also holds.

    Works on the foreground voxels only (indices are unique within one instance, so a voxel
    seen twice in the concatenation is shared); ``size`` is kept for the signature.
    """
    if len(flats) < 2:
        return tuple(f[:0] for f in flats)
    allf = np.sort(np.concatenate(flats))
    shared = np.unique(allf[1:][allf[1:] == allf[:-1]])
    if len(shared) == 0:
        return tuple(f[:0] for f in flats)
    return tuple(f[np.isin(f, shared)] for f in flats)
