"""Opening NWB files read-only (local or streamed) and the HDF5-level helpers the readers share.

Everything here works on the HDF5 layout that NWB 2.x prescribes, through h5py: it is faster than
building the full pynwb object tree, never writes, and lets the readers repair what pynwb only warns
about (ROI-first traces, unsorted spikes). Every failure becomes a :class:`NWBError` that names the
file and the problem.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from neuroana.io.errors import NWBError, StreamingUnavailableError

if TYPE_CHECKING:
    import pandas as pd

PathLike = str | os.PathLike

REMOTE_PREFIXES = ("http://", "https://", "s3://")
STREAM_HINT = "pip install neuroana[stream]"
# low-level errors that h5py raises for damaged or non-conforming files; turned into NWBError
_READ_ERRORS = (OSError, KeyError, RuntimeError, ValueError, TypeError, IndexError)


def is_remote(path: PathLike) -> bool:
    """True for ``http(s)://`` and ``s3://`` paths, which are streamed instead of opened."""
    return isinstance(path, str) and path.lower().startswith(REMOTE_PREFIXES)


def file_label(path: PathLike) -> str:
    """How a file is named in messages and in the ``source_file`` attribute."""
    return path if is_remote(path) else str(Path(path))


def _open_remote(url: str):
    """A seekable binary file object for ``url``, through remfile (http) or fsspec (any scheme)."""
    if url.lower().startswith(("http://", "https://")):
        try:
            import remfile
        except ImportError:
            remfile = None
        if remfile is not None:
            try:
                return remfile.File(url)
            except Exception as exc:  # remfile raises its own types for HTTP errors
                raise NWBError(f"{url}: cannot be opened for streaming: {exc}") from exc
    try:
        import fsspec
    except ImportError as exc:
        raise StreamingUnavailableError(
            f"{url}: streaming a remote NWB file needs remfile or fsspec, which are not installed; "
            f"install them with `{STREAM_HINT}`"
        ) from exc
    try:
        return fsspec.open(url, "rb").open()
    except ImportError as exc:  # fsspec present but its protocol driver (aiohttp, s3fs) is not
        raise StreamingUnavailableError(
            f"{url}: fsspec cannot stream this protocol ({exc}); install the streaming extras with "
            f"`{STREAM_HINT}` (s3:// also needs s3fs)"
        ) from exc
    except (OSError, ValueError) as exc:
        raise NWBError(f"{url}: cannot be opened for streaming: {exc}") from exc


@contextmanager
def open_h5(path: PathLike) -> Iterator[h5py.File]:
    """Open an NWB file read-only and close it (and any stream) on exit.

    Raises :class:`NWBError` for a missing file, a file that is not HDF5, a truncated or corrupt
    file and an HDF5 file that is not NWB; h5py errors raised while the block reads are re-raised
    as :class:`NWBError` naming the file.
    """
    label = file_label(path)
    stream = None
    if is_remote(path):
        stream = _open_remote(path)
        target = stream
    else:
        p = Path(path)
        if not p.exists():
            raise NWBError(f"{label}: no such file")
        if p.is_dir():
            raise NWBError(f"{label}: is a directory, expected an NWB (HDF5) file")
        if not h5py.is_hdf5(p):
            raise NWBError(
                f"{label}: not an HDF5 file (no HDF5 signature); NWB 2.x files are HDF5 "
                "(NWB-Zarr stores are not supported)"
            )
        target = p
    try:
        f = h5py.File(target, "r")
    except _READ_ERRORS as exc:
        if stream is not None:
            stream.close()
        raise NWBError(
            f"{label}: cannot be opened as HDF5 (truncated or corrupt file?): {exc}"
        ) from exc
    try:
        kind = attr_str(f.attrs, "neurodata_type")
        if kind != "NWBFile" and "nwb_version" not in f.attrs:
            top = ", ".join(sorted(f.keys())[:10]) or "nothing"
            raise NWBError(
                f"{label}: HDF5 file is not NWB (root has no neurodata_type 'NWBFile' and no "
                f"nwb_version attribute; top level holds {top})"
            )
        yield f
    except NWBError:
        raise
    except _READ_ERRORS as exc:
        raise NWBError(
            f"{label}: reading failed ({type(exc).__name__}: {exc}); the file may be truncated "
            "or not follow the NWB schema"
        ) from exc
    finally:
        f.close()
        if stream is not None:
            stream.close()


def attr_str(attrs, key: str, default: str | None = None) -> str | None:
    """An HDF5 attribute as ``str`` (h5py may return bytes or a numpy string)."""
    if key not in attrs:
        return default
    value = attrs[key]
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    return value.decode() if isinstance(value, bytes) else str(value)


def scalar(ds: h5py.Dataset):
    """The value of a scalar dataset; strings decoded."""
    value = ds[()]
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.dtype.kind in "OS":
        return [v.decode() if isinstance(v, bytes) else v for v in value.tolist()]
    return value.item() if isinstance(value, np.generic) else value


def walk(f: h5py.File) -> Iterator[tuple[str, h5py.Group | h5py.Dataset]]:
    """Every object with a ``neurodata_type`` (hard links only, ``/specifications`` skipped)."""

    def visit(group: h5py.Group) -> Iterator[tuple[str, h5py.Group | h5py.Dataset]]:
        for key in group:
            link = group.get(key, getlink=True)
            if not isinstance(link, h5py.HardLink):
                continue  # soft/external links point to objects listed where they live
            obj = group[key]
            if obj.name == "/specifications":
                continue
            if "neurodata_type" in obj.attrs:
                yield obj.name, obj
            if isinstance(obj, h5py.Group):
                yield from visit(obj)

    yield from visit(f)


def typed(f: h5py.File, types: tuple[str, ...], under: tuple[str, ...] = ("/",)) -> list[str]:
    """Paths of the groups whose ``neurodata_type`` is in ``types``, below one of ``under``."""
    out = []
    for path, obj in walk(f):
        if attr_str(obj.attrs, "neurodata_type") in types and any(
            path.startswith(u) for u in under
        ):
            out.append(path)
    return out


def select(candidates: list[str], name: str | None, what: str, label: str) -> list[str]:
    """The candidate paths that ``name`` designates (full path, or trailing path components)."""
    if not candidates:
        raise NWBError(f"{label}: no {what} in this file")
    if name is None:
        return list(candidates)
    key = name.strip("/")
    found = [c for c in candidates if c.strip("/") == key or c.endswith("/" + key)]
    if not found:
        raise NWBError(
            f"{label}: no {what} named {name!r}; the file has: " + ", ".join(sorted(candidates))
        )
    return found


def series_times(group: h5py.Group, n: int, label: str) -> np.ndarray:
    """Sample times in seconds of a TimeSeries with ``n`` samples: timestamps, or start + i/rate."""
    if "timestamps" in group:
        t = np.asarray(group["timestamps"][()], dtype=np.float64)
        if t.shape != (n,):
            raise NWBError(
                f"{label}: {group.name} has {t.size} timestamps for {n} samples along time"
            )
        return t
    if "starting_time" in group:
        ds = group["starting_time"]
        t0 = float(ds[()])
        rate = float(ds.attrs.get("rate", np.nan))
        if not np.isfinite(rate) or rate <= 0:
            raise NWBError(
                f"{label}: {group.name}/starting_time has rate {rate}; expected a positive rate"
            )
        return t0 + np.arange(n, dtype=np.float64) / rate
    raise NWBError(f"{label}: {group.name} has neither timestamps nor starting_time")


def trace_orientation(shape: tuple[int, ...], n_rois: int, n_times: int | None) -> bool:
    """True when a stored 2-D trace array is ROI-first ``(roi, time)`` and must be transposed.

    NWB stores time first. The array is taken as ROI-first when only its first axis matches the
    ROI count, or (square arrays) when only its second axis matches the number of timestamps.
    """
    a, b = shape
    if b == n_rois and a != n_rois:
        return False
    if a == n_rois and b != n_rois:
        return True
    if a == b == n_rois and n_times is not None and n_times != a:
        raise ValueError("square data whose side matches neither the ROIs nor the timestamps")
    return False


def data_scaling(ds: h5py.Dataset) -> tuple[float, float]:
    """``(conversion, offset)`` of a TimeSeries ``data`` dataset (defaults 1 and 0)."""
    conversion = float(ds.attrs.get("conversion", 1.0))
    offset = float(ds.attrs.get("offset", 0.0))
    return conversion, offset


def scaled(values: np.ndarray, conversion: float, offset: float) -> np.ndarray:
    """Stored values in the series' unit; the stored dtype is kept when no scaling applies."""
    if conversion == 1.0 and offset == 0.0:
        return values
    return np.asarray(values, dtype=np.float64) * conversion + offset


def _column_values(ds: h5py.Dataset) -> list | np.ndarray:
    """A table column as numpy (numbers) or a list (strings, references, compound rows)."""
    if h5py.check_string_dtype(ds.dtype) is not None:
        return np.asarray(ds.asstr()[()], dtype=object)
    if h5py.check_dtype(ref=ds.dtype) is not None:
        return np.array([ds.file[r].name.rsplit("/", 1)[-1] if r else None for r in ds[()]])
    if ds.dtype.names:  # compound rows: dicts, references given as object names
        rows = []
        for row in ds[()]:
            item = {}
            for field in ds.dtype.names:
                v = row[field]
                if isinstance(v, h5py.Reference):
                    v = ds.file[v].name if v else None
                elif isinstance(v, bytes):
                    v = v.decode()
                elif isinstance(v, np.generic):
                    v = v.item()
                item[field] = v
            rows.append(item)
        return rows
    return ds[()]


def read_table(group: h5py.Group, label: str, skip: tuple[str, ...] = ()) -> pd.DataFrame:
    """A DynamicTable as a DataFrame indexed by ``id``; ragged columns become lists per row."""
    import pandas as pd  # imported on use: `neuroana info` needs no pandas

    ids = np.asarray(group["id"][()])
    colnames = [c.decode() if isinstance(c, bytes) else str(c) for c in group.attrs["colnames"]]
    columns = {}
    for col in colnames:
        if col in skip:
            continue
        if col not in group:
            raise NWBError(f"{label}: {group.name} lists column {col!r} but does not store it")
        values = _column_values(group[col])
        if f"{col}_index" in group:
            ends = np.asarray(group[f"{col}_index"][()], dtype=np.int64)
            starts = np.concatenate([[0], ends[:-1]])
            values = [list(values[s:e]) for s, e in zip(starts, ends, strict=True)]
        elif isinstance(values, np.ndarray) and values.ndim > 1:
            values = list(values)
        if len(values) != ids.size:
            raise NWBError(
                f"{label}: column {group.name}/{col} has {len(values)} rows, the table {ids.size}"
            )
        columns[col] = values
    return pd.DataFrame(columns, index=pd.Index(ids, name="id"))
