"""Connectivity read-outs with one layout: ``Dataset`` of ``(target, source)`` scores and p-values.

Every read-out here returns an :class:`xarray.Dataset` with dims ``("target", "source")`` — row =
the unit that *receives*, column = the unit that *sends* (``score.sel(target=b, source=a)`` is the
evidence for ``a -> b``) — and at least the variables ``score`` (higher = stronger evidence of an
excitatory edge; negative values = inhibitory) and ``p_value`` (from a null computed by the same
call). The diagonal (a unit's own history: refractoriness) is not an edge and is set to 0 / 1.

- :func:`model_connectivity`: a Wald test of each coupling kernel of a fitted
  :class:`SpikeRateModel` (or of the package's coupled GLM, :func:`coupled_glm`), with each
  target's Fisher information measured on the given (held-out) windows and every other input of
  the target as nuisance; chi-square p-values, signed by the kernel's integral. The held-out
  ablation gain (the log-likelihood the target loses without the source's history) comes beside
  it, with a time-shift null on request. Shared slow fluctuations are absorbed by the
  population-rate and attention inputs, so they do not appear as edges.
- :func:`ccg_connectivity`: the cross-correlogram baseline (target spikes 1-25 ms after source
  spikes against the count expected from flanking lags), Poisson p-values.
- :func:`compare_connectivity`: the model, the package's coupled GLM (:func:`coupled_glm`) and the
  cross-correlogram side by side (dim ``method``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import xarray as xr
from sklearn.exceptions import NotFittedError

from neuroana.backend.threads import fit_threads, limit_threads
from neuroana.pretrain.ratemodel import LN2, SpikeRateModel, spike_dict

#: work per step (multiply-adds) below which a fit runs on one thread
MIN_WORK = 5e7


def _dataset(units, score, p, **extra) -> xr.Dataset:
    coords = {"target": list(units), "source": list(units)}
    n = len(units)
    score, p = np.array(score, float), np.array(p, float)
    score[np.arange(n), np.arange(n)] = 0.0
    p[np.arange(n), np.arange(n)] = 1.0
    data = {"score": (("target", "source"), score), "p_value": (("target", "source"), p)}
    for k, v in extra.items():
        v = np.array(v, float)
        v[np.arange(n), np.arange(n)] = np.nan
        data[k] = (("target", "source"), v)
    ds = xr.Dataset(data, coords=coords)
    ds.attrs["orientation"] = "score[target, source]: evidence for source -> target"
    return ds


def model_connectivity(
    model: SpikeRateModel,
    spikes,
    t_start: float,
    t_stop: float,
    *,
    n_null: int = 0,
    max_windows: int | None = None,
    batch_size: int = 4,
    random_state: int | None = None,
    verbose: bool = False,
) -> xr.Dataset:
    """Wald read-out of a fitted model's coupling kernels, with its Fisher information measured on
    the given (held-out) windows, and a held-out ablation gain with a time-shift null.

    For every target ``j`` the model's log-rate is linear in its bias, its coupling kernels from
    every source (``N * n_basis`` weights), its population-rate weights and its attention read-out.
    The Fisher information of these weights, ``sum_t rate_j(t) x(t) x(t)^T`` over the fine bins of
    the given windows, is scaled to the number of bins the model was fitted on
    (``model.n_fit_bins_``) and the fit's L2 penalty is added: the precision of the fitted weights
    (a Laplace approximation), measured on data the model did not see. The Wald statistic of the
    kernel ``a -> b`` is ``w^T Cov^{-1} w`` over its ``n_basis`` weights, with every other weight of
    the target (other sources, its own history, the shared-rate inputs) as nuisance; under "no
    edge" it is chi-square with ``n_basis`` degrees of freedom (``p_value``). ``score`` is the
    two-sided normal equivalent of that p-value, signed by the kernel's integral (positive:
    excitatory). Shared slow fluctuations enter through the population-rate and attention inputs,
    so they do not appear as edges.

    Parameters
    ----------
    model : SpikeRateModel
        Fitted, with the ``"coupling"`` pathway.
    spikes : mapping
        ``{unit: times}``, the units the model was fitted on, same order.
    t_start, t_stop : float
        Windows to evaluate (use data the model was not fitted on).
    n_null : int
        Circular time shifts of every source's history inside each window (by 10-90 % of the
        window) for a resampling null of the held-out ablation ``gain``:
        ``gain_p_value = (1 + #{null >= gain}) / (1 + n_null)`` and the band ``null_mean``,
        ``null_sd``, ``null_q95`` (0: none; 19 gives p-values down to 0.05).
    max_windows : int, optional
        Evaluate a random subset of this many windows (of ``model.chunk`` seconds each).
    batch_size : int
        Windows per batch (memory about ``batch_size * chunk/dt * N * (N * n_basis + N)`` floats).
    random_state : int, optional
        Seed of the window subset and of the time shifts.
    verbose : bool
        Progress bar.

    Returns
    -------
    xarray.Dataset
        Dims ``(target, source)``: ``score`` (signed Wald z), ``p_value`` (Wald), ``wald_chi2``,
        ``gain`` (held-out log-likelihood the target loses when the source's history is removed,
        bits per target spike), ``weight`` (the kernel's value at its largest-magnitude lag) and,
        with ``n_null``, ``gain_p_value``, ``null_mean``, ``null_sd`` and ``null_q95``.

    Notes
    -----
    Cost, over the evaluated fine bins ``n_bins``: the Fisher information ``n_bins * N * D**2``
    multiply-adds with ``D = N * n_basis + 1 + 3 + d_latent`` (a 48-unit network, 120 s at 2 ms:
    about 3e11), ``N`` inversions of ``D x D`` matrices, and the ablation gain about ``6 * n_bins
    * N**2`` element operations, again per null shift. Measured on one thread of a loaded 2-core
    machine, 48 units, 120 s: 15-40 s with ``n_null=0``; each null shift adds about 3 s.
    ``max_windows`` cuts the cost in proportion.

    Examples
    --------
    >>> from neuroana.datasets.spiking_sim import simulate_chain
    >>> from neuroana.pretrain import SpikeRateModel, model_connectivity
    >>> net = simulate_chain(duration=60.0, random_state=0)
    >>> m = SpikeRateModel(max_epochs=4, verbose=False).fit(net.spike_times, t_stop=40.0)
    >>> ds = model_connectivity(m, net.spike_times, 40.0, 60.0, random_state=0)
    >>> bool(ds.score.sel(target=1, source=0) > ds.score.sel(target=0, source=1))
    True
    """
    from scipy.special import ndtri_exp
    from scipy.stats import chi2
    from tqdm.auto import tqdm

    if not hasattr(model, "net_"):
        raise NotFittedError("the model is not fitted yet; call fit first")
    if "coupling" not in model.net_.pathways:
        raise ValueError("model_connectivity needs a model with the 'coupling' pathway")
    if n_null < 0:
        raise ValueError(f"n_null={n_null} must be >= 0")
    net = model.net_
    X, y, ctx, n_loss, n_chunk, starts = model._chunks(spikes, t_start, t_stop)
    rng = np.random.default_rng(random_state)
    order = np.arange(len(starts))
    if max_windows is not None and max_windows < len(order):
        order = np.sort(rng.choice(order, int(max_windows), replace=False))
    N, K, c = len(model.units_), net.n_basis, net.coarse
    L = ctx + n_chunk
    W = net.coupling.detach()
    use_pop, use_att = "poprate" in net.pathways, "attention" in net.pathways
    D = 1 + N * K + use_pop * len(net.pop_windows) + use_att * net.d_latent
    fisher = torch.zeros(N, D, D, dtype=torch.float64)
    obs = torch.zeros(N, N, dtype=torch.float64)
    null = torch.zeros(max(n_null, 1), N, N, dtype=torch.float64)
    n_spk = torch.zeros(N, dtype=torch.float64)
    n_bins = 0
    lo = max(1, n_chunk // 10)
    work = batch_size * n_chunk * N * D * D
    bar = tqdm(total=len(order), desc="model_connectivity", disable=not verbose)
    with torch.no_grad(), limit_threads(fit_threads(work, MIN_WORK, requested=model.n_threads)):
        for k in range(0, len(order), batch_size):
            idx = order[k : k + batch_size]
            xb = torch.stack([X[starts[i] : starts[i] + L] for i in idx])
            yb = torch.stack(
                [torch.from_numpy(y[ctx + starts[i] : ctx + starts[i] + n_chunk]) for i in idx]
            )
            valid = torch.stack([(starts[i] + torch.arange(n_chunk)) < n_loss for i in idx])
            eta, z = net(xb)
            lam = eta.exp() * valid[..., None]
            yb = yb * valid[..., None]
            H = net.history(xb)  # (B, T, N, K)
            feats = [torch.ones(*H.shape[:2], 1), H.reshape(*H.shape[:2], N * K)]
            if use_pop:
                feats.append(net.pop_inputs(xb).repeat_interleave(c, dim=1))
            if use_att:
                feats.append(z.repeat_interleave(c, dim=1))
            Fm = torch.cat(feats, -1)[valid]  # (n, D)
            lam_v = lam[valid]  # (n, N)
            for j in range(N):
                fisher[j] += ((Fm.T * lam_v[:, j]) @ Fm).double()
            n_bins += int(valid.sum())
            C = torch.einsum("btsk,jsk->btjs", H, W)
            obs += (yb[..., None] * C - lam[..., None] * (-torch.expm1(-C))).sum((0, 1)).double()
            lam_a = lam[..., None] * torch.exp(-C)  # rate with the source ablated
            for r in range(n_null):
                Hs = torch.roll(H, int(rng.integers(lo, n_chunk - lo + 1)), dims=1)
                Cs = torch.einsum("btsk,jsk->btjs", Hs, W)
                null[r] += (yb[..., None] * Cs - lam_a * torch.expm1(Cs)).sum((0, 1)).double()
            n_spk += yb.sum((0, 1, 2)).double()
            bar.update(len(idx))
    bar.close()
    chi, sign = _wald(fisher, W, net.basis, model, n_bins)
    logp = chi2.logsf(chi, K)
    score = sign * np.maximum(-ndtri_exp(logp - LN2), 0.0)
    norm = (n_spk.clamp_min(1) * LN2)[:, None]
    gain, nul = (obs / norm).numpy(), (null / norm).numpy()
    kern = torch.einsum("jsk,kl->jsl", W, net.basis).numpy()
    peak = np.take_along_axis(kern, np.abs(kern).argmax(-1)[..., None], -1)[..., 0]
    extra = {"wald_chi2": chi, "gain": gain, "weight": peak}
    if n_null:
        extra.update(
            gain_p_value=(1 + (nul >= gain[None]).sum(0)) / (1 + n_null),
            null_mean=nul.mean(0),
            null_sd=nul.std(0),
            null_q95=np.quantile(nul, 0.95, 0),
        )
    ds = _dataset(model.units_, score, np.exp(logp), **extra)
    ds.attrs.update(
        method="model Wald (held-out Fisher)",
        t_start=float(t_start),
        t_stop=float(t_stop),
        n_windows=len(order),
        n_null=int(n_null),
        unit="signed normal-equivalent z",
    )
    return ds


def _wald(fisher, W, basis, model, n_bins):
    """Wald chi-square of every kernel and the sign of its integral, from per-target Fisher
    information ``fisher (N, D, D)`` over ``n_bins`` bins (coupling weights at ``1 : 1 + N * K``)."""
    N, _, K = W.shape
    prec = fisher * (getattr(model, "n_fit_bins_", n_bins) / max(n_bins, 1))
    ck = torch.arange(1, 1 + N * K)
    prec[:, ck, ck] += 2.0 * float(model.l2_ or 0.0)
    d = torch.diagonal(prec, dim1=1, dim2=2)
    prec += torch.diag_embed(1e-9 * d.mean(-1, keepdim=True).expand_as(d) + 1e-12)
    cov = torch.linalg.inv(prec)[:, 1 : 1 + N * K, 1 : 1 + N * K].reshape(N, N, K, N, K)
    blocks = torch.diagonal(cov, dim1=1, dim2=3).permute(0, 3, 1, 2)  # (target, source, K, K)
    w = W.double()[..., None]
    chi = (w.transpose(-1, -2) @ torch.linalg.solve(blocks, w))[..., 0, 0].clamp_min(0)
    integral = (W.double() * basis.double().sum(-1)).sum(-1)
    return chi.numpy(), np.where(integral.numpy() >= 0, 1.0, -1.0)


def ccg_connectivity(
    spikes,
    t_start: float,
    t_stop: float,
    *,
    window: tuple = (0.001, 0.025),
    baseline: tuple = (0.05, 0.1),
) -> xr.Dataset:
    """Cross-correlogram read-out: target spikes ``window`` after source spikes vs. expectation.

    ``n_exp`` is the count per second of lag at ``|lag|`` in ``baseline`` (both sides) times the
    window length; ``score = (n_post - n_exp) / sqrt(n_exp)``, ``p_value`` = Poisson upper tail of
    ``n_post`` given ``n_exp``. Only source spikes in ``[t_start, t_stop)`` are used.

    Examples
    --------
    >>> from neuroana.datasets.spiking_sim import simulate_chain
    >>> from neuroana.pretrain import ccg_connectivity
    >>> net = simulate_chain(duration=60.0, random_state=0)
    >>> ds = ccg_connectivity(net.spike_times, 0.0, 60.0)
    >>> bool(ds.score.sel(target=1, source=0) > ds.score.sel(target=0, source=1))
    True
    """
    from scipy.stats import poisson

    sp = spike_dict(spikes)
    units = list(sp)
    a, b = window
    b0, b1 = baseline
    if not (0 <= a < b and 0 < b0 < b1):
        raise ValueError(f"window={window} and baseline={baseline} must be increasing and positive")
    N = len(units)
    post = np.zeros((N, N))
    base = np.zeros((N, N))
    for s, u in enumerate(units):
        ts = sp[u][(sp[u] >= t_start) & (sp[u] < t_stop)]
        for j, v in enumerate(units):
            tj = sp[v]

            def cnt(lo, hi, tj=tj, ts=ts):
                return float((np.searchsorted(tj, ts + hi) - np.searchsorted(tj, ts + lo)).sum())

            post[j, s] = cnt(a, b)
            base[j, s] = cnt(b0, b1) + cnt(-b1, -b0)
    n_exp = np.maximum(base / (2 * (b1 - b0)) * (b - a), 1e-9)
    score = (post - n_exp) / np.sqrt(n_exp)
    p = poisson.sf(post - 1, n_exp)
    ds = _dataset(units, score, p, n_post=post, n_expected=n_exp)
    ds.attrs.update(method="cross-correlogram", t_start=float(t_start), t_stop=float(t_stop))
    return ds


def compare_connectivity(
    spikes, models: Mapping[str, SpikeRateModel], t_start: float, t_stop: float, *, ccg=True, **kw
) -> xr.Dataset:
    """Read-outs of several fitted models (and the cross-correlogram) side by side.

    ``models`` maps a name to a fitted :class:`SpikeRateModel` (e.g. ``{"model": m, "glm":
    coupled_glm().fit(...)}``); ``kw`` goes to :func:`model_connectivity`. Returns ``score`` and
    ``p_value`` with dims ``("method", "target", "source")``.
    """
    parts = {
        name: model_connectivity(m, spikes, t_start, t_stop, **kw) for name, m in models.items()
    }
    if ccg:
        parts["ccg"] = ccg_connectivity(spikes, t_start, t_stop)
    out = xr.concat(
        [ds[["score", "p_value"]] for ds in parts.values()], dim="method", combine_attrs="drop"
    )
    out = out.assign_coords(method=list(parts))
    out.attrs["orientation"] = "score[method, target, source]: evidence for source -> target"
    return out


def edge_auroc(score, positive, negative) -> float:
    """AUROC of ``score`` separating ``positive`` from ``negative`` pairs (boolean masks, same
    ``(target, source)`` layout; NaN scores dropped).

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.pretrain import edge_auroc
    >>> edge_auroc(np.array([[0, 2.0], [1.0, 0]]), np.array([[0, 1], [0, 0]], bool),
    ...            np.array([[0, 0], [1, 0]], bool))
    1.0
    """
    from sklearn.metrics import roc_auc_score

    s = np.asarray(score, float)
    pos, neg = np.asarray(positive, bool), np.asarray(negative, bool)
    if s.shape != pos.shape or s.shape != neg.shape:
        raise ValueError(f"score {s.shape}, positive {pos.shape}, negative {neg.shape} differ")
    if (pos & neg).any():
        raise ValueError("a pair is both positive and negative")
    keep = (pos | neg) & np.isfinite(s)
    return float(roc_auc_score(pos[keep], s[keep]))


def score_readout(score: xr.DataArray, edge_type, hubs=()) -> dict:
    """Score a ``(target, source)`` read-out against planted edges (benchmarks, simulations).

    ``edge_type`` is a ``(target, source)`` array of ``"hub_exc"``, ``"exc"``, ``"inh"`` or ``""``
    in the same unit order. Negatives = ordered pairs without an edge (diagonal excluded);
    inhibitory edges are excluded from both classes. Returns ``hub_auroc``, ``exc_auroc`` (hub
    edges included), ``top_units`` (by outgoing score, as many as ``hubs``), ``hubs_on_top`` and
    ``forward_gt_reverse`` (share of hub edges scored higher than their reverse pair).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neuroana.pretrain.connectivity import score_readout
    >>> et = np.array([["", "hub_exc", ""], ["", "", ""], ["", "hub_exc", ""]], dtype=object)
    >>> s = xr.DataArray([[0, 2.0, 0.1], [0.2, 0, 0], [0, 1.5, 0]], dims=("target", "source"),
    ...                  coords={"target": [4, 7, 9], "source": [4, 7, 9]})
    >>> r = score_readout(s, et, hubs=[7])
    >>> r["hub_auroc"], r["top_units"], r["forward_gt_reverse"]
    (1.0, [7], 1.0)
    """
    S = np.asarray(score, float)
    et = np.asarray(edge_type).astype(str)
    if S.shape != et.shape:
        raise ValueError(f"score {S.shape} and edge_type {et.shape} differ in shape")
    off = ~np.eye(len(S), dtype=bool)
    neg = (et == "") & off
    hub = et == "hub_exc"
    exc = hub | (et == "exc")
    out = {"exc_auroc": edge_auroc(S, exc, neg)}
    if hub.any():
        out["hub_auroc"] = edge_auroc(S, hub, neg)
        j, i = np.nonzero(hub)
        out["forward_gt_reverse"] = float(np.mean(S[j, i] > S[i, j]))
    units = (
        list(np.asarray(score["source"]))
        if isinstance(score, xr.DataArray)
        else list(range(len(S)))
    )
    outgoing = np.where(off, S, 0).sum(0)
    top = [units[k] for k in np.argsort(-outgoing)[: max(len(hubs), 1)]]
    out["top_units"] = [u.item() if hasattr(u, "item") else u for u in top]
    out["hubs_on_top"] = set(out["top_units"]) == set(hubs) if len(hubs) else None
    return out


__all__ = [
    "ccg_connectivity",
    "compare_connectivity",
    "edge_auroc",
    "model_connectivity",
    "score_readout",
]
