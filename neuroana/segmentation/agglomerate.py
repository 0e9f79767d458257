"""Affinities -> multi-channel instances by mutex watershed (the ``mwatershed`` package).

Steps:

1. Voxels are *single* where ``fg > fg_threshold`` and the instance-count class is 1, *overlap*
   where the count class is 2 (two or more neurons), background otherwise.
2. Mutex watershed (Wolf et al., TPAMI 2020; ``mwatershed.agglom``) on the single voxels: edge
   weight ``affinity - bias`` (positive attracts, negative repels), for all offsets, short and long
   range. Edges touching non-single voxels are made weakly repulsive, so background and overlap
   voxels stay singletons and never bridge two neurons. Long-range attractive edges re-join an
   instance cut in two by an overlap region.
3. Each connected region of overlap voxels is added to the instances it touches (within
   ``overlap_search`` voxels): as a whole when it touches one or two (a crossing or a
   fasciculating pair), else each voxel to its two nearest (within ``overlap_search``), so the
   two neurons of a crossing or fasciculation both keep the shared voxels.
4. Optionally (``merge_size``), small fragments are merged into the touching fragment they have
   the highest mean affinity to.
5. Instances under ``min_size`` voxels are dropped; each instance becomes one channel (FISBe
   layout, channel ``i`` holds ``i + 1``).

``mwatershed`` is imported lazily; it is an optional dependency (``pip install mwatershed``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from neuroana.errors import MissingDependencyError

__all__ = ["MissingDependencyError", "agglomerate"]


def _mws():
    try:
        import mwatershed
    except ImportError as err:
        raise MissingDependencyError(
            "agglomerate() needs the mutex-watershed package 'mwatershed' "
            "(pip install mwatershed); it is not installed"
        ) from err
    return mwatershed


def _mws_labels(single, affinities, offsets, bias, strides):
    """Mutex watershed restricted to ``single`` voxels; returns int labels (0 elsewhere)."""
    from neuroana.segmentation.unet import _shift_slices

    mws = _mws()
    shape = single.shape
    w = affinities.astype(np.float64) - bias
    for k, o in enumerate(offsets):
        src, dst = _shift_slices(o, shape)
        valid = np.zeros(shape, bool)
        valid[src] = single[src] & single[dst]
        w[k][~valid] = -1e-3
    # offsets longer than the volume have no edges (and mwatershed rejects them)
    use = [
        k
        for k, o in enumerate(offsets)
        if all(abs(int(d)) < n for d, n in zip(o, shape, strict=True))
    ]
    if strides is not None:
        strides = [strides[k] for k in use]
    lab = mws.agglom(w[use], [list(map(int, offsets[k])) for k in use], strides=strides)
    lab = np.where(single, lab.astype(np.int64) + 1, 0)  # mwatershed labels singletons 0
    lone = single & (lab == 1)
    lab[lone] = lab.max() + 1 + np.arange(int(lone.sum()))
    ids, inv = np.unique(lab, return_inverse=True)
    inv = inv.reshape(shape)
    if ids[0] != 0:
        inv = inv + 1
    return inv.astype(np.int64)


def _merge_small(lab, affinities, offsets, merge_size, merge_affinity):
    """Merge fragments of fewer than ``merge_size`` voxels into the touching fragment with the
    highest mean affinity across their 1-voxel edges, when that mean is at least
    ``merge_affinity`` (smallest fragments first; union-find on fragment ids)."""
    from neuroana.segmentation.unet import _shift_slices

    n = int(lab.max())
    if n < 2:
        return lab
    keys, vals = [], []
    for k, o in enumerate(offsets):
        if max(abs(int(v)) for v in o) != 1:
            continue
        src, dst = _shift_slices(o, lab.shape)
        a, b = lab[src].ravel(), lab[dst].ravel()
        ok = (a != b) & (a > 0) & (b > 0)
        lo, hi = np.minimum(a[ok], b[ok]), np.maximum(a[ok], b[ok])
        keys.append(lo * (n + 1) + hi)
        vals.append(affinities[k][src].ravel()[ok])
    if not keys or not sum(len(x) for x in keys):
        return lab
    key, inv = np.unique(np.concatenate(keys), return_inverse=True)
    mean = np.bincount(inv, np.concatenate(vals)) / np.bincount(inv)
    pa, pb = key // (n + 1), key % (n + 1)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    parent = np.arange(n + 1)

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for f in np.argsort(sizes[1:], kind="stable") + 1:
        r = root(f)
        if sizes[r] >= merge_size:
            continue
        sel = np.flatnonzero((pa == f) | (pb == f))
        if not len(sel):
            continue
        best = sel[np.argmax(mean[sel])]
        if mean[best] < merge_affinity:
            continue
        other = root(int(pb[best] if pa[best] == f else pa[best]))
        if other != r:
            parent[r] = other
            sizes[other] += sizes[r]
    roots = np.array([root(i) for i in range(n + 1)])
    return roots[lab]


def _assign_overlaps(lab: np.ndarray, overlap: np.ndarray, search: int) -> list[tuple]:
    """For each overlap voxel, the up to two nearest instance labels touching its region."""
    from scipy.spatial import cKDTree

    regions, n = ndimage.label(overlap, structure=np.ones((3, 3, 3)))
    out = []
    for r, sl in enumerate(ndimage.find_objects(regions), start=1):
        if sl is None:
            continue
        box = tuple(
            slice(max(s.start - search, 0), min(s.stop + search, dim))
            for s, dim in zip(sl, lab.shape, strict=True)
        )
        reg = regions[box] == r
        sub = lab[box]
        near = ndimage.binary_dilation(reg, iterations=search) & (sub > 0)
        cand = np.unique(sub[near])
        vox = np.argwhere(reg)
        if len(cand) == 0:
            continue
        dists = []
        for c in cand:
            pts = np.argwhere(sub == c)
            d, _ = cKDTree(pts).query(vox)
            dists.append(d)
        dists = np.stack(dists, 1)  # (n_vox, n_cand)
        off = np.array([s.start for s in box])
        if len(cand) <= 2:
            # a region touching one or two instances (a crossing, a fasciculating pair) belongs
            # to them as a whole: voxels deep inside a long shared stretch are far from the
            # few voxels where the pair separates, but are still shared
            for c in cand:
                out.append((vox + off, np.full(len(vox), c, dtype=cand.dtype)))
            continue
        order = np.argsort(dists, axis=1, kind="stable")[:, :2]
        for j in range(order.shape[1]):
            labs = cand[order[:, j]]
            ok = dists[np.arange(len(vox)), order[:, j]] <= search
            out.append((vox[ok] + off, labs[ok]))
    return out


def agglomerate(
    fg: np.ndarray,
    numinst: np.ndarray,
    affinities: np.ndarray,
    offsets: Sequence[Sequence[int]],
    *,
    fg_threshold: float = 0.5,
    bias: float = 0.5,
    overlap_search: int = 3,
    min_size: int = 100,
    strides: Sequence[Sequence[int]] | None = None,
    merge_size: int = 0,
    merge_affinity: float = 0.5,
) -> np.ndarray:
    """Instances (N, Z, Y, X) from predicted foreground, instance counts and affinities.

    Parameters
    ----------
    fg : array (Z, Y, X)
        Foreground probability.
    numinst : array (Z, Y, X) int or (3, Z, Y, X) float
        Instance-count class {0, 1, 2+} per voxel, or its class probabilities.
    affinities : array (K, Z, Y, X)
        Probability that ``p`` and ``p + offsets[k]`` share an instance.
    offsets : sequence of K (dz, dy, dx)
    fg_threshold : float
        Foreground probability threshold.
    bias : float
        Affinities above ``bias`` attract, below repel (0.5 for calibrated probabilities).
    overlap_search : int
        How far (voxels) an overlap voxel looks for the instances it belongs to.
    min_size : int
        Instances with fewer voxels (overlaps included) are dropped.
    strides : sequence of K (sz, sy, sx), optional
        Passed to ``mwatershed.agglom`` (sparser long-range edges).
    merge_size : int
        After the mutex watershed, fragments with fewer voxels are merged into the touching
        fragment with the highest mean nearest-neighbour affinity (0: off). Noisy affinities
        leave many small fragments, which the FISBe size filter (800 voxels) would delete.
    merge_affinity : float
        Smallest mean affinity at which such a merge happens.

    Returns
    -------
    numpy.ndarray (N, Z, Y, X)
        FISBe layout (channel ``i`` holds ``i + 1``; ``uint8`` for N < 256, else ``uint16``).

    Raises
    ------
    MissingDependencyError
        ``mwatershed`` is not installed.
    ValueError
        Inconsistent shapes.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.segmentation.unet import make_targets
    >>> gt = np.zeros((2, 1, 6, 20), np.uint8)
    >>> gt[0, 0, 1, :] = 1; gt[1, 0, 4, :] = 2
    >>> t = make_targets(gt, [(0, 1, 0), (0, 0, 1)])
    >>> inst = agglomerate(t.fg, t.numinst, t.affinities, [(0, 1, 0), (0, 0, 1)], min_size=1)
    >>> inst.shape[0], bool(((inst > 0) == (gt > 0)).all())
    (2, True)
    """
    fg = np.asarray(fg)
    aff = np.asarray(affinities)
    ni = np.asarray(numinst)
    if fg.ndim != 3:
        raise ValueError(f"fg has shape {fg.shape}; expected (z, y, x)")
    if ni.ndim == 4:
        ni = ni.argmax(0)
    if ni.shape != fg.shape or aff.shape[1:] != fg.shape:
        raise ValueError(
            f"shapes fg {fg.shape}, numinst {ni.shape}, affinities {aff.shape}; expected the same "
            "(z, y, x) and affinities (K, z, y, x)"
        )
    if aff.shape[0] != len(offsets):
        raise ValueError(f"{aff.shape[0]} affinity channels for {len(offsets)} offsets")
    fgm = fg > fg_threshold
    single = fgm & (ni == 1)
    overlap = fgm & (ni >= 2)
    lab = _mws_labels(single, aff, offsets, bias, strides)
    if merge_size > 0:
        lab = _merge_small(lab, aff, offsets, int(merge_size), float(merge_affinity))
        ids, inv = np.unique(lab, return_inverse=True)
        lab = (inv.reshape(lab.shape) + (ids[0] != 0)).astype(np.int64)
    n = int(lab.max())
    extra = _assign_overlaps(lab, overlap, int(overlap_search)) if overlap.any() else []
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    for _vox, labs in extra:
        sizes += np.bincount(labs, minlength=n + 1)
    keep = np.flatnonzero(sizes[1:] >= min_size) + 1
    new = np.zeros(n + 1, np.int64)
    new[keep] = np.arange(1, len(keep) + 1)
    dtype = np.uint8 if len(keep) < 256 else np.uint16
    out = np.zeros((len(keep),) + fg.shape, dtype)
    boxes = ndimage.find_objects(lab)
    for i, lbl in enumerate(keep):
        sl = boxes[lbl - 1]
        if sl is not None:
            out[i][sl][lab[sl] == lbl] = i + 1
    for vox, labs in extra:
        ch = new[labs]
        ok = ch > 0
        out[(ch[ok] - 1,) + tuple(vox[ok].T)] = ch[ok]
    return out
