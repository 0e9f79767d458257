"""The foreground-only Lee thinning gives skimage's ``skeletonize`` voxel for voxel.

``skimage.morphology.skeletonize`` (Lee 1994 on a zero-padded copy of the full volume) is the
oracle: random blobs, tubes, slabs, plates, noise, single voxels, one-slice masks, volumes one
slice deep, masks touching the volume border and masks of several components.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage
from skimage.morphology import skeletonize

from neuroana.segmentation._lee import thin_keys
from neuroana.segmentation._skeleton import skeleton_of_flat

REPO = Path(__file__).resolve().parents[2]


def _assert_same(mask: np.ndarray) -> int:
    """Our skeleton of ``mask`` equals skeletonize's; returns its voxel count."""
    ref = np.nonzero(skeletonize(mask))
    got = skeleton_of_flat(np.flatnonzero(mask), mask.shape)
    assert len(got[0]) == len(ref[0]), (mask.shape, int(mask.sum()))
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_array_equal(a, b)
        assert b.dtype == np.intp
    return len(ref[0])


def _line(rng, shape, n_pts=40) -> np.ndarray:
    """A random polyline through the volume, one voxel wide."""
    v = np.zeros(shape, bool)
    ends = rng.uniform(0, 1, (2, 3)) * (np.array(shape) - 1)
    for t in np.linspace(0, 1, n_pts * max(shape)):
        v[tuple(np.round(ends[0] + t * (ends[1] - ends[0])).astype(int))] = True
    return v


def _random_mask(rng, kind: str) -> np.ndarray:
    shape = tuple(int(s) for s in rng.integers(2, 22, 3))
    if kind == "noise":
        return rng.random(shape) < rng.uniform(0.05, 0.95)
    if kind == "blobs":
        seeds = rng.random(shape) < rng.uniform(0.005, 0.05)
        return ndimage.binary_dilation(seeds, iterations=int(rng.integers(1, 4)))
    if kind == "smooth":  # thresholded smoothed noise: rounded blobs with holes and handles
        field = ndimage.gaussian_filter(rng.random(shape), rng.uniform(0.8, 2.5))
        return field > np.quantile(field, rng.uniform(0.3, 0.8))
    if kind == "tube":
        return ndimage.binary_dilation(_line(rng, shape), iterations=int(rng.integers(1, 3)))
    if kind == "slab":  # a thick box, maybe touching some faces of the volume
        lo = [int(rng.integers(0, s)) for s in shape]
        hi = [int(rng.integers(a + 1, s + 1)) for a, s in zip(lo, shape, strict=True)]
        v = np.zeros(shape, bool)
        v[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = True
        return v & (rng.random(shape) < rng.choice([1.0, 0.97]))
    if kind == "plate":  # one voxel thin along a random axis
        v = np.zeros(shape, bool)
        ax = int(rng.integers(3))
        idx = [slice(None)] * 3
        idx[ax] = int(rng.integers(shape[ax]))
        v[tuple(idx)] = rng.random(v[tuple(idx)].shape) < rng.uniform(0.6, 1.0)
        return v
    if kind == "sparse":  # single voxels, pairs and small clusters: many components
        return ndimage.binary_dilation(rng.random(shape) < 0.01, rng.random((3, 3, 3)) < 0.3)
    raise ValueError(kind)


KINDS = ("noise", "blobs", "smooth", "tube", "slab", "plate", "sparse")


@pytest.mark.parametrize("kind", KINDS)
def test_random_masks_identical_to_skeletonize(kind):
    rng = np.random.default_rng(KINDS.index(kind) + 100)
    n_multi = kept = 0
    for _ in range(60):
        mask = _random_mask(rng, kind)
        kept += _assert_same(mask) > 0
        n_multi += ndimage.label(mask, np.ones((3, 3, 3)))[1] > 1
    assert kept >= 40  # most skeletons are not empty
    if kind in ("blobs", "sparse"):
        assert n_multi >= 20  # several components in one mask


def test_one_slice_masks_and_one_slice_volumes():
    rng = np.random.default_rng(7)
    for t in range(40):
        shape = (int(rng.integers(2, 8)), int(rng.integers(3, 25)), int(rng.integers(3, 25)))
        plane = ndimage.binary_dilation(rng.random(shape[1:]) < 0.05, iterations=1 + t % 3)
        vol = np.zeros(shape, bool)
        vol[int(rng.integers(shape[0]))] = plane
        _assert_same(vol)  # 6 borders: the volume is deeper than the mask
        _assert_same(plane[None])  # a volume one slice deep: 4 in-plane borders
    # the two rules give different skeletons, so each path is really checked
    square = np.zeros((1, 7, 7), bool)
    square[0, 1:6, 1:6] = True
    deep = np.zeros((3, 7, 7), bool)
    deep[1] = square[0]
    assert not np.array_equal(skeletonize(square)[0], skeletonize(deep)[1])
    _assert_same(square)
    _assert_same(deep)


def test_tiny_masks():
    for shape in [(1, 1, 1), (1, 1, 5), (1, 5, 1), (5, 1, 1), (2, 2, 2), (3, 3, 3), (4, 4, 4)]:
        for fill in (True, False):
            v = np.full(shape, fill)
            _assert_same(v)
    v = np.zeros((5, 6, 7), bool)
    for corner in [(0, 0, 0), (4, 5, 6), (0, 5, 0), (2, 3, 3)]:
        v[:] = False
        v[corner] = True
        assert _assert_same(v) == 1  # a single voxel is its own skeleton
    # the re-check repeats only the simple-point test, so skeletonize deletes a whole 2x2x2
    # cube and a 2 x 1 x 2 square (each voxel is simple when its turn comes, the last one has no
    # neighbour left) but keeps 2 voxels of a 1 x 2 x 2 square: the same here
    for box, n_kept in (((2, 2, 2), 0), ((2, 1, 2), 0), ((1, 2, 2), 2)):
        v[:] = False
        v[1 : 1 + box[0], 1 : 1 + box[1], 1 : 1 + box[2]] = True
        assert _assert_same(v) == n_kept


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    arrays(
        bool,
        st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9)),
        elements=st.booleans(),
    )
)
def test_hypothesis_masks_identical_to_skeletonize(mask):
    _assert_same(mask)


def test_fisbe_like_neurons_identical_to_skeletonize():
    # long branching tubes spanning the volume (what the FISBe metrics thin), several per mask
    from neuroana.datasets.fisbe_synth import make_fisbe_volume

    gt = make_fisbe_volume((40, 80, 80), n_neurons=4, raw=False, random_state=11)["gt"].values
    assert _assert_same(gt[0] > 0) > 20
    assert _assert_same(gt.max(axis=0) > 0) > 100  # all neurons in one mask, touching


def test_keys_must_be_sorted_and_unique():
    keys = np.array([10, 12, 11], np.int64)
    with pytest.raises(ValueError, match="strictly increasing"):
        thin_keys(keys, 5, 25)
    with pytest.raises(ValueError, match="strictly increasing"):
        thin_keys(np.array([10, 10], np.int64), 5, 25)
    assert thin_keys(np.zeros(0, np.int64), 5, 25).shape == (0,)


def test_numba_is_imported_at_the_first_skeleton_only():
    code = (
        "import sys, json, numpy as np; import neuroana.io; "
        "import neuroana.segmentation.metrics as m; a = 'numba' in sys.modules; "
        "m.skeleton_of_flat(np.arange(3), (3, 3, 3)); print(json.dumps([a, 'numba' in sys.modules]))"
    )
    assert _json_of_fresh_process(code) == [False, True]


def _json_of_fresh_process(code: str):
    """Run ``code`` in a fresh interpreter on this checkout; its last line of output, as JSON."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _euler(cubes: np.ndarray) -> np.ndarray:
    """Euler characteristic of the union of closed unit cubes, per ``(n, a, b, c)`` mask:
    V - E + F - C, a cell counted when a voxel it bounds is foreground."""
    p = np.pad(cubes, ((0, 0), (1, 1), (1, 1), (1, 1)))
    total = np.zeros(len(p), int)
    for t in np.ndindex(2, 2, 2):  # t[axis] = 1: the cell lies on a plane between two voxels
        cov = p
        for ax, on_plane in enumerate(t):
            if on_plane:
                lo = [slice(None)] * 4
                hi = [slice(None)] * 4
                lo[ax + 1], hi[ax + 1] = slice(None, -1), slice(1, None)
                cov = cov[tuple(lo)] | cov[tuple(hi)]
        total += (-1) ** (3 - sum(t)) * cov.reshape(len(p), -1).sum(1)
    return total


def test_euler_and_simple_point_tests_against_first_principles():
    from neuroana.segmentation import _lee

    rng = np.random.default_rng(5)
    n = 3000
    nb = rng.random((n, 27)) < rng.uniform(0.05, 0.9, (n, 1))
    nb[:, 13] = False
    masks = (nb.astype(np.int64) << np.arange(27)).sum(1)
    cube = nb.reshape(n, 3, 3, 3)  # bit 9 (dz + 1) + 3 (dy + 1) + (dx + 1): C order
    with_centre = cube.copy()
    with_centre[:, 1, 1, 1] = True
    delta = _euler(with_centre) - _euler(cube)
    occ = np.zeros((n, 8), int)
    for k in range(7):
        occ |= ((masks[:, None] >> _lee.OCTANT_BITS[None, :, k]) & 1) << k
    # the octant table sums to 8 x the change of the Euler characteristic
    np.testing.assert_array_equal(_lee.EULER_DELTA[occ].sum(1), 8 * delta)
    assert 0.2 < np.mean(delta == 0) < 0.8
    n_simple = 0
    for m, c, d in zip(masks[:500], cube, delta, strict=False):
        assert _lee._euler_invariant(m, _lee.OCTANT_BITS, _lee.EULER_DELTA) == (d == 0)
        n_comp = ndimage.label(c, np.ones((3, 3, 3)))[1]
        assert _lee._simple(m, _lee.ADJACENT) == (n_comp <= 1)
        n_simple += n_comp <= 1
    assert 50 < n_simple < 450


def test_kernel_works_where_numba_cannot_cache():
    # no writable cache directory (numba raises RuntimeError for cache=True): compiled per process
    from numba.core import caching

    if not hasattr(getattr(caching, "CacheImpl", None), "_locator_classes"):
        pytest.skip("this numba version has no CacheImpl._locator_classes to empty")
    code = (
        "import json, numpy as np; from numba.core import caching; "
        "caching.CacheImpl._locator_classes = []; "
        "from neuroana.segmentation._lee import lee_thin; "
        "from neuroana.segmentation._skeleton import skeleton_of_flat; "
        "from skimage.morphology import skeletonize; "
        "v = np.zeros((6, 9, 9), bool); v[1:5, 2:8, 1:7] = True; "
        "ref = np.nonzero(skeletonize(v)); got = skeleton_of_flat(np.flatnonzero(v), v.shape); "
        "print(json.dumps([lee_thin._cache.__class__.__name__, "
        "all(np.array_equal(a, b) for a, b in zip(ref, got))]))"
    )
    assert _json_of_fresh_process(code) == ["NullCache", True]
