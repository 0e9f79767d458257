"""FISBe-like synthetic volumes: branching tubular neurons with ground-truth instances.

Each neuron is a tree of persistent random walks (recursive branching, tapering radius) stamped
as balls; some neurons fasciculate (follow another neuron's path at a small lateral offset, so
they share voxels). The raw image is three-colour (MCFO-like, a random colour per neuron) with a
Gaussian PSF, uneven illumination, Poisson and Gaussian noise, as ``uint16``. Ground truth uses
the FISBe layout: one neuron per channel, channel ``i`` holds the value ``i + 1``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import ndimage

__all__ = ["make_fisbe_volume", "perturb_prediction"]

VOXEL_UM = 0.44


def _ball_offsets(r: float) -> np.ndarray:
    k = int(np.ceil(r))
    g = np.mgrid[-k : k + 1, -k : k + 1, -k : k + 1].reshape(3, -1).T
    return g[(g**2).sum(1) <= r * r + 1e-9]


def _walk(rng, start, direction, length, shape, persistence=0.9):
    pts = [np.asarray(start, float)]
    d = np.asarray(direction, float)
    d /= np.linalg.norm(d)
    hi = np.asarray(shape) - 1
    for _ in range(int(length)):
        d = persistence * d + (1 - persistence) * rng.normal(size=3)
        d /= np.linalg.norm(d)
        p = pts[-1] + d
        if np.any(p < 0) or np.any(p > hi):
            break
        pts.append(p)
    return np.asarray(pts)


def _tree(rng, shape, length, levels):
    start = rng.uniform(0.1, 0.9, 3) * np.asarray(shape)
    segs = [(_walk(rng, start, rng.normal(size=3), length, shape), 0)]
    out = []
    while segs:
        pts, lev = segs.pop()
        out.append((pts, lev))
        if lev >= levels or len(pts) < 8:
            continue
        for _ in range(rng.integers(1, 3)):
            if rng.random() < 0.7:
                i = rng.integers(len(pts) // 4, len(pts))
                d = pts[min(i + 1, len(pts) - 1)] - pts[max(i - 1, 0)] + rng.normal(size=3)
                segs.append((_walk(rng, pts[i], d, length * 0.6 ** (lev + 1), shape), lev + 1))
    return out


def _stamp(segments, shape, r0, taper=0.7):
    """Flat indices of the union of balls along the segments (radius tapers with level)."""
    idx = []
    size = np.asarray(shape)
    for pts, lev in segments:
        r = max(0.9, r0 * taper**lev)
        off = _ball_offsets(r)
        c = np.rint(pts).astype(np.int64)
        vox = (c[:, None, :] + off[None]).reshape(-1, 3)
        ok = np.all((vox >= 0) & (vox < size), axis=1)
        idx.append(np.ravel_multi_index(vox[ok].T, shape))
    return np.unique(np.concatenate(idx)) if idx else np.zeros(0, np.int64)


def make_fisbe_volume(
    shape: tuple[int, int, int] = (48, 96, 96),
    n_neurons: int = 4,
    n_fasciculating: int = 1,
    radius: float = 2.0,
    levels: int = 2,
    raw: bool = True,
    random_state: int | None = 0,
) -> xr.Dataset:
    """A FISBe-like sample with planted ground truth.

    Parameters
    ----------
    shape : (Z, Y, X)
        Volume size in voxels (isotropic 0.44 um).
    n_neurons : int
        Independent neuron trees.
    n_fasciculating : int
        Extra neurons that follow the main branch of an earlier neuron at 1-2 voxels lateral
        offset over part of its length (overlapping voxels), then wander off.
    radius : float
        Radius of the main branches in voxels (children taper).
    levels : int
        Branching depth.
    raw : bool
        Also render the three-colour raw image (skip for metric benchmarks).
    random_state : int or None
        Seed.

    Returns
    -------
    xarray.Dataset
        ``gt`` (instance, z, y, x) uint8 in FISBe layout and, if ``raw``, ``raw``
        (channel, z, y, x) uint16; coordinates in micrometres.

    Examples
    --------
    >>> ds = make_fisbe_volume((24, 48, 48), n_neurons=2, n_fasciculating=1, random_state=1)
    >>> ds.gt.dims, int(ds.gt.max())
    (('instance', 'z', 'y', 'x'), 3)
    """
    rng = np.random.default_rng(random_state)
    shape = tuple(int(s) for s in shape)
    length = 0.9 * max(shape)
    trees = [_tree(rng, shape, length, levels) for _ in range(n_neurons)]
    flats = [_stamp(t, shape, radius) for t in trees]
    for k in range(n_fasciculating):
        host = trees[k % n_neurons][0][0]
        a = rng.integers(0, max(1, len(host) // 3))
        b = min(len(host), a + max(10, len(host) // 2))
        shift = rng.choice([-1, 1], 3) * rng.integers(1, 3, 3) * (rng.random(3) < 0.5)
        path = host[a:b] + shift
        tail = _walk(rng, path[-1], rng.normal(size=3), length / 2, shape)
        segs = [(np.clip(path, 0, np.asarray(shape) - 1), 0), (tail, 1)]
        flats.append(_stamp(segs, shape, radius * 0.8))
    gt = np.zeros((len(flats),) + shape, dtype=np.uint8)
    for i, f in enumerate(flats):
        gt[i].reshape(-1)[f] = i + 1
    coords = {a: np.arange(n) * VOXEL_UM for a, n in zip("zyx", shape, strict=True)}
    data = {"gt": (("instance", "z", "y", "x"), gt)}
    if raw:
        data["raw"] = (("channel", "z", "y", "x"), _render_raw(rng, flats, shape))
    ds = xr.Dataset(data, coords={**coords, "instance": np.arange(1, len(flats) + 1)})
    if raw:
        ds = ds.assign_coords(channel=["red", "green", "blue"])
    ds.attrs.update(voxel_size_um=VOXEL_UM, synthetic=1, random_state=str(random_state))
    return ds


def _render_raw(rng, flats, shape) -> np.ndarray:
    img = np.zeros((3,) + shape, dtype=np.float32)
    for f in flats:
        colour = rng.dirichlet(np.ones(3) * 0.5) * rng.uniform(600, 1800)
        for c in range(3):
            img[c].reshape(-1)[f] += colour[c]
    zz, yy, xx = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij", sparse=True)
    illum = (1.0 - 0.35 * (yy**2 + xx**2) - 0.15 * zz).astype(np.float32)
    for c in range(3):
        img[c] = ndimage.gaussian_filter(img[c], sigma=(1.2, 0.8, 0.8)) * illum
    img = rng.poisson(np.maximum(img, 0) + 20).astype(np.float32)
    img += rng.normal(0, 10, img.shape).astype(np.float32)
    return np.clip(img, 0, 65535).astype(np.uint16)


def perturb_prediction(gt: np.ndarray, random_state: int | None = 0) -> np.ndarray:
    """A prediction with known errors from a FISBe-layout GT ``(N, Z, Y, X)``.

    Neuron 0 is split in two by a plane, neurons 1 and 2 are merged (when present), the last
    neuron is dropped, one neuron is dilated, and a false-positive tube is added. Output: one
    instance per channel (FISBe layout, ``uint8``).

    Examples
    --------
    >>> ds = make_fisbe_volume((24, 48, 48), n_neurons=3, raw=False)
    >>> perturb_prediction(ds.gt.values).shape[1:]
    (24, 48, 48)
    """
    rng = np.random.default_rng(random_state)
    gt = np.asarray(gt)
    n, shape = gt.shape[0], gt.shape[1:]
    masks = [gt[i] > 0 for i in range(n)]
    out = []
    if n >= 1:
        z = np.nonzero(masks[0].any(axis=(1, 2)))[0]
        cut = int(np.median(z)) if len(z) else 0
        a = masks[0].copy()
        a[cut:] = False
        b = masks[0].copy()
        b[:cut] = False
        out += [a, b]
    if n >= 3:
        out.append(masks[1] | masks[2])
        rest = list(range(3, n - 1))
    else:
        rest = list(range(1, n - 1))
    for i in rest:
        m = masks[i]
        if i == rest[0]:
            sl = ndimage.find_objects(m.astype(np.uint8))[0]
            if sl is not None:
                pad = tuple(slice(max(s.start - 2, 0), s.stop + 2) for s in sl)
                m = m.copy()
                m[pad] = ndimage.binary_dilation(m[pad])
        out.append(m)
    fp = np.zeros(shape, bool)
    f = _stamp(
        [(_walk(rng, np.asarray(shape) / 2, rng.normal(size=3), max(shape), shape), 0)], shape, 2.0
    )
    fp.reshape(-1)[f] = True
    out.append(fp)
    pred = np.zeros((len(out),) + tuple(shape), dtype=np.uint8)
    for i, m in enumerate(out):
        pred[i][m] = i + 1
    return pred
