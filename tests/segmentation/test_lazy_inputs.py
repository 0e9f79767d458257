"""Lazy (channel-by-channel) inputs give exactly the in-memory results; one channel read at a time."""

from __future__ import annotations

import json
from pathlib import Path

import dask.array as da
import numpy as np
import pytest

from neuroana.datasets.fisbe_synth import make_fisbe_volume, perturb_prediction
from neuroana.io.fisbe import write_fisbe
from neuroana.segmentation import FisbeInputError, evaluate_files, evaluate_instances


class _Recorder:
    """A (C, Z, Y, X) array-like that records every read and refuses multi-channel reads."""

    def __init__(self, arr: np.ndarray) -> None:
        self._arr, self.shape, self.dtype, self.ndim = arr, arr.shape, arr.dtype, arr.ndim
        self.reads: list = []

    def __getitem__(self, key):
        if not isinstance(key, int | np.integer):
            raise AssertionError(f"read {key!r}: expected one whole channel at a time")
        self.reads.append(int(key))
        return self._arr[key].copy()


def _same_json(a: dict, b: dict) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _bank_cases(shared_dir):
    d = Path(shared_dir) / "fisbe_reference"
    if not d.is_dir():
        pytest.skip(f"{d} absent")
    out = []
    for npz in sorted(d.glob("pub*.npz")):
        ref = json.loads(npz.with_suffix(".json").read_text())
        if ref["official"]["status"] == "ok":
            out.append(npz)
    return out


def test_bank_lazy_inputs_identical_to_in_memory(shared_dir, tmp_path):
    """Every reference case: dask, memmap and a read-recording array give the same dict."""
    for npz in _bank_cases(shared_dir):
        d = np.load(npz, allow_pickle=False)
        gt, pred = d["gt"], d["pred"]
        args = (str(d["labeling"]), d["dim_neurons"].tolist())
        ref = evaluate_instances(gt, pred, *args)
        chunks = (1,) + tuple(max(1, s // 2) for s in gt.shape[1:])
        lazy_dask = evaluate_instances(
            da.from_array(gt, chunks=chunks), da.from_array(pred, chunks=chunks), *args
        )
        assert _same_json(lazy_dask, ref), npz.stem
        mm = tmp_path / f"{npz.stem}.npy"
        np.save(mm, pred)
        g_rec = _Recorder(gt)
        lazy_mm = evaluate_instances(g_rec, np.load(mm, mmap_mode="r"), *args)
        assert _same_json(lazy_mm, ref), npz.stem
        assert sorted(g_rec.reads) == list(range(gt.shape[0]))  # each channel read exactly once


def test_evaluate_files_reads_lazily_and_matches(tmp_path):
    ds = make_fisbe_volume((24, 64, 64), n_neurons=3, n_fasciculating=1, raw=False, random_state=3)
    gt = ds.gt.values
    pred = perturb_prediction(gt, random_state=3)
    write_fisbe(tmp_path / "s.zarr", gt=gt)
    write_fisbe(tmp_path / "s_pred.zarr", pred=pred)
    r = evaluate_files(tmp_path / "s.zarr", tmp_path / "s_pred.zarr")
    assert _same_json(r["metrics"], evaluate_instances(gt, pred))
    assert r["summary"]["nGT"] == gt.shape[0]


def test_lazy_bad_input_errors():
    gt = np.zeros((1, 8, 8, 40), np.uint8)
    gt[0, 2:7, 2:7, 2:38] = 1
    with pytest.raises(FisbeInputError, match="float"):
        evaluate_instances(gt, da.from_array(gt.astype(np.float32)))
    neg = gt.astype(np.int16)
    neg[0, 0, 0, 0] = -3
    with pytest.raises(FisbeInputError, match="negative id -3"):
        evaluate_instances(gt, da.from_array(neg))
    with pytest.raises(FisbeInputError, match="spatial shape"):
        evaluate_instances(gt, da.from_array(gt[:, :4]))
    with pytest.raises(FisbeInputError, match="non-empty"):
        evaluate_instances(gt, da.zeros((0, 8, 8, 40), dtype=np.uint8))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.uint64, np.float32])
def test_word_scan_nonzero_equals_flatnonzero(dtype):
    from neuroana.io.fisbe import _flat_nonzero

    rng = np.random.default_rng(0)
    for shape in [(64, 64, 64), (3, 5, 7), (1, 1, 1), (2, 4, 8)]:
        block = np.zeros(shape, dtype)
        hit = rng.random(shape) < 0.01
        block[hit] = rng.integers(1, 100, int(hit.sum()))
        np.testing.assert_array_equal(_flat_nonzero(block), np.flatnonzero(block))
        np.testing.assert_array_equal(_flat_nonzero(block[:, ::2]), np.flatnonzero(block[:, ::2]))


def test_stored_chunk_reading_equals_zarr(tmp_path):
    """channel_nonzero and channel reads from the stored chunks (fetched concurrently) equal a
    plain zarr read, on a channel whose neuron crosses several chunks."""
    from neuroana.io.fisbe import GT_KEY, open_fisbe_labels

    gt = np.zeros((2, 70, 130, 140), np.uint8)
    gt[0, 5:66, 60:64, 10:130] = 1
    gt[1, 30:33, 3:127, 70:72] = 2
    write_fisbe(tmp_path / "c.zarr", gt=gt)
    arr = open_fisbe_labels(tmp_path / "c.zarr", GT_KEY)
    for c in range(2):
        idx, vals = arr.channel_nonzero(c)
        np.testing.assert_array_equal(idx, np.flatnonzero(gt[c]))
        np.testing.assert_array_equal(vals, gt[c].reshape(-1)[idx])
        np.testing.assert_array_equal(arr[c], gt[c])
