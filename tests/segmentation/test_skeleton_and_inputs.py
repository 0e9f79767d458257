"""Instance skeletons equal full-volume skeletonize; bad input gives clear errors; IO round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skimage.morphology import skeletonize

from neuroana.datasets.fisbe_synth import make_fisbe_volume, perturb_prediction
from neuroana.io.fisbe import read_fisbe, read_split_file, write_fisbe
from neuroana.segmentation import (
    EmptyGroundTruthError,
    FisbeInputError,
    evaluate_files,
    evaluate_instances,
    key_metrics,
)
from neuroana.segmentation._skeleton import skeleton_of_flat, skeletons_of_flats


def test_reference_bank_skeletons_identical_to_full_volume(shared_dir):
    bank = Path(shared_dir) / "fisbe_reference"
    if not bank.is_dir():
        pytest.skip("reference bank absent")
    n = 0
    for name in (
        "pub11_fasciculation",
        "pub13_thin_lines",
        "pub14_square_tubes",
        "pub12_crossing_packed",
    ):
        d = np.load(bank / f"{name}.npz")
        for arr in (d["gt"], d["pred"]):
            for c in range(arr.shape[0]):
                for v in np.unique(arr[c])[1:]:
                    mask = arr[c] == v
                    full = np.nonzero(skeletonize(mask.astype(np.uint8)))
                    crop = skeleton_of_flat(np.flatnonzero(mask), mask.shape)
                    for a, b in zip(full, crop, strict=True):
                        np.testing.assert_array_equal(a, b)
                    n += 1
    assert n > 20


def test_touching_border_instance_skeleton_identical():
    rng = np.random.default_rng(3)
    vol = np.zeros((20, 30, 30), bool)
    vol[0:12, 0:5, 3:30] = True  # touches three faces
    vol &= rng.random(vol.shape) < 0.97
    full = np.nonzero(skeletonize(vol))
    crop = skeleton_of_flat(np.flatnonzero(vol), vol.shape)
    assert len(full[0]) > 0
    for a, b in zip(full, crop, strict=True):
        np.testing.assert_array_equal(a, b)


def test_threaded_skeletons_identical_to_public_skeletonize():
    # the pool runs the GIL-free thinning kernel concurrently: every thread count must give
    # what the public skeletonize gives on the full volume, in input order
    vol = make_fisbe_volume((24, 48, 48), n_neurons=5, raw=False, random_state=4)["gt"].values
    flats = [np.flatnonzero(vol[c]) for c in range(vol.shape[0])]
    flats.append(flats[0][:0])  # an empty instance keeps its place
    full = [np.nonzero(skeletonize(vol[c] > 0)) for c in range(vol.shape[0])]
    for n_threads in (1, 2, 3):
        got = skeletons_of_flats(flats, vol.shape[1:], n_threads=n_threads)
        assert len(got) == len(flats) and len(got[-1][0]) == 0
        for ref, sk in zip(full, got, strict=False):
            assert len(ref[0]) > 0
            for a, b in zip(ref, sk, strict=True):
                np.testing.assert_array_equal(a, b)


def test_component_wise_skeleton_identical_to_full_volume():
    # masks of many 26-connected components and masks one slice thick in a deeper volume (must
    # be thinned with all 6 borders, as on the full volume)
    from scipy import ndimage

    rng = np.random.default_rng(2)
    n_multi = 0
    for t in range(12):
        vol = ndimage.binary_dilation(rng.random((14, 24, 30)) < 0.02, iterations=1 + t % 2)
        n_multi += ndimage.label(vol, np.ones((3, 3, 3)))[1] > 1
        cases = [vol, np.zeros_like(vol)]
        cases[1][5] = vol[5] | vol[6]  # one slice thick
        for v in cases:
            full = np.nonzero(skeletonize(v))
            crop = skeleton_of_flat(np.flatnonzero(v), v.shape)
            for a, b in zip(full, crop, strict=True):
                np.testing.assert_array_equal(a, b)
    assert n_multi >= 6


def _tube():
    gt = np.zeros((2, 10, 12, 120), np.uint8)
    gt[0, 2:7, 2:7, 2:118] = 1
    gt[1, 3:8, 5:10, 2:118] = 2
    return gt


def test_bad_inputs_raise_clear_errors():
    gt = _tube()
    with pytest.raises(FisbeInputError, match=r"spatial shape .* differs"):
        evaluate_instances(gt, gt[:, :, :, :50])
    with pytest.raises(FisbeInputError, match="float"):
        evaluate_instances(gt, gt.astype(np.float32))
    neg = gt.astype(np.int16)
    neg[0, 0, 0, 0] = -3
    with pytest.raises(FisbeInputError, match="negative id -3"):
        evaluate_instances(gt, neg)
    with pytest.raises(EmptyGroundTruthError):
        evaluate_instances(np.zeros_like(gt), gt)
    with pytest.raises(FisbeInputError, match="non-empty"):
        evaluate_instances(np.zeros((1, 0, 4, 4), np.uint8), np.zeros((1, 0, 4, 4), np.uint8))
    with pytest.raises(FisbeInputError, match="labeling"):
        evaluate_instances(gt, gt, labeling="half")


def test_planted_errors_give_known_counts():
    # two parallel overlapping tubes; prediction: tube 1 exact, tube 2 split in two halves
    gt = _tube()
    pred = np.zeros((3,) + gt.shape[1:], np.uint8)
    pred[0] = gt[0] > 0
    pred[1][(gt[1] > 0) & (np.arange(120) < 60)] = 2
    pred[2][(gt[1] > 0) & (np.arange(120) >= 60)] = 3
    km = key_metrics(evaluate_instances(gt, pred))
    assert km["nGT"] == 2 and km["nPred"] == 3
    assert km["TP"][0] == 2  # half-tubes still have clDice > 0.1 with tube 2
    assert km["FS"] == 1 and km["FM"] == 0


def test_write_read_roundtrip_and_missing_arrays(tmp_path):
    ds = make_fisbe_volume((16, 32, 32), n_neurons=2, n_fasciculating=1, random_state=2)
    p = tmp_path / "R1-20200101_1_A1.zarr"
    write_fisbe(p, raw=ds.raw.values, gt=ds.gt.values, dim_neurons=[2])
    split = tmp_path / "split.txt"
    split.write_text(
        "(1) samples for FlyLight completely:\ntrain:\nX\n"
        "(2) samples for FlyLight partly:\ntest:\nR1-20200101_1_A1\n"
    )
    r = read_fisbe(p, split_file=split)
    assert r.attrs["labeling"] == "partly" and r.attrs["split"] == "test"
    assert r.attrs["dim_neurons"] == [2]
    assert r.raw.dims == ("channel", "z", "y", "x") and r.raw.dtype == np.uint16
    np.testing.assert_array_equal(r.gt.values, ds.gt.values)
    np.testing.assert_array_equal(r.raw.values, ds.raw.values)
    assert float(r.z[3]) == pytest.approx(3 * 0.44)
    assert read_split_file(split)["X"] == ("completely", "train")
    # atomic overwrite leaves no temporary directories behind
    write_fisbe(p, gt=ds.gt.values)
    assert sorted(x.name for x in tmp_path.iterdir()) == [p.name, "split.txt"]
    # a zarr without the expected arrays
    import zarr

    bad = tmp_path / "bad.zarr"
    zarr.open_group(str(bad), mode="w", zarr_format=2).create_array(
        "volumes/other", shape=(2,), dtype="u1"
    )
    with pytest.raises(FisbeInputError, match="volumes/gt_instances"):
        read_fisbe(bad)
    with pytest.raises(FileNotFoundError):
        read_fisbe(tmp_path / "nope.zarr")


def test_evaluate_files_matches_in_memory(tmp_path):
    ds = make_fisbe_volume((24, 64, 64), n_neurons=3, radius=2.5, raw=False, random_state=4)
    gt = ds.gt.values
    pred = perturb_prediction(gt, random_state=4)
    write_fisbe(tmp_path / "s.zarr", gt=gt)
    write_fisbe(tmp_path / "s_pred.zarr", pred=pred)
    out = evaluate_files(tmp_path / "s.zarr", tmp_path / "s_pred.zarr", labeling="partly")
    assert out["metrics"] == evaluate_instances(gt, pred, "partly")
    assert out["labeling"] == "partly" and out["sample"] == "s"


def test_synthetic_volume_has_planted_structure():
    ds = make_fisbe_volume((32, 64, 64), n_neurons=3, n_fasciculating=1, random_state=0)
    gt = ds.gt.values
    assert gt.shape[0] == 4
    for i in range(4):
        assert set(np.unique(gt[i])) == {0, i + 1}
    # the fasciculating neuron shares voxels with its host
    assert np.any((gt[3] > 0) & (gt[0] > 0))
    # raw: three colours, brighter on neurons than off
    fg = (gt > 0).any(0)
    assert ds.raw.values[:, fg].mean() > 2 * ds.raw.values[:, ~fg].mean()


def test_zero_channel_prediction_scores_as_empty_prediction():
    import numpy as np

    from neuroana.segmentation import evaluate_instances, key_metrics

    gt = np.zeros((1, 8, 40, 40), np.uint8)
    gt[0, 4, 5:35, 20] = 1
    gt[0, 3:6, 5:35, 19:22] = 1
    none = evaluate_instances(gt, np.zeros((0, 8, 40, 40), np.uint8))
    empty = evaluate_instances(gt, np.zeros((1, 8, 40, 40), np.uint8))
    assert none == empty
    k = key_metrics(none)
    assert (k["S"], k["nGT"], k["nPred"], k["FN"][0]) == (0.0, 1, 0, 1)


def test_bundled_split_list_counts_and_read_fisbe_uses_it(tmp_path):
    from collections import Counter

    import numpy as np

    from neuroana.io import read_fisbe, write_fisbe
    from neuroana.io.fisbe import bundled_splits

    splits = bundled_splits()
    counts = Counter(splits.values())
    # the release: 30 completely (18/5/7) and 71 partly (43/12/16) labelled samples
    assert counts == {
        ("completely", "train"): 18,
        ("completely", "val"): 5,
        ("completely", "test"): 7,
        ("partly", "train"): 43,
        ("partly", "val"): 12,
        ("partly", "test"): 16,
    }
    gt = np.zeros((1, 4, 8, 8), np.uint8)
    gt[0, 1:3, 2:6, 4] = 1
    path = tmp_path / "VT058571-20170926_64_G6.zarr"
    write_fisbe(path, gt=gt)
    ds = read_fisbe(path)
    assert (ds.attrs["labeling"], ds.attrs["split"]) == ("partly", "test")
    write_fisbe(tmp_path / "not_a_sample.zarr", gt=gt)
    assert read_fisbe(tmp_path / "not_a_sample.zarr").attrs["split"] == "unknown"
