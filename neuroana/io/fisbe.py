"""FISBe samples (zarr v2 directories) as xarray, and an atomic writer in the same layout.

A FISBe sample (Mais et al., CVPR 2024; Zenodo 10.5281/zenodo.10875063, CC BY 4.0) is a zarr v2
directory with ``volumes/raw`` (3, Z, Y, X) uint16 and ``volumes/gt_instances`` (N, Z, Y, X)
uint8, one neuron per channel, and no ``_ARRAY_DIMENSIONS`` attributes (so ``xr.open_zarr``
cannot read it). Voxels are isotropic 0.44 um unless the arrays carry a voxel size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from neuroana.errors import FisbeInputError
from neuroana.io.atomic import atomic_dir

__all__ = [
    "FisbeLabelArray",
    "bundled_splits",
    "open_fisbe_labels",
    "read_fisbe",
    "read_split_file",
    "write_fisbe",
]

RAW_KEY = "volumes/raw"
GT_KEY = "volumes/gt_instances"
PRED_KEY = "volumes/pred_instances"
DEFAULT_VOXEL_UM = 0.44
_VOXEL_KEYS = ("voxel_size", "resolution", "voxel_size_um", "spacing")


def read_split_file(path) -> dict[str, tuple[str, str]]:
    """Parse an official split list: ``{sample: (labeling, split)}``.

    The format (``assets/sample_list_per_split.txt`` of evalinstseg) has a header
    ``(1) samples for FlyLight completely:`` then ``(2) samples for FlyLight partly:``, each with
    ``train:``/``val:``/``test:`` sub-headers followed by one sample name per line.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "s.txt")
    >>> _ = open(p, "w").write("(1) samples for FlyLight completely:\\ntest:\\nA\\n"
    ...                        "(2) samples for FlyLight partly:\\ntrain:\\nB\\n")
    >>> read_split_file(p)
    {'A': ('completely', 'test'), 'B': ('partly', 'train')}
    """
    out: dict[str, tuple[str, str]] = {}
    labeling, split = None, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if "samples for FlyLight completely" in line:
                labeling = "completely"
            elif "samples for FlyLight partly" in line:
                labeling = "partly"
            elif line.endswith(":") and line[:-1] in ("train", "val", "test"):
                split = line[:-1]
            else:
                if labeling is None:
                    raise FisbeInputError(
                        f"split file {path}: sample {line!r} before any "
                        "'(1) samples for FlyLight completely:' header"
                    )
                out[line.removesuffix(".zarr")] = (labeling, split or "unknown")
    return out


def bundled_splits() -> dict[str, tuple[str, str]]:
    """The FISBe release's 101 samples: ``{sample: (labeling, split)}``, bundled with neuroana.

    Taken from the benchmark's own split list (30 completely labelled: 18 train, 5 val, 7 test;
    71 partly labelled: 43 train, 12 val, 16 test).

    Examples
    --------
    >>> from neuroana.io.fisbe import bundled_splits
    >>> bundled_splits()["R14A02-20180905_65_A6"]
    ('completely', 'test')
    """
    import csv
    from importlib.resources import files

    text = files("neuroana.io").joinpath("fisbe_splits.csv").read_text()
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return {r["sample"]: (r["labeling"], r["split"]) for r in rows}


def sample_name(path) -> str:
    """Sample name of a FISBe path: the base name up to the first '.' (the official rule)."""
    return Path(str(path).rstrip("/")).name.split(".")[0]


def _open_group(path):
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"FISBe sample {path} does not exist")
    try:
        return zarr.open_group(str(p), mode="r")
    except Exception as e:  # zarr raises several types for a non-zarr directory
        raise FisbeInputError(f"{path} is not a zarr group ({e}); expected a FISBe .zarr") from e


def _get(group, key, path):
    try:
        arr = group[key]
    except KeyError:
        arr = None
    if arr is None or not hasattr(arr, "shape"):
        present = sorted(_walk_keys(group))
        raise FisbeInputError(
            f"{path} has no array {key!r}; arrays present: {present or 'none'}; expected "
            f"{RAW_KEY!r} (3, Z, Y, X) uint16 and/or {GT_KEY!r} (N, Z, Y, X) uint8"
        )
    return arr


def _walk_keys(group, prefix=""):
    for k in group.array_keys():
        yield prefix + k
    for k in group.group_keys():
        yield from _walk_keys(group[k], prefix + k + "/")


def _voxel_size(arrays) -> tuple[tuple[float, float, float], str]:
    for a in arrays:
        for k in _VOXEL_KEYS:
            if k in a.attrs:
                v = np.atleast_1d(np.asarray(a.attrs[k], dtype=float))[-3:]
                if len(v) == 1:
                    v = np.repeat(v, 3)
                return tuple(float(x) for x in v), f"attribute {k!r}"
    return (DEFAULT_VOXEL_UM,) * 3, "FISBe documentation (0.44 um isotropic)"


def _lazy(a):
    try:
        import dask.array as da

        return da.from_zarr(a)
    except ImportError:  # pragma: no cover - dask is a dependency in practice
        return np.asarray(a[...])


def read_fisbe(path, split_file=None, pred_key: str = PRED_KEY) -> xr.Dataset:
    """Open one FISBe sample lazily as an :class:`xarray.Dataset`.

    Parameters
    ----------
    path : str or Path
        A ``<sample>.zarr`` directory (opened read-only).
    split_file : str or Path, optional
        Official split list naming completely/partly labelled samples; sets ``attrs["labeling"]``
        and ``attrs["split"]`` (``"unknown"`` when the sample is not listed). Default: the
        bundled list of the 101 FISBe samples (:func:`bundled_splits`).
    pred_key : str
        Key of a prediction array, read as ``pred`` when present.

    Returns
    -------
    xarray.Dataset
        ``raw ("channel", "z", "y", "x")`` and/or ``gt ("instance", "z", "y", "x")`` (and ``pred``
        ``("pred_channel", "z", "y", "x")`` when present), dask-backed; ``z, y, x`` in micrometres;
        attrs ``sample``, ``labeling``, ``split``, ``voxel_size_um``, ``voxel_size_source``,
        ``dim_neurons``, ``license``, ``citation``.

    Raises
    ------
    FisbeInputError
        The directory is not a zarr group, or has neither ``volumes/raw`` nor
        ``volumes/gt_instances``, or an array has the wrong number of axes.

    Examples
    --------
    >>> import tempfile, os, numpy as np
    >>> p = os.path.join(tempfile.mkdtemp(), "S1.zarr")
    >>> write_fisbe(p, gt=np.ones((1, 2, 3, 4), np.uint8))
    >>> ds = read_fisbe(p)
    >>> ds.gt.dims, float(ds.x[1])
    (('instance', 'z', 'y', 'x'), 0.44)
    """
    g = _open_group(path)
    keys = set(_walk_keys(g))
    if RAW_KEY not in keys and GT_KEY not in keys and pred_key not in keys:
        _get(g, GT_KEY, path)  # raises with the list of arrays present
    arrays = {}
    for key, name, dim0 in (
        (RAW_KEY, "raw", "channel"),
        (GT_KEY, "gt", "instance"),
        (pred_key, "pred", "pred_channel"),
    ):
        if key in keys:
            a = _get(g, key, path)
            if a.ndim != 4:
                raise FisbeInputError(
                    f"{path}:{key} has shape {a.shape}; expected 4 axes ({dim0}, Z, Y, X)"
                )
            arrays[name] = (a, dim0)
    shapes = {n: a.shape[1:] for n, (a, _) in arrays.items()}
    if len(set(shapes.values())) > 1:
        raise FisbeInputError(f"{path}: arrays have different spatial shapes {shapes}")
    vs, src = _voxel_size([a for a, _ in arrays.values()])
    zyx = next(iter(shapes.values()))
    coords = {d: np.arange(n) * s for d, n, s in zip("zyx", zyx, vs, strict=True)}
    data = {}
    for name, (a, dim0) in arrays.items():
        data[name] = xr.DataArray(_lazy(a), dims=(dim0, "z", "y", "x"))
    ds = xr.Dataset(data, coords=coords)
    if "raw" in ds and ds.sizes["channel"] == 3:
        ds = ds.assign_coords(channel=["red", "green", "blue"])
    if "gt" in ds:
        ds = ds.assign_coords(instance=np.arange(1, ds.sizes["instance"] + 1))
    name = sample_name(path)
    splits = read_split_file(split_file) if split_file is not None else bundled_splits()
    labeling, split = splits.get(name, ("unknown", "unknown"))
    dim = list(arrays["gt"][0].attrs.get("dim_neurons", [])) if "gt" in arrays else []
    for v in ds.coords:
        if v in "zyx":
            ds[v].attrs["units"] = "um"
    ds.attrs.update(
        sample=name,
        line=name.split("-")[0],
        labeling=labeling,
        split=split,
        voxel_size_um=list(vs),
        voxel_size_source=src,
        dim_neurons=[int(x) for x in dim],
        license="CC BY 4.0",
        citation="Mais, Hirsch et al., FISBe, CVPR 2024, doi:10.5281/zenodo.10875063",
    )
    return ds


#: stored chunks fetched per concurrent read of :meth:`FisbeLabelArray.channel_nonzero`
_BLOCKS_PER_READ = 64


def _flat_nonzero(block: np.ndarray) -> np.ndarray:
    """Sorted flat indices of the non-zero entries of ``block`` (as ``np.flatnonzero``).

    A sparse block is scanned 8 bytes at a time first (a ``uint64`` view): only the words holding
    a non-zero byte are looked at element by element, ~10x faster than ``np.nonzero`` on a
    mostly-empty 64^3 chunk.
    """
    flat = np.ascontiguousarray(block).reshape(-1)
    per = 8 // flat.dtype.itemsize if flat.dtype.itemsize in (1, 2, 4, 8) else 0
    if not per or flat.size % per:
        return np.flatnonzero(flat)
    words = np.flatnonzero(flat.view(np.uint64))
    cand = (words[:, None] * per + np.arange(per)).reshape(-1)
    return cand[flat[cand] != 0]


class FisbeLabelArray:
    """A read-only ``(C, Z, Y, X)`` label array of a FISBe zarr, read one channel at a time.

    ``arr[c]`` (an integer) returns channel ``c`` as an in-memory ``(Z, Y, X)`` array built from
    the chunks actually stored (zarr leaves all-background chunks unwritten), which is much faster
    than reading every chunk of a sparse neuron channel; any other key reads through zarr.
    """

    def __init__(self, array) -> None:
        self._a = array
        self.shape = tuple(int(s) for s in array.shape)
        self.dtype = np.dtype(array.dtype)
        self.ndim = len(self.shape)
        self._regions = None

    def _stored_regions(self):
        if self._regions is None:
            try:  # zarr 3 internals; fall back to whole-channel reads if they change
                from zarr.core.array import _shards_initialized
                from zarr.core.sync import sync

                keys = set(sync(_shards_initialized(self._a.async_array)))
                self._regions = [
                    r
                    for k, r in zip(
                        self._a._iter_shard_keys(), self._a._iter_shard_regions(), strict=True
                    )
                    if k in keys
                ]
            except Exception:  # noqa: BLE001 - any failure: use the plain (slower) path
                self._regions = False
        return self._regions

    def __getitem__(self, key):
        if not isinstance(key, int | np.integer) or self.ndim != 4:
            return self._a[key]
        c = int(key)
        if not -self.shape[0] <= c < self.shape[0]:
            raise IndexError(f"channel {c} out of range for {self.shape[0]} channels")
        c %= self.shape[0]
        regions = self._stored_regions()
        if regions is False:
            return self._a[c]
        out = np.zeros(self.shape[1:], dtype=self.dtype)  # calloc: untouched pages stay unmapped
        if self._a.fill_value:
            out[...] = self._a.fill_value
        mine = [r for r in regions if r[0].start <= c < r[0].stop]
        for r, block in zip(mine, self._read_blocks(c, mine), strict=True):
            out[r[1:]] = block
        return out

    def _read_blocks(self, c: int, regions) -> list[np.ndarray]:
        """Channel ``c`` of each stored chunk region, fetched concurrently in one call (one
        event-loop round trip instead of one per chunk: ~3.5x faster on a sparse channel)."""
        keys = [(slice(c, c + 1),) + tuple(r[1:]) for r in regions]
        try:  # zarr 3's asynchronous array (the same internals as _stored_regions)
            import asyncio

            from zarr.core.sync import sync

            async def fetch():
                return await asyncio.gather(*(self._a.async_array.getitem(k) for k in keys))

            blocks = sync(fetch())
        except Exception:  # noqa: BLE001 - any failure: read chunk by chunk
            blocks = [self._a[k] for k in keys]
        return [np.asarray(b)[0] for b in blocks]

    def channel_nonzero(self, c: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Sorted flat indices (int64) and values of the non-zero voxels of channel ``c``.

        Built from the stored chunks only, never a dense channel; None when the stored-chunk
        listing is unavailable or unstored chunks would not be zero (then read ``arr[c]``).
        """
        regions = self._stored_regions()
        if regions is False or self._a.fill_value or self.ndim != 4:
            return None
        c = int(c) % self.shape[0]
        idx, vals = [], []
        mine = [r for r in regions if r[0].start <= c < r[0].stop]
        for k in range(0, len(mine), _BLOCKS_PER_READ):  # bounded memory on dense channels
            part = mine[k : k + _BLOCKS_PER_READ]
            for r, block in zip(part, self._read_blocks(c, part), strict=True):
                loc = _flat_nonzero(block)
                if len(loc):
                    bz, by, bx = np.unravel_index(loc, block.shape)
                    glob = (bz + r[1].start, by + r[2].start, bx + r[3].start)
                    idx.append(np.ravel_multi_index(glob, self.shape[1:]).astype(np.int64))
                    vals.append(block.reshape(-1)[loc])
        if not idx:
            return np.zeros(0, np.int64), np.zeros(0, self.dtype)
        idx, vals = np.concatenate(idx), np.concatenate(vals)
        order = np.argsort(idx, kind="stable")
        return idx[order], vals[order]


def open_fisbe_labels(path, key: str = GT_KEY) -> FisbeLabelArray:
    """Open one label array of a FISBe zarr read-only, for channel-by-channel reading.

    Parameters
    ----------
    path : str or Path
        A FISBe ``.zarr`` directory.
    key : str
        ``"volumes/gt_instances"`` (default) or ``"volumes/pred_instances"``.

    Returns
    -------
    FisbeLabelArray
        ``shape``, ``dtype``; ``arr[c]`` reads channel ``c`` only.

    Raises
    ------
    FisbeInputError
        Not a zarr group, no such array, or not 4-D.

    Examples
    --------
    >>> import tempfile, os, numpy as np
    >>> p = os.path.join(tempfile.mkdtemp(), "S3.zarr")
    >>> gt = np.zeros((2, 4, 4, 4), np.uint8); gt[1, 1, 2, 3] = 2
    >>> write_fisbe(p, gt=gt)
    >>> a = open_fisbe_labels(p)
    >>> a.shape, int(a[1][1, 2, 3])
    ((2, 4, 4, 4), 2)
    """
    a = _get(_open_group(path), key, path)
    if a.ndim != 4:
        raise FisbeInputError(f"{path}:{key} has shape {a.shape}; expected 4 axes (C, Z, Y, X)")
    return FisbeLabelArray(a)


def _check_array(a, name, dtype, expect):
    if a is None:
        return None
    a = np.asarray(a.data if hasattr(a, "dims") else a)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise FisbeInputError(f"{name} has shape {a.shape}; expected {expect}")
    if name != "raw" and not np.issubdtype(a.dtype, np.integer):
        raise FisbeInputError(f"{name} has dtype {a.dtype}; expected integer instance ids")
    if dtype is not None and a.dtype != dtype:
        if (
            np.issubdtype(a.dtype, np.integer)
            and a.size
            and (a.min() < 0 or a.max() > np.iinfo(dtype).max)
        ):
            raise FisbeInputError(f"{name} values do not fit {np.dtype(dtype).name}")
        a = a.astype(dtype)
    return a


def write_fisbe(path, raw=None, gt=None, pred=None, dim_neurons=None) -> None:
    """Write a FISBe-layout zarr v2 sample atomically (temporary directory, then rename).

    Parameters
    ----------
    path : str or Path
        Target ``<sample>.zarr`` directory; an existing one is replaced.
    raw : array (3, Z, Y, X), optional
        Stored as uint16 under ``volumes/raw``.
    gt : array (N, Z, Y, X), optional
        Stored as uint8 under ``volumes/gt_instances``.
    pred : array (M, Z, Y, X), optional
        Stored under ``volumes/pred_instances`` (uint8 when ids fit, else uint32).
    dim_neurons : list of int, optional
        GT attribute ``dim_neurons``.

    Examples
    --------
    >>> import tempfile, os, numpy as np
    >>> p = os.path.join(tempfile.mkdtemp(), "S2.zarr")
    >>> write_fisbe(p, pred=np.zeros((1, 2, 2, 2), np.uint16))
    >>> read_fisbe(p).pred.dtype
    dtype('uint8')
    """
    raw = _check_array(raw, "raw", np.uint16, "(3, Z, Y, X)")
    gt = _check_array(gt, "gt", np.uint8, "(N, Z, Y, X)")
    if pred is not None:
        p = _check_array(pred, "pred", None, "(M, Z, Y, X)")
        pred = p.astype(np.uint8 if p.size == 0 or p.max() < 256 else np.uint32)
    items = [(k, a) for k, a in ((RAW_KEY, raw), (GT_KEY, gt), (PRED_KEY, pred)) if a is not None]
    if not items:
        raise FisbeInputError("write_fisbe got no array; expected raw, gt and/or pred")
    shapes = {k: a.shape[1:] for k, a in items}
    if len(set(shapes.values())) > 1:
        raise FisbeInputError(f"arrays have different spatial shapes {shapes}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(target) as tmp:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
        for key, a in items:
            chunks = (1,) + tuple(min(s, 64) for s in a.shape[1:])
            arr = root.create_array(key, shape=a.shape, dtype=a.dtype, chunks=chunks)
            arr[...] = a
            if key == GT_KEY and dim_neurons:
                arr.attrs["dim_neurons"] = [int(x) for x in dim_neurons]
