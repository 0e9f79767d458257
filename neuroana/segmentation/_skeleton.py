"""Per-instance Lee skeletons computed on the bounding box (with a 1-voxel zero pad).

``skimage.morphology.skeletonize`` on a 3-D mask is Lee (1994) thinning, which scans voxels in
raster order and looks only at 26-neighbourhoods; cropping to the bounding box plus a zero border
keeps the raster order and every neighbourhood, so the skeleton is the same as on the full
volume (``tests/segmentation/test_skeleton.py`` checks this on the reference bank).
"""

from __future__ import annotations

import numpy as np
from skimage.morphology import skeletonize

__all__ = ["skeleton_of_flat"]


def skeleton_of_flat(
    flat: np.ndarray, shape: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Skeleton voxel coordinates ``(z, y, x)`` (raster order) of the mask given by ``flat``."""
    if len(flat) == 0:
        e = np.zeros(0, dtype=np.intp)
        return e, e, e
    z, y, x = np.unravel_index(flat, shape)
    lo = (z.min(), y.min(), x.min())
    hi = (z.max(), y.max(), x.max())
    crop = np.zeros(tuple(int(b - a + 3) for a, b in zip(lo, hi, strict=True)), dtype=bool)
    crop[z - lo[0] + 1, y - lo[1] + 1, x - lo[2] + 1] = True
    sk = skeletonize(crop)
    # thinning only deletes voxels: the skeleton is read at the mask's own voxels (no scan of the
    # crop), then put in raster order (what np.nonzero on the full volume gives)
    sel = np.sort(flat[sk[z - lo[0] + 1, y - lo[1] + 1, x - lo[2] + 1]])
    sz, sy, sx = np.unravel_index(sel, shape)
    return sz.astype(np.intp), sy.astype(np.intp), sx.astype(np.intp)
