"""Sparse instance representation of FISBe label arrays, following the official pre-processing.

The official evaluation (``evalinstseg``) turns a ``(C, Z, Y, X)`` label array into instances by:
(prediction only) zeroing every *value* whose voxel count over the whole array is ``<= 800``;
dropping empty channels (unless there is one channel); giving binary channels the id ``i + 1``;
relabelling each channel sequentially with an offset that runs across channels, so the same value
in two channels becomes two instances. Here the same result is built from the non-zero voxels of
each channel only: no relabelled copy of the volume, no per-instance full-volume mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuroana.segmentation.errors import FisbeInputError

__all__ = ["Instances", "as_label_channels", "build_instances"]


@dataclass(frozen=True)
class Instances:
    """Instances of one side (GT or prediction) after the official pre-processing.

    Instance ``k`` (0-based) has the official id ``k + 1``.
    """

    shape: tuple[int, int, int]
    channels: tuple[np.ndarray, ...]  # kept channels, original 3-D arrays (not copied)
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
    if arr.shape[0] == 0 or 0 in arr.shape[1:]:
        raise FisbeInputError(f"{name} has shape {arr.shape}; expected a non-empty volume")
    if np.issubdtype(arr.dtype, np.signedinteger):
        mn = min(int(ch.min()) for ch in arr)
        if mn < 0:
            raise FisbeInputError(
                f"{name} contains the negative id {mn}; expected ids >= 0 (0 = background)"
            )
    return arr


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


def build_instances(arr: np.ndarray, min_size: int | None) -> Instances:
    """Official pre-processing of one side; ``min_size`` = size filter (``<=``), None for GT."""
    shape = tuple(int(s) for s in arr.shape[1:])
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
    """Per instance, the voxels that another instance of the same side also holds."""
    if len(flats) < 2:
        return tuple(f[:0] for f in flats)
    dtype = np.uint8 if len(flats) < 255 else np.uint16
    count = np.zeros(size, dtype=dtype)  # calloc: only pages touched by foreground are mapped
    for f in flats:
        count[f] += 1  # indices are unique within one instance
    out = tuple(f[count[f] > 1] for f in flats)
    del count
    return out
