"""Rank selection for the NTF: error, replicate stability and speckled held-out error per rank.

Rule (``recommended``): among the ranks whose replicate stability (mean factor match score of every
restart to the best restart, after Hungarian alignment) is at least ``stability_threshold``, take the
smallest whose held-out error is within ``cv_tolerance`` (relative) of the lowest held-out error of
those stable ranks. If no rank is stable enough, the held-out rule alone decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import xarray as xr

from neuroana.connectome.errors import ConnectomeInputError
from neuroana.connectome.matching import factor_match_score
from neuroana.connectome.ntf import _as_tensor_and_weights, ntf


class RankSelection(NamedTuple):
    """Result of :func:`select_rank`.

    Attributes
    ----------
    table : xarray.Dataset
        ``error`` (training relative error), ``heldout_error``, ``stability`` per ``rank``.
    recommended : int
        The rank the stated rule picks (see the module docstring).
    rule : str
        The rule in words.
    """

    table: xr.Dataset
    recommended: int
    rule: str


def select_rank(
    tensor,
    ranks: Sequence[int],
    *,
    n_restarts: int = 4,
    heldout_fraction: float = 0.1,
    stability_threshold: float = 0.9,
    cv_tolerance: float = 0.01,
    max_iter: int = 300,
    tol: float = 1e-6,
    warm_start: bool = True,
    device: str = "auto",
    random_state: int | None = 0,
) -> RankSelection:
    """Fit the NTF at every rank and recommend one.

    A speckled held-out set (``heldout_fraction`` of the observed entries, uniformly at random) is
    masked out of every fit; its relative error is the held-out error. With ``warm_start`` the first
    restart of rank ``r`` starts from the best rank ``r - 1`` model plus one random column (the other
    restarts are random, so stability still measures agreement between independent fits).

    Examples
    --------
    >>> from neuroana.datasets.connectome_sim import make_connectome_tensor
    >>> from neuroana.connectome import select_rank
    >>> sim = make_connectome_tensor(n_rois=12, n_windows=20, n_animals=3, n_components=2)
    >>> sel = select_rank(sim.tensor, [1, 2, 3], n_restarts=3, device="cpu")
    >>> sel.recommended
    2
    """
    ranks = sorted(int(r) for r in ranks)
    if not ranks or ranks[0] < 1:
        raise ConnectomeInputError(f"ranks={ranks}; expected positive integers")
    if not 0 < heldout_fraction < 0.5:
        raise ConnectomeInputError(f"heldout_fraction={heldout_fraction}; expected in (0, 0.5)")
    arr, w, _ = _as_tensor_and_weights(tensor, None, None)
    observed = np.ones(arr.shape, bool) if w is None else w > 0
    rng = np.random.default_rng(random_state)
    test = observed & (rng.random(arr.shape) < heldout_fraction)
    train = observed & ~test
    errs, cv, stab = [], [], []
    prev = None
    for r in ranks:
        init = "random"
        if warm_start and prev is not None:
            init = []
            for f in prev.factors:
                base = f * (prev.weights ** (1.0 / arr.ndim))[None, :]
                rand = rng.random((n_restarts, f.shape[0], r)) * base.mean()
                rand[0, :, : base.shape[1]] = base
                init.append(rand)
        fit = ntf(
            arr,
            r,
            mask=train,
            n_restarts=n_restarts,
            init=init,
            max_iter=max_iter,
            tol=tol,
            device=device,
            random_state=rng,
        )
        xh = np.einsum(
            ",".join(f"{c}z" for c in "abcdefgh"[: arr.ndim]) + "->" + "abcdefgh"[: arr.ndim],
            fit.factors[0] * fit.weights,
            *fit.factors[1:],
        )
        cv.append(float(np.linalg.norm((arr - xh)[test]) / np.linalg.norm(arr[test])))
        errs.append(fit.rel_error)
        best = [f[fit.best_restart] for f in fit.restart_factors]
        others = [b for b in range(n_restarts) if b != fit.best_restart]
        scores = [
            factor_match_score(best, [f[b] for f in fit.restart_factors]).score for b in others
        ]
        stab.append(float(np.mean(scores)) if scores else 1.0)
        prev = fit
    cv_a, stab_a = np.array(cv), np.array(stab)
    stable = stab_a >= stability_threshold
    if not stable.any():
        stable[:] = True
    ok_cv = cv_a <= cv_a[stable].min() * (1 + cv_tolerance)
    pick = np.flatnonzero(ok_cv & stable)
    rule = (
        f"smallest rank with stability >= {stability_threshold} whose held-out error is within "
        f"{cv_tolerance:.0%} of the lowest held-out error among those stable ranks"
    )
    table = xr.Dataset(
        {
            "error": ("rank", np.array(errs)),
            "heldout_error": ("rank", cv_a),
            "stability": ("rank", stab_a),
        },
        coords={"rank": ranks},
    )
    return RankSelection(table=table, recommended=int(ranks[pick[0]]), rule=rule)
