"""Atomic result writers: round trips, numpy conversion, and no half file when writing fails."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from neuroana.io import write_json_atomic, write_netcdf_atomic, write_zarr_atomic


@pytest.fixture
def ds():
    rng = np.random.default_rng(0)
    return xr.Dataset(
        {"counts": (("time", "unit"), rng.integers(0, 9, size=(6, 3)))},
        coords={"time": np.arange(6) * 0.1, "unit": [6, 191, 206]},
        attrs={"bin_size": 0.1},
    )


def test_netcdf_round_trip_and_replace(tmp_path, ds):
    path = tmp_path / "r.nc"
    write_netcdf_atomic(ds, path)
    write_netcdf_atomic(ds * 2, path)  # replaces the first
    with xr.open_dataset(path) as back:
        np.testing.assert_array_equal(back["counts"].values, ds["counts"].values * 2)
        assert back.unit.values.tolist() == [6, 191, 206]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.nc"]


def test_netcdf_failure_keeps_old_file_and_leaves_no_temp(tmp_path, ds):
    path = tmp_path / "r.nc"
    write_netcdf_atomic(ds, path)
    before = path.read_bytes()
    bad = xr.Dataset({"x": ("t", np.array([object(), object()], dtype=object))})
    with pytest.raises(Exception):  # noqa: B017 - whatever the engine raises
        write_netcdf_atomic(bad, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.nc"]


def test_zarr_round_trip_and_replace(tmp_path, ds):
    path = tmp_path / "r.zarr"
    write_zarr_atomic(ds["counts"], path)
    write_zarr_atomic(ds + 1, path)
    back = xr.open_zarr(path)
    np.testing.assert_array_equal(back["counts"].values, ds["counts"].values + 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.zarr"]


def test_json_converts_numpy_and_nan(tmp_path):
    obj = {
        "ap": np.float32(0.25),
        "n": np.int64(7),
        "ids": np.array([6, 191]),
        "bad": float("nan"),
        "nested": [{"v": np.bool_(True)}, (1, 2)],
        3: "int key",
    }
    path = write_json_atomic(obj, tmp_path / "r.json")
    back = json.loads(path.read_text())
    assert back == {
        "ap": 0.25,
        "n": 7,
        "ids": [6, 191],
        "bad": None,
        "nested": [{"v": True}, [1, 2]],
        "3": "int key",
    }


def test_json_failure_keeps_old_file(tmp_path):
    path = write_json_atomic({"a": 1}, tmp_path / "r.json")
    with pytest.raises(TypeError):
        write_json_atomic({"a": object()}, path)
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
