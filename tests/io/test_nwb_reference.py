"""The NWB readers against the independent reference values for the real pynapple test files."""

from __future__ import annotations

import hashlib
import json
import warnings

import numpy as np
import pytest

from neuroana.io import (
    NWBError,
    list_contents,
    open_nwb,
    read_behavior,
    read_intervals,
    read_roi_masks,
    read_roi_traces,
    read_spike_counts,
    read_spike_times,
)

A2929 = "pynapple_neurosuite_A2929-200711.nwb"
PHY = "pynapple_phy_A8604-211122.nwb"
SUITE2P = "pynapple_suite2p_2022_08_08.nwb"
INSCOPIX = "pynapple_inscopix-cnmfe_A0634-210127.nwb"
MATLAB = "pynapple_matlab-cnmfe_A6512-210915.nwb"
ALL = [A2929, PHY, SUITE2P, INSCOPIX, MATLAB]


@pytest.fixture(scope="module")
def ref(nwb_dir):
    return json.loads((nwb_dir / "reference.json").read_text())["files"]


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", ALL)
def test_every_file_loads_untouched(nwb_dir, ref, name):
    path = nwb_dir / name
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # our readers repair rather than warn for these files
        table = list_contents(path)
        tree = open_nwb(path)
    assert tree.attrs["nwb_version"] == ref[name]["nwb_version"]
    assert tree.attrs["identifier"] == ref[name]["identifier"]
    for group in ref[name].get("intervals", {}).values():
        assert group["path"] in set(table["path"])
        assert tree[group["path"]].sizes["interval"] == group["n_rows"]
    for key in ref[name]["acquisition"]:
        assert f"/acquisition/{key}" in set(table["path"])
    assert sha256(path) == ref[name]["sha256"]


@pytest.mark.parametrize("name", [A2929, PHY])
def test_spike_times_match_reference(nwb_dir, ref, name):
    units = ref[name]["units"]
    spikes = read_spike_times(nwb_dir / name)
    assert list(spikes) == units["ids"]
    assert [t.size for t in spikes.values()] == units["spike_counts"]
    assert [t[0] for t in spikes.values()] == units["first_spike_time"]
    assert [t[-1] for t in spikes.values()] == units["last_spike_time"]
    for t in spikes.values():
        assert t.dtype == np.float64 and np.all(np.diff(t) >= 0)
    tree = open_nwb(nwb_dir / name)
    assert tree["units"]["n_spikes"].values.tolist() == units["spike_counts"]
    if "location" in units and any(units["location"]):
        assert tree["units"]["location"].values.tolist() == units["location"]


def test_wake_25ms_binned_matrix_exact(nwb_dir, ref):
    want = ref[A2929]["binned_spike_counts_wake_25ms"]
    npz = np.load(nwb_dir / "reference_A2929_wake_25ms_counts.npz")
    counts = read_spike_counts(nwb_dir / A2929, 0.025, interval=("epochs", "wake"))
    assert counts.dims == ("time", "unit")
    assert list(counts.shape) == want["shape_time_by_unit"]
    assert counts.unit.values.tolist() == want["unit_ids"]
    np.testing.assert_array_equal(counts.values, npz["counts"])
    raw = np.ascontiguousarray(counts.values.astype("<i8")).tobytes()
    assert hashlib.sha256(raw).hexdigest() == want["sha256_int64_C_order_time_by_unit"]
    assert counts.sum("time").values.tolist() == want["total_count_per_unit"]
    np.testing.assert_array_equal(counts.time.values - 0.0125, npz["bin_left_edges"])
    assert counts.attrs["start"] == 600.0 and counts.attrs["stop"] == 1200.0
    assert counts.attrs["bin_size"] == 0.025
    assert counts.attrs["source_file"].endswith(A2929)
    # the same bins chosen by row index and by explicit range
    by_row = read_spike_counts(nwb_dir / A2929, 0.025, interval=("epochs", 1))
    by_range = read_spike_counts(nwb_dir / A2929, 0.025, start=600.0, stop=1200.0)
    np.testing.assert_array_equal(by_row.values, npz["counts"])
    np.testing.assert_array_equal(by_range.values, npz["counts"])


def test_binned_counts_whole_session_total(nwb_dir, ref):
    units = ref[PHY]["units"]
    counts = read_spike_counts(nwb_dir / PHY, 1.0)
    assert counts.unit.values.tolist() == units["ids"]
    assert counts.sum("time").values.tolist() == units["spike_counts"]
    assert counts.attrs["start"] == 0.0 and counts.attrs["stop"] > max(units["last_spike_time"])


def test_interval_errors_name_what_exists(nwb_dir):
    with pytest.raises(NWBError, match=r"tagged 'rem'.*sleep.*wake"):
        read_spike_counts(nwb_dir / A2929, 0.025, interval=("epochs", "rem"))
    with pytest.raises(NWBError, match=r"no interval table named 'trials'.*sleep_ripples"):
        read_intervals(nwb_dir / A2929, "trials")


def test_intervals_exact(nwb_dir, ref):
    for name, want in ref[A2929]["intervals"].items():
        df = read_intervals(nwb_dir / A2929, name)
        assert df.index.tolist() == want["ids"]
        assert df["start_time"].tolist() == want["start_time"]
        assert df["stop_time"].tolist() == want["stop_time"]
        assert df["tags"].tolist() == want["tags"]
    df = read_intervals(nwb_dir / PHY)
    assert df["start_time"].tolist() == ref[PHY]["intervals"]["epochs"]["start_time"]
    assert df["stop_time"].tolist() == ref[PHY]["intervals"]["epochs"]["stop_time"]


def _check_traces(x, want):
    c = want["checksums_float64"]
    x64 = x.values.astype(np.float64)
    assert list(x.shape) == want["correct_shape_time_by_roi"]
    assert x.roi.values.tolist() == want["roi_ids"]
    np.testing.assert_allclose(x64.sum(axis=0), c["sum_per_roi_all"], rtol=1e-12, atol=0)
    np.testing.assert_allclose(x64.sum(), c["sum_all"], rtol=1e-12)
    assert x64[0, :5].tolist() == c["x[0, :5]"]
    assert x64[1, :5].tolist() == c["x[1, :5]"]
    assert x64[-1, :5].tolist() == c["x[-1, :5]"]
    assert list(np.unravel_index(np.argmax(x64), x64.shape)) == c["argmax_time_roi"]
    assert x64.max() == c["max"]
    t = x.time.values
    if want["has_timestamps"]:
        assert (t[0], t[-1]) == (want["timestamps_first"], want["timestamps_last"])
    else:
        assert t[0] == want["time_first"]
        np.testing.assert_allclose(t[-1], want["time_last"], rtol=1e-12)


@pytest.mark.parametrize("name", [SUITE2P, INSCOPIX, MATLAB])
def test_roi_traces_orientation_and_checksums(nwb_dir, ref, name):
    for key, want in ref[name]["ophys"]["roi_response_series"].items():
        x = read_roi_traces(nwb_dir / name, key)
        assert x.dims == ("time", "roi")
        _check_traces(x, want)
        roi_first = want["stored_shape"] != want["correct_shape_time_by_roi"]
        assert x.attrs["stored_orientation"] == ("(roi, time)" if roi_first else "(time, roi)")


def test_suite2p_default_series_and_lazy_tree(nwb_dir, ref):
    want = ref[SUITE2P]["ophys"]["roi_response_series"]["Fluorescence/Fluorescence"]
    x = read_roi_traces(nwb_dir / SUITE2P)
    assert x.attrs["nwb_path"] == "/processing/ophys/Fluorescence/Fluorescence"
    assert x.shape == (2000, 219)
    lazy = open_nwb(nwb_dir / SUITE2P)["processing/ophys/Neuropil/Neuropil"]["data"]
    assert lazy.dims == ("time", "roi") and lazy.shape == (2000, 219)
    neuropil = read_roi_traces(nwb_dir / SUITE2P, "Neuropil")
    np.testing.assert_array_equal(lazy[5:9, 100:103].values, neuropil.values[5:9, 100:103])
    argmax = want["checksums_float64"]["argmax_time_roi"]
    tree = open_nwb(nwb_dir / SUITE2P)
    fl = tree["processing/ophys/Fluorescence/Fluorescence"]["data"]
    assert float(fl[argmax[0], argmax[1]]) == want["checksums_float64"]["max"]


def _check_masks(m, nonzero, sums):
    flat = m.values.reshape(m.shape[0], -1).astype(np.float64)
    assert (flat != 0).sum(axis=1).tolist() == nonzero
    np.testing.assert_allclose(flat.sum(axis=1), sums, rtol=1e-6)


def test_image_masks_3d(nwb_dir, ref):
    want = ref[INSCOPIX]["ophys"]["plane_segmentations"]["PlaneSegmentation"]
    m = read_roi_masks(nwb_dir / INSCOPIX)
    assert m.dims == ("roi", "y", "x")
    assert list(m.shape) == want["image_mask"]["shape"]
    assert m.roi.values.tolist() == want["ids"]
    _check_masks(m, want["image_mask"]["nonzero_pixels_per_roi"], want["image_mask"]["sum_per_roi"])
    lazy = open_nwb(nwb_dir / INSCOPIX)["processing/ophys/ImageSegmentation/PlaneSegmentation"]
    np.testing.assert_array_equal(lazy["image_mask"][3].values, m.values[3])


def test_flattened_image_masks_refused_without_shape(nwb_dir, ref):
    want = ref[MATLAB]["ophys"]["plane_segmentations"]["PlaneSegmentation"]["image_mask"]
    with pytest.raises(NWBError, match=r"flattened.*\(10, 1, 51870\).*shape="):
        read_roi_masks(nwb_dir / MATLAB)
    with pytest.raises(NWBError, match="51870"):
        read_roi_masks(nwb_dir / MATLAB, shape=(100, 100))
    m = read_roi_masks(nwb_dir / MATLAB, shape=(266, 195))  # 266 * 195 = 51870
    assert m.shape == (10, 266, 195)
    _check_masks(m, want["nonzero_pixels_per_roi"], want["sum_per_roi"])


def test_pixel_masks_dense(nwb_dir, ref):
    want = ref[SUITE2P]["ophys"]["plane_segmentations"]["PlaneSegmentation"]["pixel_mask"]
    m = read_roi_masks(nwb_dir / SUITE2P)
    assert m.shape == (219, 608, 608)  # TwoPhotonSeries.dimension on the same imaging plane
    flat = m.values.reshape(219, -1)
    assert int((flat != 0).sum()) == want["n_pixels_total"]
    assert (flat != 0).sum(axis=1)[:5].tolist() == want["pixels_per_roi_first5"]
    np.testing.assert_allclose(
        flat[:5].sum(axis=1, dtype=np.float64), want["weight_sum_first5"], rtol=1e-12
    )
    nz_y, nz_x = np.nonzero(m.values.any(axis=0))
    assert (nz_y.max(), nz_x.max()) == (want["y_max"], want["x_max"])


def test_behaviour_series_and_containers(nwb_dir, ref):
    beh = ref[A2929]["behaviour"]
    for key, want in beh.items():
        x = read_behavior(nwb_dir / A2929, key)
        assert x.dims == ("time", "feature")
        assert [x.shape[0]] == want["shape"]
        v = x.values[:, 0]
        assert v[:3].tolist() == want["first_values"]
        assert v[-1] == want["last_value"]
        np.testing.assert_allclose(v.sum(), want["sum"], rtol=1e-12)
        assert (x.time.values[0], x.time.values[-1]) == (
            want["timestamps_first"],
            want["timestamps_last"],
        )
        assert x.attrs["unit"] == want["unit"]
    pos = read_behavior(nwb_dir / A2929, "Position")
    assert pos.feature.values.tolist() == ["x", "y", "z"]
    for f in "xyz":
        np.testing.assert_allclose(
            pos.sel(feature=f).values.sum(), beh[f"Position/{f}"]["sum"], rtol=1e-12
        )
    with pytest.raises(NWBError, match=r"no TimeSeries or container named 'speed'.*Position/x"):
        read_behavior(nwb_dir / A2929, "speed")


def test_list_contents_flags_roi_first(nwb_dir):
    table = list_contents(nwb_dir / SUITE2P)
    row = table.set_index("path").loc["/processing/ophys/Fluorescence/Fluorescence"]
    assert row["neurodata_type"] == "RoiResponseSeries"
    assert row["shape"] == "(219, 2000)"
    assert "stored (roi, time)" in row["description"]
    assert list(table.columns) == ["path", "neurodata_type", "shape", "description"]
