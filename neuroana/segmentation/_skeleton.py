"""Per-instance Lee skeletons computed on the foreground voxels only, concurrently.

``skimage.morphology.skeletonize`` on a 3-D mask is Lee (1994) thinning, which scans voxels in
raster order and looks only at 26-neighbourhoods. :mod:`neuroana.segmentation._lee` runs the same
sweeps on the mask's own voxels (sorted raster keys, a neighbour mask per voxel), never on a box
of empty voxels, and gives the same skeleton voxel for voxel
(``tests/segmentation/test_lee_thinning.py`` checks it against ``skeletonize`` on random masks and
the reference bank).

The kernel is compiled by numba (cached on disk after the first run) and runs with the GIL
released, so the instances of a sample are thinned on a thread pool: as many threads as the
cores this process may use (``os.sched_getaffinity``), never more than there are instances,
largest instance first; the metrics start thinning the GT instances while the prediction is
still being read (:func:`submit_skeletons`). numba is imported at the first skeleton, not when
this module is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from neuroana.backend.cores import usable_cores

__all__ = ["skeleton_of_flat", "skeletons_of_flats", "submit_skeletons"]

Coords = tuple[np.ndarray, np.ndarray, np.ndarray]


def skeleton_of_flat(flat: np.ndarray, shape: tuple[int, int, int]) -> Coords:
    """Skeleton voxel coordinates ``(z, y, x)`` (raster order) of the mask given by ``flat``.

    ``flat`` holds the sorted flat indices of the mask's voxels in a volume of shape ``shape``;
    the result is ``np.nonzero(skimage.morphology.skeletonize(mask))`` of that mask. Only the
    mask's voxels are visited (no bounding box, no dense volume), so a mask of distant fragments
    costs what its voxels cost.
    """
    from neuroana.segmentation._lee import thin_keys  # numba: imported at the first skeleton

    if len(flat) == 0:
        e = np.zeros(0, dtype=np.intp)
        return e, e, e
    sx, sxy = shape[2] + 2, (shape[1] + 2) * (shape[2] + 2)  # padded: no neighbour wraps around
    z, y, x = np.unravel_index(flat, shape)
    keys = (z.astype(np.int64) + 1) * sxy + (y.astype(np.int64) + 1) * sx + x + 1
    del z, y, x
    keep = thin_keys(keys, sx, sxy, n_borders=4 if shape[0] == 1 else 6)
    return tuple(c.astype(np.intp) for c in np.unravel_index(flat[keep], shape))


def submit_skeletons(
    pool: ThreadPoolExecutor, flats: Sequence[np.ndarray], shape: tuple[int, int, int]
) -> list[Future]:
    """Submit :func:`skeleton_of_flat` of every mask to ``pool``, largest mask (voxel count)
    first; returns the futures in input order."""
    order = sorted(range(len(flats)), key=lambda i: -len(flats[i]))
    futures: list = [None] * len(flats)
    for i in order:
        futures[i] = pool.submit(skeleton_of_flat, flats[i], shape)
    return futures


def skeletons_of_flats(
    flats: Sequence[np.ndarray], shape: tuple[int, int, int], n_threads: int | None = None
) -> list[Coords]:
    """:func:`skeleton_of_flat` of every mask in ``flats``, on up to ``n_threads`` threads.

    ``n_threads=None`` uses :func:`usable_cores`; the result is the same for any thread count.
    """
    n = len(flats)
    workers = min(n, usable_cores() if n_threads is None else max(1, int(n_threads)))
    if workers <= 1:
        return [skeleton_of_flat(f, shape) for f in flats]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [f.result() for f in submit_skeletons(pool, flats, shape)]
