"""Non-learnt colour-clustering baseline for FISBe (after Duan et al. 2021, as used in the paper).

Multicolour (MCFO) images give each neuron a random colour, so voxels of one neuron share a hue
while their brightness varies (illumination, thickness, PSF). The pipeline:

1. **Normalise and denoise**: clip at ``clip`` (FISBe convention 1500), scale to [0, 1], Gaussian
   filter each channel (the original uses BM4D; a Gaussian is far faster and enough for the
   synthetic data).
2. **Foreground**: the brightest channel above ``fg_threshold``; components under
   ``min_component`` voxels are dropped.
3. **Supervoxels**: distance transform of the foreground, local maxima at least ``min_distance``
   apart as seeds, watershed on the negative distance inside the foreground.
4. **Colour graph**: mean colour of each supervoxel as a *chromaticity* (unit-norm RGB, so
   brightness cancels); an edge between supervoxels that touch (6-connectivity), weighted by the
   Euclidean chromaticity distance.
5. **Clustering**: average-linkage agglomerative clustering restricted to the graph
   (scikit-learn ``AgglomerativeClustering(connectivity=...)``), cut at ``colour_threshold``;
   then clusters of similar colour (< ``colour_threshold``) whose supervoxel centres lie within
   ``merge_gap`` voxels are merged (bridges gaps in the labelling, Duan's clean-up step).
6. **Overlaps**: a supervoxel whose mean colour is explained markedly better by the sum of its own
   cluster's colour and a touching cluster's colour (non-negative least squares) than by its own
   colour alone is added to both clusters, so crossing/fasciculating neurons of different colours
   keep their shared voxels. Limitation: when the crossing is large enough to get supervoxels of
   its own, their mixed colour forms a separate cluster instead (and, with ``merge_gap`` too
   small, splits both neurons there).
7. Clusters with fewer than ``min_size`` voxels are dropped; each remaining cluster becomes one
   channel of the output (FISBe layout: channel ``i`` holds ``i + 1``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import xarray as xr
from scipy import ndimage, sparse

from neuroana.dims import CHANNEL, X, Y, Z
from neuroana.errors import FisbeInputError

__all__ = ["ClusteringResult", "as_raw", "colour_clustering", "normalise_raw"]


class ClusteringResult(NamedTuple):
    """What :func:`_cluster_core` returns."""

    instances: np.ndarray  # (N, Z, Y, X) FISBe layout
    supervoxels: np.ndarray  # (Z, Y, X) int32, 0 = background
    cluster_of_supervoxel: np.ndarray  # (n_supervoxels + 1,), 0 for background
    n_overlap_supervoxels: int


def as_raw(raw, name: str = "raw") -> np.ndarray:
    """Validate a raw multicolour volume; returns it as an array ``(channel, z, y, x)``.

    Raises
    ------
    FisbeInputError
        Wrong dims or rank, an empty or too thin volume (< 2 voxels along z, y or x), a dtype that
        is not integer or float, or NaN / inf intensities.
    """
    if isinstance(raw, xr.DataArray):
        missing = {CHANNEL, Z, Y, X} - set(raw.dims)
        if missing or raw.ndim != 4:
            raise FisbeInputError(
                f"{name} has dims {raw.dims}; expected ('channel', 'z', 'y', 'x') "
                f"(missing {sorted(missing)})"
            )
        raw = raw.transpose(CHANNEL, Z, Y, X).values
    arr = np.asarray(raw)
    if arr.ndim != 4:
        raise FisbeInputError(
            f"{name} has shape {arr.shape}; expected 4 axes (channel, z, y, x), e.g. (3, Z, Y, X)"
        )
    if arr.size == 0:
        raise FisbeInputError(f"{name} of shape {arr.shape} is empty; expected a non-empty volume")
    if min(arr.shape[1:]) < 2:
        raise FisbeInputError(
            f"{name} has shape {arr.shape}; expected at least 2 voxels along z, y and x"
        )
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise FisbeInputError(
            f"{name} has dtype {arr.dtype}; expected integer or float intensities"
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise FisbeInputError(f"{name} contains NaN or inf; expected finite intensities")
    return arr


def normalise_raw(raw: np.ndarray, clip: float = 1500.0) -> np.ndarray:
    """Clip at ``clip`` and scale to [0, 1] as float32 (FISBe convention: clip 1500).

    Examples
    --------
    >>> import numpy as np
    >>> normalise_raw(np.array([[[[0, 750, 3000]]]]), clip=1500).ravel().tolist()
    [0.0, 0.5, 1.0]
    """
    if not clip > 0:
        raise ValueError(f"clip={clip}; expected a positive intensity")
    return (np.clip(np.asarray(raw, dtype=np.float32), 0, clip) / np.float32(clip)).astype(
        np.float32
    )


def _supervoxels(fg: np.ndarray, min_distance: int) -> np.ndarray:
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    dist = ndimage.distance_transform_edt(fg)
    comps, n = ndimage.label(fg)
    peaks = peak_local_max(dist, min_distance=min_distance, labels=comps, exclude_border=False)
    markers = np.zeros(fg.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1, dtype=np.int32)
    # components without a peak (tiny) still get a seed
    have = np.zeros(n + 1, bool)
    have[comps[tuple(peaks.T)]] = True
    extra = [i for i in range(1, n + 1) if not have[i]]
    if extra:
        for k, sl in enumerate(ndimage.find_objects(comps)):
            if k + 1 in extra and sl is not None:
                idx = np.argwhere(comps[sl] == k + 1)[0] + [s.start for s in sl]
                markers[tuple(idx)] = markers.max() + 1
    return watershed(-dist, markers, mask=fg).astype(np.int32)


def _touching_pairs(lab: np.ndarray) -> np.ndarray:
    """Unique pairs (a < b) of different non-zero labels that touch along an axis."""
    pairs = []
    for ax in range(lab.ndim):
        a = np.moveaxis(lab, ax, 0)[:-1].ravel()
        b = np.moveaxis(lab, ax, 0)[1:].ravel()
        ok = (a != b) & (a > 0) & (b > 0)
        pairs.append(np.stack([np.minimum(a[ok], b[ok]), np.maximum(a[ok], b[ok])], 1))
    p = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)
    return np.unique(p, axis=0) if len(p) else p.reshape(0, 2)


def _merge_close_clusters(cl, chroma, centres, colour_threshold, merge_gap):
    """Merge clusters of similar colour whose supervoxel centres lie within ``merge_gap``."""
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    k = int(cl.max()) + 1
    if k < 2 or merge_gap <= 0:
        return cl
    mean = np.zeros((k, chroma.shape[1]))
    np.add.at(mean, cl, chroma)
    mean /= np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
    pairs = cKDTree(centres).query_pairs(merge_gap, output_type="ndarray")
    a, b = cl[pairs[:, 0]], cl[pairs[:, 1]]
    ok = (a != b) & (np.linalg.norm(mean[a] - mean[b], axis=1) < colour_threshold)
    g = sparse.coo_matrix((np.ones(ok.sum()), (a[ok], b[ok])), shape=(k, k))
    _, new = connected_components(g, directed=False)
    return new[cl]


def _graph_clusters(conn, chroma: np.ndarray, colour_threshold: float) -> np.ndarray:
    """Average-linkage clustering inside each connected component of the supervoxel graph."""
    from scipy.sparse.csgraph import connected_components
    from sklearn.cluster import AgglomerativeClustering

    n_comp, comp = connected_components(conn, directed=False)
    cl = np.zeros(len(chroma), np.int64)
    nxt = 0
    for c in range(n_comp):
        idx = np.flatnonzero(comp == c)
        if len(idx) == 1:
            sub = np.zeros(1, np.int64)
        else:
            sub = AgglomerativeClustering(
                n_clusters=None,
                distance_threshold=colour_threshold,
                linkage="average",
                connectivity=conn[idx][:, idx],
            ).fit_predict(chroma[idx])
        cl[idx] = sub + nxt
        nxt += int(sub.max()) + 1
    return cl


def _cluster_core(
    img: np.ndarray,
    *,
    sigma: float,
    fg_threshold: float,
    min_component: int,
    min_distance: int,
    colour_threshold: float,
    merge_gap: float,
    overlap_gain: float,
    min_size: int,
) -> ClusteringResult:
    den = np.stack([ndimage.gaussian_filter(c, sigma) if sigma > 0 else c for c in img])
    bright = den.max(axis=0)
    fg = bright > fg_threshold
    comps, n = ndimage.label(fg)
    if n:
        sizes = np.bincount(comps.ravel())
        fg &= sizes[comps] >= min_component
    spatial = img.shape[1:]
    sv = _supervoxels(fg, min_distance) if fg.any() else np.zeros(spatial, np.int32)
    n_sv = int(sv.max())
    if n_sv == 0:
        return ClusteringResult(np.zeros((0,) + spatial, np.uint8), sv, np.zeros(1, int), 0)
    flat = sv.ravel()
    counts = np.bincount(flat, minlength=n_sv + 1).astype(float)
    colour = np.stack([np.bincount(flat, c.ravel(), minlength=n_sv + 1) for c in den], 1)
    colour = colour / np.maximum(counts[:, None], 1)  # mean raw colour per supervoxel
    chroma = colour / np.maximum(np.linalg.norm(colour, axis=1, keepdims=True), 1e-12)
    centres = np.stack(
        [np.bincount(flat, g.ravel(), minlength=n_sv + 1) for g in np.indices(spatial)], 1
    ) / np.maximum(counts[:, None], 1)
    pairs = _touching_pairs(sv) - 1
    conn = sparse.coo_matrix(
        (np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n_sv, n_sv)
    ).tocsr()
    conn = conn + conn.T
    cl = _graph_clusters(conn, chroma[1:], colour_threshold)
    cl = _merge_close_clusters(cl, chroma[1:], centres[1:], colour_threshold, merge_gap)
    _, cl = np.unique(cl, return_inverse=True)
    k = int(cl.max()) + 1
    # mean chromaticity per cluster, size-weighted
    mean = np.zeros((k, 3))
    np.add.at(mean, cl, colour[1:] * counts[1:, None])
    mean /= np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
    member = sparse.lil_matrix((n_sv, k), dtype=bool)
    member[np.arange(n_sv), cl] = True
    n_ovl = 0
    if overlap_gain > 0 and len(pairs):
        from scipy.optimize import nnls

        for s, t in np.concatenate([pairs, pairs[:, ::-1]]):
            a, b = cl[s], cl[t]
            if a == b or member[s, b]:
                continue
            y = colour[s + 1]
            r1 = np.linalg.norm(y - mean[a] * max(float(y @ mean[a]), 0.0))
            coef, r2 = nnls(np.stack([mean[a], mean[b]], 1), y)
            if coef.min() > 0.2 * coef.sum() and r1 > overlap_gain * max(r2, 1e-6):
                member[s, b] = True
                n_ovl += 1
    member = member.tocsc()
    keep = []
    for j in range(k):
        svs = member[:, j].nonzero()[0] + 1
        size = counts[svs].sum()
        if size >= min_size:
            keep.append(svs)
    dtype = np.uint8 if len(keep) < 256 else np.uint16
    out = np.zeros((len(keep),) + spatial, dtype)
    for i, svs in enumerate(keep):
        lut = np.zeros(n_sv + 1, bool)
        lut[svs] = True
        out[i][lut[sv]] = i + 1
    return ClusteringResult(out, sv, np.concatenate([[0], cl + 1]), n_ovl)


def colour_clustering(
    raw,
    *,
    clip: float = 1500.0,
    sigma: float = 1.0,
    fg_threshold: float = 0.08,
    min_component: int = 100,
    min_distance: int = 4,
    colour_threshold: float = 0.25,
    merge_gap: float = 6.0,
    overlap_gain: float = 3.0,
    min_size: int = 300,
) -> np.ndarray:
    """Segment neurons in a multicolour volume by colour clustering (non-learnt baseline).

    Parameters
    ----------
    raw : array-like or DataArray, shape (channel, z, y, x)
        Raw intensities (FISBe: ``uint16``, three channels).
    clip : float
        Intensity mapped to 1 (FISBe convention: 1500).
    sigma : float
        Gaussian denoising sigma in voxels (0 disables).
    fg_threshold : float
        Foreground where the brightest denoised channel exceeds this (in [0, 1] after clipping).
    min_component : int
        Foreground components smaller than this (voxels) are background.
    min_distance : int
        Minimum distance between supervoxel seeds (voxels); smaller gives more, smaller
        supervoxels.
    colour_threshold : float
        Average-linkage cut on the chromaticity distance (unit-norm RGB; 0 = same hue,
        ``sqrt(2)`` = orthogonal colours). Also the colour limit of the gap-bridging merge.
    merge_gap : float
        Merge similarly coloured clusters whose supervoxel centres are within this many voxels
        (0 disables).
    overlap_gain : float
        A supervoxel joins a touching second cluster when the two-colour fit's residual is this
        many times smaller than the one-colour fit's and each colour carries > 20 % (0 disables
        overlap output).
    min_size : int
        Clusters with fewer voxels are dropped (the FISBe evaluation ignores predictions of at
        most 800 voxels anyway).

    Returns
    -------
    numpy.ndarray, shape (N, Z, Y, X)
        One instance per channel (channel ``i`` holds ``i + 1``, FISBe layout, ``uint8`` while
        ``N < 256``); voxels of detected overlaps are set in two channels.

    Raises
    ------
    ValueError
        ``raw`` is not 4-D, is empty, or has a non-numeric dtype; a parameter is out of range.

    Examples
    --------
    >>> from neuroana.datasets.fisbe_synth import make_fisbe_volume
    >>> ds = make_fisbe_volume((24, 48, 48), n_neurons=2, n_fasciculating=0, random_state=0)
    >>> inst = colour_clustering(ds.raw, min_size=50)
    >>> inst.ndim, inst.shape[1:]
    (4, (24, 48, 48))
    """
    img = normalise_raw(as_raw(raw), clip)
    for name, v in (("sigma", sigma), ("merge_gap", merge_gap), ("overlap_gain", overlap_gain)):
        if v < 0:
            raise ValueError(f"{name}={v}; expected >= 0")
    if not 0 < fg_threshold < 1:
        raise ValueError(f"fg_threshold={fg_threshold}; expected in (0, 1)")
    if min_distance < 1:
        raise ValueError(f"min_distance={min_distance}; expected >= 1")
    if colour_threshold <= 0:
        raise ValueError(f"colour_threshold={colour_threshold}; expected > 0")
    return _cluster_core(
        img,
        sigma=sigma,
        fg_threshold=fg_threshold,
        min_component=int(min_component),
        min_distance=int(min_distance),
        colour_threshold=float(colour_threshold),
        merge_gap=float(merge_gap),
        overlap_gain=float(overlap_gain),
        min_size=int(min_size),
    ).instances
