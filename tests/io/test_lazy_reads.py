"""Lazy and counted reads: dask-backed images and DataTree, bulk column reads of the units table.

Every h5py read is counted by wrapping ``h5py.Dataset.__getitem__`` (and ``read_direct``), as
pynapple's test suite does since its PR #655.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from datetime import UTC, datetime

import dask.array as da
import h5py
import numpy as np
import pytest

from neuroana.io import nwb_lazy, open_nwb, read_images, read_spike_counts, read_spike_times

FRAMES = np.arange(40 * 6 * 5, dtype=np.int16).reshape(40, 6, 5)
MEAN = np.arange(30, dtype=np.float32).reshape(6, 5) / 7


def _write(path, n_units: int, seed: int = 0):
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.base import Images
    from pynwb.image import GrayscaleImage
    from pynwb.ophys import OpticalChannel, TwoPhotonSeries

    rng = np.random.default_rng(seed)
    f = NWBFile(
        session_description="lazy-read test",
        identifier=f"lazy-{n_units}",
        session_start_time=datetime(2024, 1, 1, tzinfo=UTC),
    )
    for _ in range(n_units):
        f.add_unit(spike_times=np.sort(rng.uniform(0, 10, size=rng.integers(1, 20))))
    dev = f.create_device(name="scope")
    plane = f.create_imaging_plane(
        name="plane",
        optical_channel=OpticalChannel(name="ch", description="g", emission_lambda=520.0),
        imaging_rate=10.0,
        description="p",
        device=dev,
        excitation_lambda=920.0,
        indicator="GCaMP",
        location="V1",
    )
    f.add_acquisition(
        TwoPhotonSeries(name="movie", data=FRAMES, imaging_plane=plane, rate=10.0, unit="a.u.")
    )
    mod = f.create_processing_module(name="ophys", description="p")
    mod.add(Images(name="Backgrounds", images=[GrayscaleImage(name="meanImg", data=MEAN)]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with NWBHDF5IO(str(path), "w") as io:
            io.write(f)
    return path


@pytest.fixture
def reads(monkeypatch):
    """``{dataset name: [key, ...]}`` of every h5py read while the test runs."""
    log: dict[str, list] = defaultdict(list)
    getitem, read_direct = h5py.Dataset.__getitem__, h5py.Dataset.read_direct

    def counted_getitem(self, key, *args, **kwargs):
        log[self.name].append(key)
        return getitem(self, key, *args, **kwargs)

    def counted_read_direct(self, *args, **kwargs):
        log[self.name].append("read_direct")
        return read_direct(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", counted_getitem)
    monkeypatch.setattr(h5py.Dataset, "read_direct", counted_read_direct)
    return log


def _units_reads(log) -> dict[str, int]:
    return {k: len(v) for k, v in log.items() if k.startswith("/units/")}


def test_units_table_one_bulk_read_per_column_whatever_the_number_of_units(tmp_path, reads):
    counts = {}
    for n in (3, 300):
        path = _write(tmp_path / f"u{n}.nwb", n)
        reads.clear()
        trains = read_spike_times(path)
        assert len(trains) == n
        counts[n] = _units_reads(reads)
        assert counts[n] == {
            "/units/id": 1,
            "/units/spike_times": 1,
            "/units/spike_times_index": 1,
        }, counts[n]
        reads.clear()
        x = read_spike_counts(path, 0.5)
        assert x.sizes["unit"] == n and int(x.sum()) == sum(t.size for t in trains.values())
        assert max(_units_reads(reads).values()) == 1
        # the DataTree reads each small column once and leaves spike_times lazy
        reads.clear()
        tree = open_nwb(path)
        unit_reads = _units_reads(reads)
        assert "/units/spike_times" not in unit_reads
        assert max(unit_reads.values()) == 1, unit_reads
        assert isinstance(tree["units"]["spike_times"].data, da.Array)
        assert tree["units"]["n_spikes"].values.tolist() == [t.size for t in trains.values()]
    assert counts[3] == counts[300]


def test_read_images_is_lazy_and_slices_read_contiguous_frames(tmp_path, reads, monkeypatch):
    path = _write(tmp_path / "img.nwb", 2)
    # chunks of 8 frames, so that a slice spans two chunks
    monkeypatch.setattr(nwb_lazy, "CHUNK_BYTES", 8 * FRAMES[0].nbytes)
    reads.clear()
    images = read_images(path)
    movie = images["/acquisition/movie"]
    mean = images["/processing/ophys/Backgrounds/meanImg"]
    assert "/acquisition/movie/data" not in reads and not any("meanImg" in k for k in reads)
    assert isinstance(movie.data, da.Array) and isinstance(mean.data, da.Array)
    assert movie.dims == ("time", "y", "x") and movie.data.chunks[0][0] == 8
    np.testing.assert_allclose(movie.time.values, np.arange(40) / 10.0)

    reads.clear()
    part = movie[10:20].values
    np.testing.assert_array_equal(part, FRAMES[10:20])
    keys = reads["/acquisition/movie/data"]
    assert len(keys) == 2  # chunks [8, 16) and [16, 24), each read once
    frames = []
    for key in keys:
        key = key if isinstance(key, tuple) else (key,)
        assert all(isinstance(k, slice) and k.step in (None, 1) for k in key), key
        t = key[0]
        frames.extend(range(t.start, t.stop))
    # only the two chunks the slice overlaps, each one contiguous hyper-slab read once
    assert sorted(frames) == list(range(8, 24))

    reads.clear()
    np.testing.assert_array_equal(mean.values, MEAN)
    assert len(reads["/processing/ophys/Backgrounds/meanImg"]) == 1


def test_datatree_series_is_dask_and_reads_contiguous_slabs(tmp_path, reads):
    path = _write(tmp_path / "tree.nwb", 1)
    reads.clear()
    data = open_nwb(path)["acquisition/movie"]["data"]
    assert isinstance(data.data, da.Array)
    assert "/acquisition/movie/data" not in reads
    np.testing.assert_array_equal(data[5:9, 2:4].values, FRAMES[5:9, 2:4])
    (key,) = reads["/acquisition/movie/data"]  # one chunk (the whole small movie), one read
    assert key == (slice(0, 40, None), slice(0, 6, None), slice(0, 5, None))


def test_lazy_arrays_pickle_without_an_open_file(tmp_path):
    import pickle

    path = _write(tmp_path / "p.nwb", 1)
    movie = read_images(path)["/acquisition/movie"]
    again = pickle.loads(pickle.dumps(movie))
    np.testing.assert_array_equal(again[3].values, FRAMES[3])
