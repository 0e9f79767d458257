"""Every dim the package uses is named in :mod:`neuroana.dims`: in the source, in what the readers
return (synthetic and real NWB files, FISBe zarr), and (tests/test_estimator_compliance.py) in what
fitted estimators hold."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from neuroana import dims

PACKAGE = Path(dims.__file__).resolve().parent
#: dims still used in areas other sessions own, to be renamed there (then removed from here)
PENDING: dict[str, str] = {}


def _strings(node) -> list[str]:
    if isinstance(node, (ast.Tuple, ast.List)):
        return [
            e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
        ]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    return []


def _literal_dims() -> dict[str, set[str]]:
    """Dim names written as literals: ``dims=...`` and ``dim=...`` keywords, ``*DIMS*`` tuples, the
    arguments of ``.transpose``/``.expand_dims`` and the second positional of ``DataArray``/``Variable``.
    """
    found: dict[str, set[str]] = {}

    def add(names, where):
        for n in names:
            found.setdefault(n, set()).add(where)

    for path in PACKAGE.rglob("*.py"):
        where = str(path.relative_to(PACKAGE))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg in ("dims", "dim"):
                add(_strings(node.value), where)
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id.endswith("DIMS") for t in node.targets
            ):
                add(_strings(node.value), where)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr in ("transpose", "expand_dims"):
                    for a in node.args:
                        add(_strings(a), where)
                elif node.func.attr in ("DataArray", "Variable") and len(node.args) > 1:
                    add(_strings(node.args[1]), where)
    return found


def test_every_literal_dim_in_the_source_is_named_in_dims():
    found = _literal_dims()
    assert {"time", "target", "state_next"} <= set(found)  # the scan sees the package
    unknown = {k: sorted(v) for k, v in found.items() if not dims.is_known(k) and k not in PENDING}
    assert not unknown, f"dims not in neuroana/dims.py: {unknown}"
    stale = set(PENDING) - set(found)
    assert not stale, f"renamed now, remove from PENDING: {stale}"


def test_dims_names_are_unique_and_connectivity_is_target_source():
    assert len(set(dims.ALL)) == len(dims.ALL)
    assert dims.CONNECTIVITY == ("target", "source")
    assert not dims.is_known("post") and not dims.is_known("pre")


def _all_dims(obj) -> set[str]:
    if isinstance(obj, xr.DataTree):
        return {d for node in obj.subtree for v in node.ds.variables.values() for d in v.dims}
    if isinstance(obj, (xr.DataArray, xr.Dataset)):
        return set(obj.dims) | {d for v in obj.coords.values() for d in v.dims}
    if isinstance(obj, dict):
        return {d for v in obj.values() for d in _all_dims(v)}
    return set()


def _reader_dims(path) -> set[str]:
    from neuroana import io

    out = _all_dims(io.open_nwb(path)) | _all_dims(io.read_images(path))
    for reader in (io.read_roi_traces, io.read_roi_masks):
        try:
            out |= _all_dims(reader(path))
        except io.NWBError:  # the file has no such data (or needs options)
            pass
    table = io.list_contents(path)
    for p in table.path[table.neurodata_type.isin(["SpatialSeries", "TimeSeries"])]:
        if p.startswith(("/acquisition", "/processing", "/stimulus")):
            try:
                out |= _all_dims(io.read_behavior(path, p))
            except io.NWBError:  # e.g. not a (time,) or (time, feature) series
                pass
    try:
        out |= _all_dims(io.read_spike_counts(path, 0.5))
    except io.NWBError:
        pass
    return out


def test_reader_dims_on_a_synthetic_session(tmp_path):
    from neuroana.datasets import make_session
    from neuroana.io import write_session_nwb

    path = write_session_nwb(
        make_session(random_state=0, duration=5.0, n_units=3, n_rois=4), tmp_path / "s.nwb"
    )
    found = _reader_dims(path)
    assert {"time", "unit", "roi"} <= found
    assert all(dims.is_known(d) for d in found), sorted(d for d in found if not dims.is_known(d))


def test_reader_dims_on_real_files(nwb_dir):
    files = sorted(Path(nwb_dir).glob("*.nwb"))
    if not files:
        pytest.skip("no real NWB files")
    for path in files:
        found = _reader_dims(path)
        unknown = sorted(d for d in found if not dims.is_known(d))
        assert not unknown, f"{path.name}: {unknown}"


def test_fisbe_reader_dims(tmp_path):
    from neuroana.datasets.fisbe_synth import make_fisbe_volume
    from neuroana.io import read_fisbe, write_fisbe

    ds = make_fisbe_volume((6, 8, 8), n_neurons=2, random_state=0)
    path = tmp_path / "s.zarr"
    write_fisbe(path, ds.raw.values, ds.gt.values, pred=ds.gt.values)
    found = _all_dims(read_fisbe(path))
    assert {"z", "y", "x"} <= found
    assert all(dims.is_known(d) for d in found), sorted(found)
    assert np.asarray(read_fisbe(path)["raw"]).shape == ds.raw.shape
