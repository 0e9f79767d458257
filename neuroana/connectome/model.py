"""``DynamicConnectome``: traces -> affinities -> NTF (rank chosen or given) -> communities."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from sklearn.base import BaseEstimator

from neuroana.connectome.affinity import compute_affinity, pair_to_matrix
from neuroana.connectome.communities import detect_communities
from neuroana.connectome.errors import ConnectomeInputError
from neuroana.connectome.estimator import NonNegativeTensorFactorization
from neuroana.connectome.rank import select_rank


class DynamicConnectome(BaseEstimator):
    """Dynamic functional connectome of calcium traces (Dyballa et al., ICLR 2024).

    Parameters
    ----------
    window, step : float
        Affinity window and hop (seconds when the traces have a numeric ``time`` coord).
    affinity : {"differential", "correlation"}
        See :func:`neuroana.connectome.compute_affinity`.
    scale : float
        Kernel scale of the differential affinity.
    n_components : int or "auto"
        NTF rank, or ``"auto"`` to pick it with :func:`neuroana.connectome.select_rank` over ``ranks``.
    ranks : sequence of int
        Candidate ranks for ``"auto"``.
    n_restarts, max_iter, tol : NTF settings.
    community_method : {"wsbm", "leiden"}
    n_runs : int
        Community-detection runs for the consensus.
    coverage_threshold : float
        A component covers a window (animal) where its factor exceeds this fraction of its maximum.
    device, random_state, verbose : see the other estimators.

    Attributes
    ----------
    affinity_ : xarray.DataArray ``("pair", "window", "animal")``
    ntf_ : NonNegativeTensorFactorization
    rank_selection_ : RankSelection or None
    result_ : xarray.Dataset
        ``pair_factor``, ``window_factor``, ``animal_factor``, ``weights``, ``communities``
        (``component``, ``roi``; ``-1`` for a ROI that shares no animal with any other ROI, whose
        community cannot be estimated), ``n_communities``, ``covers_window`` and ``covers_animal`` (bool).

    Examples
    --------
    >>> from neuroana.datasets.connectome_sim import make_connectome_traces
    >>> from neuroana.connectome import DynamicConnectome
    >>> sim = make_connectome_traces(n_rois=12, n_animals=2, n_episodes=2, episode_duration=60.0)
    >>> dc = DynamicConnectome(window=20.0, n_components=2, device="cpu", n_runs=2).fit(sim.traces)
    >>> dc.result_["communities"].dims
    ('component', 'roi')
    """

    def __init__(
        self,
        window: float = 30.0,
        step: float | None = None,
        *,
        affinity: str = "differential",
        scale: float = 2.0,
        n_components: int | str = "auto",
        ranks: Sequence[int] = (1, 2, 3, 4, 5, 6),
        n_restarts: int = 8,
        max_iter: int = 500,
        tol: float = 1e-6,
        community_method: str = "wsbm",
        n_runs: int = 5,
        coverage_threshold: float = 0.3,
        device: str = "auto",
        random_state: int | None = 0,
        verbose: bool = False,
    ):
        self.window = window
        self.step = step
        self.affinity = affinity
        self.scale = scale
        self.n_components = n_components
        self.ranks = ranks
        self.n_restarts = n_restarts
        self.max_iter = max_iter
        self.tol = tol
        self.community_method = community_method
        self.n_runs = n_runs
        self.coverage_threshold = coverage_threshold
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, traces, y=None):
        """Fit on ``("time", "roi"[, "animal"])`` traces (or a list/dict of animals)."""
        aff = compute_affinity(
            traces,
            window=self.window,
            step=self.step,
            method=self.affinity,
            scale=self.scale,
            device=self.device,
        )
        n_win = aff.sizes["window"]
        if self.n_components == "auto":
            ranks = [r for r in self.ranks if r <= n_win]
            if not ranks:
                raise ConnectomeInputError(
                    f"only {n_win} windows; every candidate rank in {list(self.ranks)} exceeds it "
                    "(shorten the window or the step)"
                )
            sel = select_rank(
                aff,
                ranks,
                n_restarts=max(2, self.n_restarts // 2),
                max_iter=self.max_iter,
                tol=self.tol,
                device=self.device,
                random_state=self.random_state,
            )
            rank = sel.recommended
        else:
            rank, sel = int(self.n_components), None
            if rank > n_win:
                raise ConnectomeInputError(
                    f"n_components={rank} but the affinity tensor has only {n_win} windows; "
                    "expected at least as many windows as components"
                )
        est = NonNegativeTensorFactorization(
            rank,
            n_restarts=self.n_restarts,
            max_iter=self.max_iter,
            tol=self.tol,
            device=self.device,
            random_state=self.random_state,
            verbose=self.verbose,
        ).fit(aff)
        f = est.factors_
        # ROIs in the order of the pair (triu) layout: pairs (0, 1), (0, 2), ..., (0, N-1) come first
        n_roi = int(round((1 + np.sqrt(1 + 8 * aff.sizes["pair"])) / 2))
        rois = np.concatenate([aff["roi_i"].values[:1], aff["roi_j"].values[: n_roi - 1]])
        labels = np.zeros((rank, n_roi), dtype=int)
        ncom = np.zeros(rank, dtype=int)
        # a pair never observed (its two neurons share no animal) has an unconstrained pair-factor
        # entry: it is missing data for the community model, never a zero-weight edge
        pair_observed = np.isfinite(aff.values).any(axis=(1, 2))
        observed = pair_to_matrix(pair_observed.astype(float), n_roi) > 0
        for r in range(rank):
            mat = pair_to_matrix(f["pair_factor"].values[:, r], n_roi)
            res = detect_communities(
                mat,
                observed=observed,
                method=self.community_method,
                n_runs=self.n_runs,
                random_state=self.random_state,
            )
            labels[r], ncom[r] = res.labels, res.n_blocks
        wf, af = f["window_factor"], f["animal_factor"]
        thr = self.coverage_threshold
        result = f.copy()
        result["communities"] = xr.DataArray(
            labels, dims=("component", "roi"), coords={"roi": rois}
        )
        result["n_communities"] = xr.DataArray(ncom, dims=("component",))
        result["covers_window"] = wf > thr * wf.max("window")
        result["covers_animal"] = af > thr * af.max("animal")
        result.attrs.update(rank=rank, reconstruction_error=est.reconstruction_error_)
        self.affinity_ = aff
        self.ntf_ = est
        self.rank_selection_ = sel
        self.result_ = result
        return self
