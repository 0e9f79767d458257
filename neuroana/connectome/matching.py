"""Comparing CP models: Hungarian alignment of components and the factor match score (FMS)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from neuroana.errors import ConnectomeInputError


class Alignment(NamedTuple):
    """Result of :func:`factor_match_score`.

    Attributes
    ----------
    score : float
        Mean matched similarity (1 = identical up to permutation and per-mode scaling).
    permutation : ndarray
        ``permutation[r]`` is the component of the second model matched to component ``r`` of the
        first (``-1`` when unmatched because the second model has fewer components).
    similarities : ndarray
        Matched similarity per component of the first model.
    """

    score: float
    permutation: np.ndarray
    similarities: np.ndarray


def _unit(factors: Sequence[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    mats = [np.asarray(f, dtype=float) for f in factors]
    norms = [np.linalg.norm(f, axis=0) for f in mats]
    weights = np.prod(norms, axis=0)
    return [f / np.where(n > 0, n, 1.0) for f, n in zip(mats, norms, strict=True)], weights


def factor_match_score(
    factors_a: Sequence[np.ndarray],
    factors_b: Sequence[np.ndarray],
    *,
    weights_a: np.ndarray | None = None,
    weights_b: np.ndarray | None = None,
    consider_weights: bool = True,
) -> Alignment:
    """Factor match score between two CP models after Hungarian alignment of their components.

    The similarity of component ``r`` of model A and ``s`` of model B is the product over modes of
    the absolute cosine similarity of their columns, times ``1 - |l_r - m_s| / max(l_r, m_s)`` for
    the component weights ``l``, ``m`` when ``consider_weights`` (Acar et al.; tensortools'
    ``kruskal_align`` uses the same cosine part). Components are matched one to one by maximising the
    summed similarity (Hungarian algorithm); the score is the mean over the components of model A.

    Parameters
    ----------
    factors_a, factors_b : sequence of ndarray
        One ``(I_n, R)`` array per mode (column norms are folded into the weights).
    weights_a, weights_b : ndarray, optional
        Extra per-component weights multiplied into the column norms.
    consider_weights : bool
        Include the weight term.

    Returns
    -------
    Alignment

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.connectome import factor_match_score
    >>> rng = np.random.default_rng(0)
    >>> f = [rng.random((5, 3)), rng.random((4, 3))]
    >>> g = [f[0][:, [2, 0, 1]] * 2.0, f[1][:, [2, 0, 1]] / 2.0]
    >>> round(factor_match_score(f, g).score, 6)
    1.0
    """
    if len(factors_a) != len(factors_b):
        raise ConnectomeInputError(
            f"the models have {len(factors_a)} and {len(factors_b)} modes; expected the same number"
        )
    ua, wa = _unit(factors_a)
    ub, wb = _unit(factors_b)
    for n, (a, b) in enumerate(zip(ua, ub, strict=True)):
        if a.shape[0] != b.shape[0]:
            raise ConnectomeInputError(
                f"mode {n} has {a.shape[0]} and {b.shape[0]} rows; expected the same length"
            )
    if weights_a is not None:
        wa = wa * np.asarray(weights_a, dtype=float)
    if weights_b is not None:
        wb = wb * np.asarray(weights_b, dtype=float)
    sim = np.ones((ua[0].shape[1], ub[0].shape[1]))
    for a, b in zip(ua, ub, strict=True):
        sim *= np.abs(a.T @ b)
    if consider_weights:
        denom = np.maximum(wa[:, None], wb[None, :])
        sim *= 1.0 - np.abs(wa[:, None] - wb[None, :]) / np.where(denom > 0, denom, 1.0)
    rows, cols = linear_sum_assignment(-sim)
    perm = np.full(sim.shape[0], -1)
    perm[rows] = cols
    sims = np.zeros(sim.shape[0])
    sims[rows] = sim[rows, cols]
    return Alignment(score=float(sims.mean()), permutation=perm, similarities=sims)
