"""The scikit-learn estimators of :mod:`neuroana.connectome`.

``NonNegativeTensorFactorization``: a labelled non-negative CP decomposition over :func:`ntf`.
``DynamicConnectome``: traces -> affinities -> NTF (rank chosen or given) -> communities; with an
epochs table the fit also groups the components by episode and finds the communities of every
episode's component group (:mod:`neuroana.connectome.episodes`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from neuroana.connectome.affinity import (
    compute_affinity,
    pair_to_matrix,
    stack_animals,
    subtract_floor,
)
from neuroana.connectome.communities import detect_communities
from neuroana.connectome.episodes import as_epochs, episode_groups
from neuroana.connectome.ntf import ntf
from neuroana.connectome.rank import select_rank
from neuroana.errors import ConnectomeInputError


class NonNegativeTensorFactorization(BaseEstimator):
    """Non-negative CP decomposition of a labelled tensor (batched torch HALS, exact masking).

    Parameters
    ----------
    n_components : int
        Rank ``R``.
    n_restarts : int
        Restarts fitted together in one batched tensor; the best is kept.
    max_iter : int
        Maximum outer iterations.
    tol : float
        Relative loss-change tolerance (every restart).
    init : {"random", "nndsvd"}
        Initialisation (see :func:`neuroana.connectome.ntf`).
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    dtype : {"float32", "float64"} or None
        Precision of the fit; ``None`` picks float64 on CPU and float32 on CUDA (what
        :class:`DynamicConnectome` uses).
    random_state : int, optional
        Seed.
    verbose : bool
        Progress bar.

    Attributes
    ----------
    factors_ : xarray.Dataset
        One variable ``<dim>_factor`` per mode with dims ``(dim, "component")`` (unit-norm columns)
        and ``weights`` with dim ``component``.
    reconstruction_error_ : float
        Relative error ``||W (X - Xhat)|| / ||W X||`` of the best restart.
    restart_errors_ : xarray.DataArray
        Relative error of every restart (dim ``restart``).
    history_ : xarray.Dataset
        Per-iteration metrics from :func:`neuroana.backend.fit_loop`.
    n_iter_ : int
    converged_ : bool

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neuroana.connectome import NonNegativeTensorFactorization
    >>> rng = np.random.default_rng(0)
    >>> x = np.einsum("ir,jr,kr->ijk", rng.random((12, 2)), rng.random((9, 2)), rng.random((4, 2)))
    >>> da = xr.DataArray(x, dims=("pair", "window", "animal"))
    >>> est = NonNegativeTensorFactorization(2, n_restarts=3, random_state=0, device="cpu").fit(da)
    >>> est.factors_["window_factor"].dims
    ('window', 'component')
    >>> est.reconstruction_error_ < 1e-3
    True
    """

    def __init__(
        self,
        n_components: int = 2,
        *,
        n_restarts: int = 4,
        max_iter: int = 500,
        tol: float = 1e-6,
        init: str = "random",
        device: str = "auto",
        dtype: str | None = "float32",
        random_state: int | None = None,
        verbose: bool = False,
    ):
        self.n_components = n_components
        self.n_restarts = n_restarts
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y=None, *, mask=None, weights=None, init_factors=None):
        """Fit on ``X`` (DataArray with any dims, or an array: dims ``mode_0, mode_1, ...``).

        NaN entries and ``mask == False`` entries are missing and have no influence. ``init_factors``
        (one array per mode) overrides ``init`` for a warm start.
        """
        if not isinstance(X, xr.DataArray):
            arr = np.asarray(X)
            X = xr.DataArray(arr, dims=tuple(f"mode_{n}" for n in range(arr.ndim)))
        if "component" in X.dims:
            raise ConnectomeInputError(
                f"X has dims {tuple(X.dims)}; 'component' is reserved for the factors"
            )
        fit = ntf(
            X,
            self.n_components,
            mask=mask,
            weights=weights,
            n_restarts=self.n_restarts,
            init=self.init if init_factors is None else init_factors,
            max_iter=self.max_iter,
            tol=self.tol,
            device=self.device,
            dtype=self.dtype,
            random_state=self.random_state,
            verbose=self.verbose,
        )
        comp = np.arange(self.n_components)
        data = {}
        for dim, f in zip(X.dims, fit.factors, strict=True):
            coords = {dim: X.coords[dim].values} if dim in X.coords else {}
            data[f"{dim}_factor"] = xr.DataArray(
                f, dims=(dim, "component"), coords={**coords, "component": comp}
            )
            # keep non-index coords along this dim (e.g. roi_i / roi_j on "pair")
            for name, c in X.coords.items():
                if name != dim and c.dims == (dim,):
                    data[f"{dim}_factor"] = data[f"{dim}_factor"].assign_coords({name: c})
        data["weights"] = xr.DataArray(fit.weights, dims=("component",), coords={"component": comp})
        self.factors_ = xr.Dataset(data)
        self.factors_.attrs["modes"] = list(X.dims)
        self.reconstruction_error_ = fit.rel_error
        self.restart_errors_ = xr.DataArray(fit.restart_rel_errors, dims=("restart",))
        self.history_ = fit.history
        self.n_iter_ = fit.n_iter
        self.converged_ = fit.converged
        self.restart_factors_ = fit.restart_factors
        self.best_restart_ = fit.best_restart
        return self

    def factor_list(self) -> list[np.ndarray]:
        """Fitted factors as a list of ``(I_n, R)`` arrays (weights folded into the first mode)."""
        check_is_fitted(self, "factors_")
        modes = self.factors_.attrs["modes"]
        out = [self.factors_[f"{d}_factor"].values.copy() for d in modes]
        out[0] = out[0] * self.factors_["weights"].values
        return out

    def reconstruct(self) -> xr.DataArray:
        """The fitted model as a dense DataArray with the input's dims."""
        facs = self.factor_list()
        modes = self.factors_.attrs["modes"]
        letters = "abcdefghijklmnopqrstuvwxy"[: len(facs)]
        expr = ",".join(f"{c}z" for c in letters) + "->" + letters
        return xr.DataArray(np.einsum(expr, *facs), dims=tuple(modes))


class DynamicConnectome(BaseEstimator):
    """Dynamic functional connectome of calcium traces (Dyballa et al., ICLR 2024).

    The defaults are meant for raw fluorescence or dF/F of several animals alike: traces are
    detrended (10 s high-pass: baselines, bleaching and a slow fluctuation shared by all neurons
    go), the affinity is the clipped Pearson correlation in non-overlapping 30-s windows above its
    window's mean (the noise floor of clipped correlations), the rank
    is the largest one whose restarts agree (:func:`~neuroana.connectome.select_rank`), and
    communities come from spectral clustering with the number chosen by modularity.

    Parameters
    ----------
    window, step : float
        Affinity window and hop (seconds when the traces have a numeric ``time`` coord); ``step``
        defaults to ``window`` (non-overlapping windows).
    affinity : {"correlation", "differential"}
        See :func:`neuroana.connectome.compute_affinity` (which says when the differential one
        helps).
    scale : float
        Kernel scale of the differential affinity.
    detrend : float
        High-pass time scale (s) applied to the traces before the affinity; 0 disables.
    baseline : {"mean", "none"}
        Subtract each window's mean affinity per animal (the noise floor of clipped
        correlations; see :func:`~neuroana.connectome.compute_affinity`).
    n_components : int or "auto"
        NTF rank, or ``"auto"`` to pick it with :func:`neuroana.connectome.select_rank` over
        ``ranks`` (with an epochs table, ranks below the number of episodes are skipped).
    ranks : sequence of int
        Candidate ranks for ``"auto"``.
    stability_threshold : float
        Replicate stability a rank needs to be chosen by ``"auto"``.
    n_restarts, max_iter, tol : NTF settings.
    community_method : {"spectral", "wsbm", "leiden"}
        See :func:`neuroana.connectome.detect_communities`.
    n_runs : int
        Community-detection runs (consensus) or k-means initialisations (spectral).
    max_communities : int
        Largest number of communities considered per component or episode.
    coverage_threshold : float
        A component covers a window (animal) where its factor exceeds this fraction of its maximum.
    episode_threshold : float
        Share of a component's time-factor mass that must lie inside an episode for it to belong
        to that episode's group (``fit(..., epochs=...)``).
    device, verbose : see the other estimators.
    random_state : int, numpy Generator or None
        Seed of the NTF restarts, the rank selection and the community detection; ``None`` (the
        shared default) draws fresh entropy, an int makes the fit reproducible.

    Attributes
    ----------
    affinity_ : xarray.DataArray ``("pair", "window", "animal")``
    ntf_ : NonNegativeTensorFactorization
    rank_selection_ : RankSelection or None
    result_ : xarray.Dataset
        ``pair_factor``, ``window_factor``, ``animal_factor``, ``weights``, ``communities``
        (``component``, ``roi``; ``-1`` for a ROI that shares no animal with any other ROI, whose
        community cannot be estimated), ``n_communities``, ``covers_window`` and ``covers_animal``
        (bool). With epochs also, on an ``episode`` dim: ``episode_start``, ``episode_stop``,
        ``episode_share`` and ``episode_members`` (``episode``, ``component``),
        ``episode_affinity`` (``episode``, ``pair``: the group affinity),
        ``episode_communities`` (``episode``, ``roi``; ``-1`` everywhere for an episode without
        components), ``episode_n_communities`` and ``episode_animal_loading`` (``episode``,
        ``animal``: the animal mode refitted to the floor-free tensor over the episode's windows,
        over its largest value; the measure of whether an animal takes part in an episode, see
        :mod:`neuroana.connectome.episodes`; ``animal_factor`` is the fit to the clipped tensor
        and keeps its noise floor).

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
        affinity: str = "correlation",
        scale: float = 2.0,
        detrend: float = 10.0,
        baseline: str = "mean",
        n_components: int | str = "auto",
        ranks: Sequence[int] = (2, 3, 4, 5, 6, 7, 8),
        stability_threshold: float = 0.95,
        n_restarts: int = 8,
        max_iter: int = 500,
        tol: float = 1e-6,
        community_method: str = "spectral",
        n_runs: int = 10,
        max_communities: int = 12,
        coverage_threshold: float = 0.3,
        episode_threshold: float = 0.5,
        device: str = "auto",
        random_state: int | None = None,
        verbose: bool = False,
    ):
        self.window = window
        self.step = step
        self.affinity = affinity
        self.scale = scale
        self.detrend = detrend
        self.baseline = baseline
        self.n_components = n_components
        self.ranks = ranks
        self.stability_threshold = stability_threshold
        self.n_restarts = n_restarts
        self.max_iter = max_iter
        self.tol = tol
        self.community_method = community_method
        self.n_runs = n_runs
        self.max_communities = max_communities
        self.coverage_threshold = coverage_threshold
        self.episode_threshold = episode_threshold
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, traces, y=None, *, epochs=None):
        """Fit on traces of one or more animals, optionally with an epochs table.

        Parameters
        ----------
        traces : DataArray, array, or list / dict of DataArrays
            ``("time", "roi"[, "animal"])``, or one ``("time", "roi")`` DataArray per animal whose
            ``roi`` coordinates name the same neurons across animals (e.g. read with
            ``read_roi_traces(path, roi_label="neuron_label")``). A neuron absent in an animal is
            masked, never zero.
        epochs : DataFrame or sequence, optional
            Episodes (see :func:`neuroana.connectome.episodes.as_epochs`), in the time unit of
            the traces' ``time`` coordinate.
        """
        stacked = stack_animals(traces)
        ep = None
        if epochs is not None:
            t = stacked["time"].values.astype(float) if "time" in stacked.coords else None
            if t is None:
                raise ConnectomeInputError(
                    "epochs need traces with a numeric 'time' coordinate (seconds)"
                )
            dt = float(np.median(np.diff(t))) if t.size > 1 else 0.0
            ep = as_epochs(epochs, float(t[0]), float(t[-1]), tolerance=dt)
        if self.baseline not in ("none", "mean"):
            raise ConnectomeInputError(f"baseline={self.baseline!r}; expected 'none' or 'mean'")
        raw = compute_affinity(
            stacked,
            window=self.window,
            step=self.window if self.step is None else self.step,
            method=self.affinity,
            scale=self.scale,
            detrend=self.detrend,
            baseline="none",
            device=self.device,
        )
        # the floor-free (signed) tensor; the factorisation fits its non-negative part
        signed = subtract_floor(raw) if self.baseline == "mean" else raw
        aff = np.maximum(signed, 0.0)
        aff.attrs.update(raw.attrs, baseline=self.baseline)
        rank, sel = self._rank(aff, ep)
        init = None if sel is None else sel.models[rank]
        est = NonNegativeTensorFactorization(
            rank,
            n_restarts=1 if init is not None else self.n_restarts,
            max_iter=self.max_iter,
            tol=self.tol,
            device=self.device,
            dtype=None,
            random_state=self.random_state,
            verbose=self.verbose,
        ).fit(aff, init_factors=init)
        f = est.factors_
        n_roi = int(round((1 + np.sqrt(1 + 8 * aff.sizes["pair"])) / 2))
        rois = np.concatenate([aff["roi_i"].values[:1], aff["roi_j"].values[: n_roi - 1]])
        # a pair never observed (its two neurons share no animal) has an unconstrained pair-factor
        # entry: it is missing data for the community model, never a zero-weight edge
        pair_observed = np.isfinite(aff.values).any(axis=(1, 2))
        observed = pair_to_matrix(pair_observed.astype(float), n_roi) > 0
        labels = np.zeros((rank, n_roi), dtype=int)
        ncom = np.zeros(rank, dtype=int)
        for r in range(rank):
            res = self._communities(f["pair_factor"].values[:, r], observed, n_roi)
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
        self.affinity_ = aff
        if ep is not None:
            result = result.merge(self._episodes(f, ep, observed, n_roi, rois, signed.values))
        result.attrs.update(rank=rank, reconstruction_error=est.reconstruction_error_)
        self.affinity_ = aff
        self.ntf_ = est
        self.rank_selection_ = sel
        self.result_ = result
        return self

    def _rank(self, aff: xr.DataArray, ep):
        n_win = aff.sizes["window"]
        if self.n_components != "auto":
            rank = int(self.n_components)
            if rank > n_win:
                raise ConnectomeInputError(
                    f"n_components={rank} but the affinity tensor has only {n_win} windows; "
                    "expected at least as many windows as components (shorten the window or step)"
                )
            return rank, None
        low = 1 if ep is None else len(ep.start)
        ranks = [r for r in self.ranks if low <= r <= n_win]
        if not ranks:
            raise ConnectomeInputError(
                f"only {n_win} windows; no candidate rank in {list(self.ranks)} is between "
                f"{low} (the number of episodes) and the number of windows (shorten the window "
                "or the step, or give n_components)"
            )
        sel = select_rank(
            aff,
            ranks,
            n_restarts=max(2, self.n_restarts),
            heldout_fraction=0.0,
            stability_threshold=self.stability_threshold,
            max_iter=self.max_iter,
            tol=self.tol,
            device=self.device,
            random_state=self.random_state,
        )
        return sel.recommended, sel

    def _communities(self, pair_values: np.ndarray, observed: np.ndarray, n_roi: int):
        return detect_communities(
            pair_to_matrix(pair_values, n_roi),
            observed=observed,
            method=self.community_method,
            n_runs=self.n_runs,
            max_communities=self.max_communities,
            random_state=self.random_state,
        )

    def _episodes(self, f: xr.Dataset, ep, observed, n_roi: int, rois, signed) -> xr.Dataset:
        wf = f["window_factor"]
        g = episode_groups(
            f["pair_factor"].values,
            wf.values,
            f["animal_factor"].values,
            f["weights"].values,
            wf["time"].values,
            ep,
            self.episode_threshold,
            floor_free=signed,
        )
        n_ep = len(ep.start)
        labels = np.full((n_ep, n_roi), -1)
        ncom = np.zeros(n_ep, dtype=int)
        # a pair seen only in animals that do not take part in the episode (loading < 0.5 of the
        # largest) carries no information about its communities: it is unobserved for that
        # episode (a neuron seen only there gets -1)
        pair_in_animal = np.isfinite(self.affinity_.values).any(axis=1).astype(float)  # (P, A)
        for e in range(n_ep):
            if g.members[e].any():
                load = g.animal_loading[e]
                takes_part = ~np.isfinite(load) | (load >= 0.5)
                evidence = pair_in_animal[:, takes_part].any(axis=1)
                seen = pair_to_matrix(evidence.astype(float), n_roi)
                res = self._communities(g.pair_affinity[e], observed & (seen > 0), n_roi)
                labels[e], ncom[e] = res.labels, res.n_blocks
        coords = {"episode": ep.name, "roi": rois}
        animal = {"animal": f["animal_factor"]["animal"].values} if "animal" in f.coords else {}
        return xr.Dataset(
            {
                "episode_start": ("episode", ep.start),
                "episode_stop": ("episode", ep.stop),
                "episode_share": (("episode", "component"), g.share),
                "episode_affinity": (("episode", "pair"), g.pair_affinity),
                "episode_members": (("episode", "component"), g.members),
                "episode_communities": (("episode", "roi"), labels),
                "episode_n_communities": ("episode", ncom),
                "episode_animal_loading": (("episode", "animal"), g.animal_loading),
            },
            coords={**coords, **animal},
        )
