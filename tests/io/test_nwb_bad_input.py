"""Bad input gets an NWBError naming the file and the problem (or is repaired), never a traceback
from h5py, and input files are never modified. Synthetic files give planted ground truth."""

from __future__ import annotations

import hashlib
import warnings

import h5py
import numpy as np
import pytest
from nwb_synth import write_ophys, write_units

from neuroana.io import (
    NWBError,
    NWBWarning,
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
READERS = [
    read_spike_times,
    lambda p: read_spike_counts(p, 0.1),
    read_intervals,
    read_roi_traces,
    read_roi_masks,
    lambda p: read_behavior(p, "x"),
    list_contents,
    open_nwb,
]


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("reader", READERS)
def test_missing_file(tmp_path, reader):
    path = tmp_path / "nope.nwb"
    with pytest.raises(NWBError, match=r"nope\.nwb: no such file"):
        reader(path)


@pytest.mark.parametrize("reader", READERS)
def test_not_hdf5(tmp_path, reader):
    path = tmp_path / "notes.nwb"
    path.write_text("this is a text file, not HDF5\n" * 100)
    with pytest.raises(NWBError, match=r"notes\.nwb: not an HDF5 file"):
        reader(path)


def test_hdf5_but_not_nwb(tmp_path):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f["data"] = np.arange(3)
    before = sha256(path)
    for reader in READERS:
        with pytest.raises(NWBError, match=r"plain\.h5: HDF5 file is not NWB.*data"):
            reader(path)
    assert sha256(path) == before


@pytest.mark.parametrize("keep", [0.5, 0.02])
def test_truncated_file(nwb_dir, tmp_path, keep):
    raw = (nwb_dir / A2929).read_bytes()
    path = tmp_path / "cut.nwb"
    path.write_bytes(raw[: int(len(raw) * keep)])
    for reader in (read_spike_times, list_contents, read_intervals):
        with pytest.raises(NWBError, match=r"cut\.nwb: .*(truncated|corrupt)"):
            reader(path)


def test_missing_series_lists_what_exists(nwb_dir):
    path = nwb_dir / A2929
    with pytest.raises(NWBError, match=r"A2929-200711\.nwb: no RoiResponseSeries"):
        read_roi_traces(path)
    with pytest.raises(NWBError, match=r"no PlaneSegmentation"):
        read_roi_masks(path)
    with pytest.raises(NWBError, match=r"series present: .*/acquisition/CompassDirection/rx"):
        read_behavior(path, "running_speed")


def test_no_units_table(tmp_path):
    path = write_ophys(tmp_path / "o.nwb", traces=np.ones((4, 2)), rate=1.0)
    with pytest.raises(NWBError, match=r"o\.nwb: no Units table"):
        read_spike_times(path)


def test_nan_spike_times_refused(tmp_path):
    path = write_units(tmp_path / "nan.nwb", [[0.1, 0.2], [0.3, np.nan, 0.5]])
    with pytest.raises(NWBError, match=r"nan\.nwb: unit 1 has 1 NaN spike times"):
        read_spike_times(path)
    with pytest.raises(NWBError, match="NaN"):
        read_spike_counts(path, 0.1)


def test_unsorted_spikes_sorted_with_warning_and_zero_spike_unit(tmp_path):
    trains = [[0.35, 0.05, 0.2, 0.2], [], [0.0, 0.1, 0.2, 0.3, 0.4]]
    path = write_units(tmp_path / "u.nwb", trains, epochs=[(0.0, 0.2, ["a"]), (0.2, 0.5, ["b"])])
    before = sha256(path)
    with pytest.warns(NWBWarning, match=r"unit 0 are not sorted"):
        spikes = read_spike_times(path)
    np.testing.assert_array_equal(spikes[0], [0.05, 0.2, 0.2, 0.35])
    assert spikes[1].dtype == np.float64 and spikes[1].size == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NWBWarning)
        counts = read_spike_counts(path, 0.1, start=0.0, stop=0.5)
        wake = read_spike_counts(path, 0.1, interval=("epochs", "b"))
    # brute force: spike t is in bin k iff edge_k <= t < edge_k+1, edges start + k * 0.1
    edges = 0.0 + np.arange(6) * 0.1
    want = np.zeros((5, 3), dtype=np.int64)
    for j, train in enumerate(trains):
        for t in train:
            for k in range(5):
                if edges[k] <= t < edges[k + 1]:
                    want[k, j] += 1
    np.testing.assert_array_equal(counts.values, want)
    assert counts.sel(unit=1).values.tolist() == [0] * 5
    np.testing.assert_allclose(counts.time.values, [0.05, 0.15, 0.25, 0.35, 0.45])
    assert wake.attrs["start"] == 0.2 and wake.shape == (3, 3)
    np.testing.assert_array_equal(wake.values, want[2:])
    assert sha256(path) == before


def test_bad_binning_arguments(tmp_path):
    path = write_units(tmp_path / "u.nwb", [[0.1]], epochs=[(0.0, 1.0, ["x"]), (1.0, 2.0, ["x"])])
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(NWBError, match="bin_size"):
            read_spike_counts(path, bad)
    with pytest.raises(NWBError, match="either interval= or start="):
        read_spike_counts(path, 0.1, start=0.0, interval=("epochs", 0))
    with pytest.raises(NWBError, match=r"2 rows .* tagged 'x'"):
        read_spike_counts(path, 0.1, interval=("epochs", "x"))
    with pytest.raises(NWBError, match="out of range"):
        read_spike_counts(path, 0.1, interval=("epochs", 5))
    with pytest.raises(NWBError, match="expected finite start < stop"):
        read_spike_counts(path, 0.1, start=1.0, stop=0.5)


def test_real_file_bytes_unchanged_after_every_reader(nwb_dir):
    path = nwb_dir / A2929
    before = sha256(path)
    read_spike_times(path)
    read_spike_counts(path, 0.5)
    read_intervals(path, "sleep_ripples")
    read_behavior(path, "CompassDirection")
    list_contents(path)
    tree = open_nwb(path)
    first = tree["units"]["spike_times"][:3].values  # a lazy read re-opens the file
    np.testing.assert_array_equal(first, read_spike_times(path)[0][:3])
    assert sha256(path) == before


def test_roi_first_storage_transposed_with_timestamps(tmp_path):
    rng = np.random.default_rng(0)
    traces = rng.normal(size=(12, 4))
    ts = np.cumsum(rng.uniform(0.05, 0.15, size=12))
    path = write_ophys(tmp_path / "rf.nwb", traces=traces, roi_first=True, timestamps=ts)
    x = read_roi_traces(path)
    assert x.dims == ("time", "roi") and x.attrs["stored_orientation"] == "(roi, time)"
    np.testing.assert_array_equal(x.values, traces)
    np.testing.assert_array_equal(x.time.values, ts)
    lazy = open_nwb(path)["processing/ophys/Fluorescence/RoiResponseSeries"]["data"]
    np.testing.assert_array_equal(lazy[3:7, 1:3].values, traces[3:7, 1:3])
    straight = write_ophys(tmp_path / "tf.nwb", traces=traces, rate=4.0)
    y = read_roi_traces(straight)
    assert y.attrs["stored_orientation"] == "(time, roi)"
    np.testing.assert_array_equal(y.values, traces)
    np.testing.assert_allclose(y.time.values, np.arange(12) / 4.0)


def test_pixel_masks_use_plane_dimension(tmp_path):
    # NWB dimension is [width (x), height (y)]: a 7-wide, 5-high frame -> (roi, 5, 7)
    pixels = [[(0, 0, 1.0)], [(6, 4, 2.0)], [(1, 2, 0.5), (2, 2, 0.25)]]
    path = write_ophys(
        tmp_path / "pm.nwb",
        traces=np.ones((10, 3)),
        rate=10.0,
        masks=("pixel", pixels),
        frame_dimension=[7, 5],
    )
    m = read_roi_masks(path)
    assert m.dims == ("roi", "y", "x") and m.shape == (3, 5, 7)
    want = np.zeros((3, 5, 7))
    for r, roi in enumerate(pixels):
        for x, y, w in roi:
            want[r, y, x] = w
    np.testing.assert_array_equal(m.values, want)
    assert read_roi_masks(path, shape=(6, 9)).shape == (3, 6, 9)
    with pytest.raises(NWBError, match=r"outside the frame \(4, 4\)"):
        read_roi_masks(path, shape=(4, 4))
    # without an imaging series the frame is the pixels' extent
    bare = write_ophys(
        tmp_path / "pm2.nwb", traces=np.ones((10, 3)), rate=10.0, masks=("pixel", pixels)
    )
    np.testing.assert_array_equal(read_roi_masks(bare).values, want)


def test_image_masks_3d_and_flattened(tmp_path):
    rng = np.random.default_rng(1)
    masks = rng.uniform(size=(3, 4, 6)) * (rng.uniform(size=(3, 4, 6)) > 0.5)
    path = write_ophys(
        tmp_path / "im.nwb", traces=np.ones((5, 3)), rate=1.0, masks=("image", masks)
    )
    np.testing.assert_array_equal(read_roi_masks(path).values, masks)
    flat = write_ophys(
        tmp_path / "flat.nwb",
        traces=np.ones((5, 3)),
        rate=1.0,
        masks=("image", masks.reshape(3, 1, 24)),
    )
    with pytest.raises(NWBError, match=r"flat\.nwb: .*stored flattened with shape \(3, 1, 24\)"):
        read_roi_masks(flat)
    np.testing.assert_array_equal(read_roi_masks(flat, shape=(4, 6)).values, masks)
    f_order = masks.reshape(3, 24, order="F").reshape(3, 1, 24)
    flat_f = write_ophys(
        tmp_path / "flatf.nwb", traces=np.ones((5, 3)), rate=1.0, masks=("image", f_order)
    )
    np.testing.assert_array_equal(read_roi_masks(flat_f, shape=(4, 6), order="F").values, masks)
    with pytest.raises(NWBError, match="order="):
        read_roi_masks(flat, shape=(4, 6), order="K")
