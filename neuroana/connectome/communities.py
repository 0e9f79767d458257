"""Weighted community detection on an ROI x ROI affinity graph.

``method="spectral"`` (default): normalised spectral clustering (Ng, Jordan & Weiss: the leading
``k`` eigenvectors of ``D^-1/2 W D^-1/2``, rows scaled to unit length, k-means) for every ``k`` in
``1..max_communities``; the number of communities is the ``k`` whose partition has the highest
weighted modularity ``Q = sum_c [W_cc / W - (d_c / W)^2]`` (``k = 1`` has ``Q = 0``, so a graph
without community structure gets one community). ``n_runs`` k-means initialisations per ``k``.
Unobserved pairs enter as the mean observed weight of their two nodes' rows (neutral for both the
eigenvectors and the modularity null model). On weighted blocks with a floor of noise weight this
recovers the planted number of blocks where the weighted SBM below merges blocks (measured on
``../shared/cases/connectome_multi_animal``: issue 12).

``method="wsbm"``: a Bayesian weighted stochastic block model written in numpy. The graph
is the dense graph of the affinity matrix over the *observed* pairs (every observed pair is an
edge whose weight is the affinity; a pair never observed together, e.g. two neurons recorded in
different animals, is missing data and contributes nothing, instead of a zero-weight edge). Edge weights between blocks ``r`` and ``s`` are exponential with rate ``lambda_rs``
under a conjugate ``Gamma(alpha, beta)`` prior (``alpha = 1``, ``beta = alpha * mean weight``, the
graph-tool ``real-exponential`` default), so each block pair's marginal likelihood is closed form:

    log p(w_rs) = alpha log beta - lgamma(alpha) + lgamma(alpha + n_rs) - (alpha + n_rs) log(beta + S_rs)

with ``n_rs`` observed edges of total weight ``S_rs``. The description length is
``DL = -sum_{r<=s} log p(w_rs) - log P(b)``, with Peixoto's (2017) nonparametric partition prior
``P(b) = [prod_r n_r! / N!] * C(N-1, B-1)^-1 * N^-1``. The number of blocks ``B`` is therefore
chosen by the model (minimum DL), not by the user. Each run starts from a random partition with
``B0`` blocks and alternates greedy single-node moves (exact incremental DL changes) with the best
block merges until no move lowers the DL. ``n_runs`` seeded runs are combined by consensus: the
co-assignment matrix over runs is thresholded at 1/2 and its connected components are the consensus
communities; the minimum-DL run is also returned. (Flat model only: the paper's nested hierarchy is
not implemented. graph-tool's ``minimize_blockmodel_dl`` is used instead when ``graph_tool`` is
importable and ``backend="auto"``.)

``method="leiden"``: the Leiden algorithm (``leidenalg`` + ``igraph``) maximising weighted modularity
(``resolution`` = the RB configuration resolution), consensus over ``n_runs`` seeds the same way.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.sparse.csgraph import connected_components
from scipy.special import gammaln
from sklearn.cluster import KMeans

from neuroana.errors import ConnectomeInputError


class CommunityResult(NamedTuple):
    """Result of :func:`detect_communities`.

    Attributes
    ----------
    labels : ndarray
        Consensus community per node (``0..K-1``, ordered by first appearance; ``-1`` for a node
        with no observed pair).
    best_labels : ndarray
        The single run with the best objective (lowest DL for the WSBM, highest quality for Leiden).
    objective : float
        Modularity (spectral), description length in nats (WSBM) or Leiden quality of
        ``best_labels``.
    n_blocks : int
        Number of consensus communities.
    coassignment : ndarray
        ``(N, N)`` fraction of runs that put each pair in the same community.
    """

    labels: np.ndarray
    best_labels: np.ndarray
    objective: float
    n_blocks: int
    coassignment: np.ndarray


def _relabel(labels: np.ndarray) -> np.ndarray:
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(first)
    mapping = np.empty(labels.max() + 1, dtype=int)
    mapping[np.unique(labels)[order]] = np.arange(order.size)
    return mapping[labels]


class _WSBM:
    """Incremental state of the exponential-weight SBM on a dense symmetric weight matrix."""

    def __init__(
        self,
        w: np.ndarray,
        labels: np.ndarray,
        n_blocks_max: int,
        observed: np.ndarray,
        alpha: float = 1.0,
    ):
        self.w = w * observed
        self.o = observed.astype(float)
        self.n = w.shape[0]
        self.alpha = alpha
        iu = np.triu_indices(self.n, 1)
        off = w[iu][observed[iu]]
        self.beta = alpha * max(float(off.mean()) if off.size else 0.0, 1e-12)
        self.bmax = n_blocks_max
        self.labels = labels.copy()
        self._rebuild()

    def _rebuild(self) -> None:
        z = np.zeros((self.n, self.bmax))
        z[np.arange(self.n), self.labels] = 1.0
        self.sizes = z.sum(0)
        s = z.T @ self.w @ z
        e = z.T @ self.o @ z  # observed pairs per block pair (the diagonal of o is 0)
        np.fill_diagonal(s, np.diag(s) / 2.0)
        np.fill_diagonal(e, np.diag(e) / 2.0)
        self.e, self.s = e, s

    def _f(self, e: np.ndarray, s: np.ndarray) -> np.ndarray:
        a, b = self.alpha, self.beta
        return a * np.log(b) - gammaln(a) + gammaln(a + e) - (a + e) * np.log(b + s)

    def _prior(self, sizes: np.ndarray) -> float:
        nb = int((sizes > 0).sum())
        n = self.n
        log_binom = gammaln(n) - gammaln(nb) - gammaln(n - nb + 1)
        return -(gammaln(n + 1) - gammaln(sizes[sizes > 0] + 1).sum() + log_binom + np.log(n))

    def dl(self) -> float:
        iu = np.triu_indices(self.bmax)
        return float(-self._f(self.e[iu], self.s[iu]).sum() - self._prior(self.sizes))

    def sweep(self, rng: np.random.Generator) -> bool:
        """Greedy single-node moves in random order; True if any move lowered the DL."""
        moved = False
        for i in rng.permutation(self.n):
            r = self.labels[i]
            if self.sizes[r] <= 1 and (self.sizes > 0).sum() <= 1:
                continue
            a = np.bincount(self.labels, weights=self.w[i], minlength=self.bmax)
            o = np.bincount(self.labels, weights=self.o[i], minlength=self.bmax)
            c = self.sizes.copy()
            c[r] -= 1
            # remove i from r: its observed pairs (o) and their weights (a) leave row/column r
            e1, s1 = self.e.copy(), self.s.copy()
            e1[r, :] -= o
            s1[r, :] -= a
            e1[:, r] = e1[r, :]
            s1[:, r] = s1[r, :]
            e1[r, r] = self.e[r, r] - o[r]
            s1[r, r] = self.s[r, r] - a[r]
            # gain of adding i to each candidate block s: row s changes by (o, a)
            f0 = self._f(e1, s1)
            f1 = self._f(e1 + o[None, :], s1 + a[None, :])
            delta_like = (f1 - f0).sum(1)
            sizes1 = c
            empty = np.flatnonzero(sizes1 == 0)
            cand = np.flatnonzero(sizes1 > 0)
            if empty.size:
                cand = np.append(cand, empty[0])
            best, best_val = r, None
            for sblk in cand:
                sz = sizes1.copy()
                sz[sblk] += 1
                val = -delta_like[sblk] - self._prior(sz)
                if (
                    best_val is None
                    or val < best_val - 1e-9
                    or (sblk == r and val <= best_val + 1e-9)
                ):
                    best, best_val = sblk, val
            if best != r:
                self.labels[i] = best
                self._rebuild()
                moved = True
        return moved

    def merge_once(self) -> bool:
        """Apply the block merge that lowers the DL most; True if one did."""
        cur = self.dl()
        occupied = np.flatnonzero(self.sizes > 0)
        best, best_dl = None, cur - 1e-9
        for x in range(occupied.size):
            for y in range(x + 1, occupied.size):
                lab = self.labels.copy()
                lab[lab == occupied[y]] = occupied[x]
                trial = _WSBM.__new__(_WSBM)
                trial.__dict__.update(self.__dict__)
                trial.labels = lab
                trial._rebuild()
                d = trial.dl()
                if d < best_dl:
                    best, best_dl = lab, d
        if best is None:
            return False
        self.labels = best
        self._rebuild()
        return True


def _wsbm_run(
    w: np.ndarray, observed: np.ndarray, rng: np.random.Generator, n_init_blocks: int
) -> tuple[np.ndarray, float]:
    n = w.shape[0]
    b0 = max(1, min(n, n_init_blocks))
    labels = rng.integers(0, b0, n)
    st = _WSBM(w, labels, n_blocks_max=n, observed=observed)
    for _ in range(50):
        moved = st.sweep(rng)
        merged = st.merge_once()
        if not moved and not merged:
            break
    return _relabel(st.labels), st.dl()


def _consensus(runs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    n = runs[0].size
    co = np.zeros((n, n))
    for lab in runs:
        co += lab[:, None] == lab[None, :]
    co /= len(runs)
    _, comp = connected_components(co > 0.5, directed=False)
    return _relabel(comp), co


def _graph_tool_run(
    w: np.ndarray, observed: np.ndarray, seed: int
) -> tuple[np.ndarray, float]:  # pragma: no cover
    import graph_tool.all as gt

    gt.seed_rng(seed)
    n = w.shape[0]
    g = gt.Graph(directed=False)
    g.add_vertex(n)
    ii, jj = np.triu_indices(n, 1)
    keep = observed[ii, jj]
    ii, jj = ii[keep], jj[keep]
    ew = g.new_edge_property("double")
    g.add_edge_list(np.column_stack([ii, jj, w[ii, jj]]), eprops=[ew])
    state = gt.minimize_blockmodel_dl(g, state_args=dict(recs=[ew], rec_types=["real-exponential"]))
    return _relabel(np.asarray(state.get_blocks().a)), float(state.entropy())


def _leiden_run(
    w: np.ndarray, observed: np.ndarray, seed: int, resolution: float
) -> tuple[np.ndarray, float]:
    import igraph as ig
    import leidenalg

    n = w.shape[0]
    ii, jj = np.triu_indices(n, 1)
    keep = (w[ii, jj] > 0) & observed[ii, jj]
    g = ig.Graph(n=n, edges=list(zip(ii[keep].tolist(), jj[keep].tolist(), strict=True)))
    g.es["weight"] = w[ii, jj][keep].tolist()
    part = leidenalg.find_partition(
        g,
        leidenalg.RBConfigurationVertexPartition,
        weights="weight",
        resolution_parameter=resolution,
        seed=seed,
    )
    return _relabel(np.asarray(part.membership)), float(part.quality())


def modularity(w: np.ndarray, labels: np.ndarray) -> float:
    """Weighted Newman modularity of a partition of a symmetric non-negative matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.connectome.communities import modularity
    >>> w = np.kron(np.eye(2), np.ones((3, 3))); np.fill_diagonal(w, 0)
    >>> round(modularity(w, np.array([0, 0, 0, 1, 1, 1])), 3)
    0.5
    """
    total = w.sum()
    if total <= 0:
        return 0.0
    z = np.eye(int(labels.max()) + 1)[labels]
    within = np.trace(z.T @ w @ z) / total
    deg = (z.T @ w.sum(1)) / total
    return float(within - (deg**2).sum())


def _spectral_partition(
    w: np.ndarray, max_k: int, n_init: int, seed: int
) -> tuple[np.ndarray, float, np.ndarray]:
    """NJW spectral clustering for k = 1..max_k; the partition of highest modularity.

    Returns ``(labels, modularity, modularity per k)``.
    """
    n = w.shape[0]
    deg = w.sum(1)
    dinv = 1.0 / np.sqrt(np.where(deg > 0, deg, 1.0))
    lap = dinv[:, None] * w * dinv[None, :]
    vals, vecs = np.linalg.eigh(lap)
    vecs = vecs[:, ::-1]
    best, best_q = np.zeros(n, dtype=int), 0.0
    qs = [0.0]
    for k in range(2, max_k + 1):
        emb = vecs[:, :k]
        emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        lab = KMeans(k, n_init=n_init, random_state=seed).fit_predict(emb)
        q = modularity(w, lab)
        qs.append(q)
        if q > best_q + 1e-9:
            best, best_q = lab, q
    return _relabel(best), best_q, np.array(qs)


def detect_communities(
    affinity,
    *,
    method: str = "spectral",
    n_runs: int = 10,
    max_communities: int = 12,
    n_init_blocks: int | None = None,
    resolution: float = 1.0,
    backend: str = "auto",
    observed=None,
    random_state: int | None = 0,
) -> CommunityResult:
    """Communities of a weighted ROI x ROI affinity graph.

    Parameters
    ----------
    affinity : array_like
        Symmetric non-negative ``(N, N)`` matrix (the diagonal is ignored), or a pair vector in
        ``numpy.triu_indices(N, 1)`` order (e.g. one NTF pair factor).
    method : {"spectral", "wsbm", "leiden"}
        Spectral clustering with the number of communities chosen by modularity, Bayesian
        weighted SBM (number of blocks chosen by minimum description length) or Leiden modularity
        (see the module docstring).
    n_runs : int
        Seeded runs combined by consensus (``"wsbm"``, ``"leiden"``) or k-means initialisations
        per candidate number of communities (``"spectral"``).
    max_communities : int
        Largest number of communities ``"spectral"`` considers (capped at ``N - 1``).
    n_init_blocks : int, optional
        Blocks of each WSBM run's random start (default ``ceil(2 sqrt(N))``); merges reduce them.
    resolution : float
        Leiden resolution.
    backend : {"auto", "numpy"}
        ``"auto"`` uses graph-tool for the WSBM when it is importable.
    observed : array_like of bool, optional
        ``(N, N)`` (or pair vector) mask of the pairs that were observed. Unobserved pairs, and NaN
        entries of ``affinity``, are *missing*, not zero-weight edges: the WSBM leaves them out of
        its block likelihoods and Leiden leaves them out of the graph. A node with no observed
        pair cannot be placed and gets label ``-1``.
    random_state : int, optional
        Seed.

    Returns
    -------
    CommunityResult

    Raises
    ------
    ConnectomeInputError
        Non-square, asymmetric, negative or infinite affinities; unknown method; fewer than two
        nodes with an observed pair.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.connectome import detect_communities
    >>> truth = np.repeat([0, 1, 2], 6)
    >>> w = np.where(truth[:, None] == truth[None, :], 1.0, 0.05)
    >>> res = detect_communities(w, n_runs=3, random_state=0)
    >>> res.n_blocks, bool((res.labels == truth).all())
    (3, True)
    >>> detect_communities(w, method="wsbm", n_runs=3, random_state=0).n_blocks
    3
    """
    w = np.asarray(affinity, dtype=float)
    if w.ndim == 1:
        from neuroana.connectome.affinity import pair_to_matrix

        w = pair_to_matrix(w)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise ConnectomeInputError(f"affinity has shape {w.shape}; expected a square (N, N) matrix")
    if np.any(np.isinf(w)):
        raise ConnectomeInputError("affinity has infinite entries; expected finite weights or NaN")
    obs = np.isfinite(w)
    if observed is not None:
        o = np.asarray(observed, dtype=bool)
        if o.ndim == 1:
            from neuroana.connectome.affinity import pair_to_matrix

            o = pair_to_matrix(o.astype(float), w.shape[0]) > 0
        if o.shape != w.shape:
            raise ConnectomeInputError(
                f"observed has shape {o.shape}; expected the affinity's shape {w.shape}"
            )
        obs &= o | o.T
    np.fill_diagonal(obs, False)
    w = np.where(obs, w, 0.0)
    if np.any(w < 0):
        raise ConnectomeInputError(
            f"affinity has negative weights (min {w.min():.4g}); expected >= 0"
        )
    if not np.array_equal(obs, obs.T) or not np.allclose(
        w, w.T, atol=1e-10 * max(1.0, np.abs(w).max())
    ):
        raise ConnectomeInputError(
            "affinity is not symmetric; expected an undirected weight matrix"
        )
    if method not in ("spectral", "wsbm", "leiden"):
        raise ConnectomeInputError(f"method={method!r}; expected 'spectral', 'wsbm' or 'leiden'")
    if max_communities < 1:
        raise ConnectomeInputError(f"max_communities={max_communities}; expected >= 1")
    if n_runs < 1:
        raise ConnectomeInputError(f"n_runs={n_runs}; expected >= 1")
    if backend not in ("auto", "numpy"):
        raise ConnectomeInputError(f"backend={backend!r}; expected 'auto' or 'numpy'")
    n_total = w.shape[0]
    node_ok = obs.any(1)
    if node_ok.sum() < 2:
        raise ConnectomeInputError(
            f"only {int(node_ok.sum())} node(s) have an observed pair; expected at least 2"
        )
    keep = np.flatnonzero(node_ok)
    w, obs = w[np.ix_(keep, keep)], obs[np.ix_(keep, keep)]
    n = keep.size
    rng = np.random.default_rng(random_state)
    seeds = rng.integers(0, 2**31 - 1, n_runs)
    if method == "spectral":
        filled = _fill_unobserved(w, obs)
        lab, q, _ = _spectral_partition(filled, min(max_communities, n - 1), n_runs, int(seeds[0]))
        co = (lab[:, None] == lab[None, :]).astype(float)
        return _full_result(lab, lab, q, co, keep, n_total)
    if method == "leiden":
        try:
            import igraph  # noqa: F401
            import leidenalg  # noqa: F401
        except ImportError as err:
            raise ImportError(
                "method='leiden' needs the igraph and leidenalg packages: "
                "pip install 'neuroana[community]'"
            ) from err
        runs = [_leiden_run(w, obs, int(s), resolution) for s in seeds]
        best = max(runs, key=lambda t: t[1])
    else:
        use_gt = False
        if backend == "auto":
            try:
                import graph_tool  # noqa: F401

                use_gt = True
            except ImportError:
                use_gt = False
        b0 = n_init_blocks or int(np.ceil(2 * np.sqrt(n)))
        if use_gt:  # pragma: no cover - graph-tool is not on PyPI
            runs = [_graph_tool_run(w, obs, int(s)) for s in seeds]
        else:
            runs = [_wsbm_run(w, obs, np.random.default_rng(int(s)), b0) for s in seeds]
        best = min(runs, key=lambda t: t[1])
    labels, co = _consensus([r[0] for r in runs])
    return _full_result(labels, best[0], best[1], co, keep, n_total)


def _fill_unobserved(w: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Unobserved off-diagonal entries -> mean observed weight of the two nodes' rows."""
    cnt = obs.sum(1)
    row_mean = np.where(cnt > 0, (w * obs).sum(1) / np.maximum(cnt, 1), 0.0)
    fill = 0.5 * (row_mean[:, None] + row_mean[None, :])
    out = np.where(obs, w, fill)
    np.fill_diagonal(out, 0.0)
    return out


def _full_result(labels, best, objective, co, keep, n_total) -> CommunityResult:
    full_labels = np.full(n_total, -1)
    full_labels[keep] = labels
    full_best = np.full(n_total, -1)
    full_best[keep] = best
    full_co = np.full((n_total, n_total), np.nan)
    full_co[np.ix_(keep, keep)] = co
    return CommunityResult(
        labels=full_labels,
        best_labels=full_best,
        objective=float(objective),
        n_blocks=int(labels.max() + 1),
        coassignment=full_co,
    )
