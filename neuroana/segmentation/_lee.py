"""Lee (1994) 3-D thinning on the foreground voxels only, compiled with numba.

The same sweeps as scikit-image's ``skeletonize`` for 3-D input (Lee, Kashyap & Chu 1994, as
implemented by Arganda-Carreras for ImageJ and scikit-image): six border directions in the order
``-y, +y, +x, -x, +z, -z`` (axes ``(z, y, x)``), each a sub-iteration of two steps. First the
candidates are collected in raster order on the image as it is at the start of the sub-iteration:
foreground voxels whose neighbour in that direction is background, that are not end points
(exactly one foreground 26-neighbour), whose deletion keeps the Euler characteristic of the
3x3x3 neighbourhood and that are simple (their 26 foreground neighbours form at most one
26-connected set). Then the candidates are re-checked one by one in raster order, deleting each
that is still simple in the image as it is then. The sweeps stop after a round of all directions
deletes nothing. A volume one slice deep is thinned with the four in-plane directions only.

Instead of scanning a dense box, each voxel keeps a 26-bit mask of its foreground neighbours
(bit ``9 (dz + 1) + 3 (dy + 1) + (dx + 1)``, the centre bit 13 unused), updated when a neighbour
is deleted; neighbours are found through the sorted padded raster keys of the voxels, with the
lower bound of each of the 8 neighbouring rows stored per voxel (found once by merging, O(n)
per row). The Euler test sums, over the 8 octants, the change in the Euler characteristic of
the union of closed voxel cubes (vertices, edges, faces and the cube of the centre voxel that no
other voxel of the octant covers), derived here from that definition rather than read from a
table. Memory: 8 (key) + 32 (row bounds) + 4 (mask) + 1 (alive) + 8 (work lists) bytes per
voxel.
"""

from __future__ import annotations

import numpy as np

from neuroana.backend.compiled import compiled

__all__ = ["lee_thin", "thin_keys"]

# the six border directions, in sweep order: the bit of the neighbour that must be background
BORDER_BITS = np.array([10, 16, 14, 12, 22, 4], dtype=np.int64)  # -y +y +x -x +z -z


def _bit(dz: int, dy: int, dx: int) -> int:
    return 9 * (dz + 1) + 3 * (dy + 1) + (dx + 1)


def _octant_tables() -> tuple[np.ndarray, np.ndarray]:
    """Bits of the 7 non-centre voxels of each octant, and 8 x (change of the Euler
    characteristic when the centre voxel is removed), per octant occupancy (7-bit index).

    The 7 voxels of an octant with signs ``(sz, sy, sx)`` are ``(a sz, b sy, c sx)`` for
    ``k = 4a + 2b + c`` in 1..7; occupancy bit ``k - 1``. Removing the centre cube removes the
    octant's share of the cube's cells that no other foreground voxel covers: the corner vertex
    (shared by 1 octant, weight 8), 3 edges (2 octants, weight 4), 3 faces (4 octants, weight 2)
    and the cube itself (8 octants, weight 1).
    """
    bits = np.zeros((8, 7), dtype=np.int64)
    for o in range(8):
        s = (1 if o & 4 else -1, 1 if o & 2 else -1, 1 if o & 1 else -1)
        for k in range(1, 8):
            a = ((k >> 2) & 1, (k >> 1) & 1, k & 1)
            bits[o, k - 1] = _bit(*(ai * si for ai, si in zip(a, s, strict=True)))
    delta = np.zeros(128, dtype=np.int64)
    for occ in range(128):
        full = [False] + [bool(occ >> (k - 1) & 1) for k in range(1, 8)]  # full[k]: voxel k
        vertex = not any(full[1:])
        # the edge along axis j is covered by the voxels whose axis-j offset is 0
        edges = sum(not any(full[k] for k in range(1, 8) if not k >> (2 - j) & 1) for j in range(3))
        faces = sum(not full[1 << (2 - j)] for j in range(3))
        delta[occ] = 8 * vertex - 4 * edges + 2 * faces - 1
    return bits, delta


def _adjacency() -> np.ndarray:
    """For each neighbour bit, the mask of the other neighbour bits 26-adjacent to it."""
    adj = np.zeros(27, dtype=np.int64)
    offs = [(dz, dy, dx) for dz in (-1, 0, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    for p in offs:
        for q in offs:
            if (
                p != q
                and (0, 0, 0) not in (p, q)
                and max(abs(a - b) for a, b in zip(p, q, strict=True)) <= 1
            ):
                adj[_bit(*p)] |= 1 << _bit(*q)
    return adj


OCTANT_BITS, EULER_DELTA = _octant_tables()
ADJACENT = _adjacency()


@compiled
def _neighbour_masks(keys, sx, sxy, lower):
    """Row lower bounds (``lower[i, r]``: first voxel with key >= key of the neighbour
    ``(dz, dy, -1)`` of voxel i, rows ``r`` = the 8 ``(dz, dy) != (0, 0)``) and the initial
    26-neighbour masks."""
    n = keys.shape[0]
    r = 0
    for dz in range(-1, 2):
        for dy in range(-1, 2):
            if dz == 0 and dy == 0:
                continue
            off = dz * sxy + dy * sx - 1
            j = 0
            for i in range(n):  # keys[i] + off increases with i: one merge pass
                t = keys[i] + off
                while j < n and keys[j] < t:
                    j += 1
                lower[i, r] = j
            r += 1
    masks = np.zeros(n, dtype=np.uint32)
    nbr = np.empty(26, dtype=np.int64)
    bits = np.empty(26, dtype=np.int64)
    for i in range(n):
        m = np.uint32(0)
        for t in range(_neighbours(i, keys, sx, sxy, lower, nbr, bits)):
            m |= np.uint32(1) << np.uint32(bits[t])
        masks[i] = m
    return masks


@compiled
def _neighbours(i, keys, sx, sxy, lower, nbr, bits):
    """Write the foreground 26-neighbours of voxel i (index in ``nbr``, neighbour bit in ``bits``)
    and return how many there are."""
    n = keys.shape[0]
    c = 0
    if i > 0 and keys[i - 1] == keys[i] - 1:
        nbr[c], bits[c] = i - 1, 12
        c += 1
    if i + 1 < n and keys[i + 1] == keys[i] + 1:
        nbr[c], bits[c] = i + 1, 14
        c += 1
    r = 0
    for dz in range(-1, 2):
        for dy in range(-1, 2):
            if dz == 0 and dy == 0:
                continue
            base = keys[i] + dz * sxy + dy * sx
            j = lower[i, r]
            for dx in range(-1, 2):
                if j < n and keys[j] == base + dx:
                    nbr[c], bits[c] = j, 9 * (dz + 1) + 3 * (dy + 1) + dx + 1
                    c += 1
                    j += 1
            r += 1
    return c


@compiled
def _delete(i, keys, sx, sxy, lower, masks, alive, nbr, bits):
    """Remove voxel i: clear its bit in the masks of its neighbours (``nbr``, ``bits``: scratch
    of 26)."""
    alive[i] = False
    for t in range(_neighbours(i, keys, sx, sxy, lower, nbr, bits)):
        # seen from the neighbour at bit b = (dz, dy, dx), voxel i is at (-dz, -dy, -dx): bit 26 - b
        masks[nbr[t]] &= ~(np.uint32(1) << np.uint32(26 - bits[t]))


@compiled
def _euler_invariant(m, octant_bits, euler_delta):
    total = 0
    for o in range(8):
        idx = 0
        for k in range(7):
            idx |= ((m >> octant_bits[o, k]) & 1) << k
        total += euler_delta[idx]
    return total == 0


@compiled
def _simple(m, adjacent):
    """At most one 26-connected set among the foreground neighbours in mask ``m``."""
    if m == 0:
        return True
    seen = m & -m  # lowest foreground neighbour
    todo = seen
    while todo != 0:
        low = todo & -todo
        todo ^= low
        b = 0
        while (low >> b) != 1:
            b += 1
        grow = adjacent[b] & m & ~seen
        seen |= grow
        todo |= grow
    return seen == m


@compiled
def lee_thin(keys, sx, sxy, n_borders, border_bits, octant_bits, euler_delta, adjacent):
    """Lee thinning of the voxels with sorted padded raster keys ``keys``.

    Parameters
    ----------
    keys : int64 array, shape (n,)
        Strictly increasing ``(z * sy + y) * sx + x`` of the foreground voxels in coordinates
        padded so that every neighbour of a voxel has non-negative coordinates below the strides.
    sx, sxy : int
        Row and plane strides of the keys.
    n_borders : int
        6, or 4 for a volume one slice deep (no ``z`` borders).
    border_bits, octant_bits, euler_delta, adjacent : arrays
        :data:`BORDER_BITS`, ``OCTANT_BITS``, ``EULER_DELTA``, ``ADJACENT``.

    Returns
    -------
    bool array, shape (n,)
        True where the voxel belongs to the skeleton.
    """
    n = keys.shape[0]
    lower = np.empty((n, 8), dtype=np.int32)
    masks = _neighbour_masks(keys, sx, sxy, lower)
    alive = np.ones(n, dtype=np.bool_)
    active = np.arange(n).astype(np.int32)  # alive voxels, raster order (compacted each round)
    n_active = n
    cand = np.empty(n, dtype=np.int32)
    nbr = np.empty(26, dtype=np.int64)
    bits = np.empty(26, dtype=np.int64)
    unchanged = 0
    while unchanged < n_borders:
        unchanged = 0
        for d in range(n_borders):
            bit = border_bits[d]
            n_cand = 0
            for t in range(n_active):
                i = active[t]
                if not alive[i]:
                    continue
                m = np.int64(masks[i])
                if (m >> bit) & 1:  # not a border voxel in this direction
                    continue
                if m != 0 and (m & (m - 1)) == 0:  # end point
                    continue
                if not _euler_invariant(m, octant_bits, euler_delta):
                    continue
                if not _simple(m, adjacent):
                    continue
                cand[n_cand] = i
                n_cand += 1
            changed = False
            for t in range(n_cand):
                i = cand[t]
                if _simple(np.int64(masks[i]), adjacent):
                    _delete(i, keys, sx, sxy, lower, masks, alive, nbr, bits)
                    changed = True
            if not changed:
                unchanged += 1
        k = 0
        for t in range(n_active):
            if alive[active[t]]:
                active[k] = active[t]
                k += 1
        n_active = k
    return alive


def thin_keys(keys: np.ndarray, sx: int, sxy: int, n_borders: int = 6) -> np.ndarray:
    """Skeleton flags of the voxels with strictly increasing padded raster keys ``keys``.

    Parameters
    ----------
    keys : int64 array, shape (n,)
        ``z * sxy + y * sx + x`` of the foreground voxels, coordinates shifted by +1 so that
        every neighbour lies inside ``0 <= x < sx`` and ``0 <= y < sxy // sx``.
    sx, sxy : int
        Row and plane strides.
    n_borders : {6, 4}
        4 only for a volume one slice deep (what ``skeletonize`` does then).

    Returns
    -------
    bool array, shape (n,)
        True for the voxels of the skeleton (``skimage.morphology.skeletonize``'s result).

    Examples
    --------
    >>> import numpy as np
    >>> z, y, x = np.zeros(5, np.int64) + 1, np.zeros(5, np.int64) + 1, np.arange(5) + 1
    >>> bar = np.repeat(z * 49 + y * 7, 3) + np.tile([0, 7, 14], 5) + np.repeat(x, 3)
    >>> int(thin_keys(np.sort(bar), 7, 49).sum())  # a 1 x 3 x 5 bar thins to a line
    5
    """
    keys = np.ascontiguousarray(keys, dtype=np.int64)
    if len(keys) == 0:
        return np.zeros(0, dtype=bool)
    if np.any(keys[1:] <= keys[:-1]):
        raise ValueError("keys must be strictly increasing (sorted voxels, each once)")
    return lee_thin(keys, sx, sxy, n_borders, BORDER_BITS, OCTANT_BITS, EULER_DELTA, ADJACENT)
