"""Connectivity read-outs with one layout: ``Dataset`` of ``(target, source)`` scores and p-values.

Every read-out here returns an :class:`xarray.Dataset` with dims ``("target", "source")`` — row =
the unit that *receives*, column = the unit that *sends* (``score.sel(target=b, source=a)`` is the
evidence for ``a -> b``) — and at least the variables ``score`` (higher = stronger evidence of an
excitatory edge; negative values = inhibitory) and ``p_value`` (from a null computed by the same
call). The diagonal (a unit's own history: refractoriness) is not an edge and is set to 0 / 1.

- :func:`model_connectivity`: held-out *ablation* of a fitted :class:`SpikeRateModel`'s coupling
  pathway: for each pair, the log-likelihood the target loses on the given windows when the source's
  spike history is removed (bits per target spike), signed by the kernel's sign; null = the same
  gain with the source's history circularly shifted in time inside each window (p-values, null band).
  Shared slow fluctuations are absorbed by the population-rate and attention pathways, so they do
  not appear as edges.
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
    n_null: int = 19,
    max_windows: int | None = None,
    batch_size: int = 4,
    random_state: int = 0,
    verbose: bool = True,
) -> xr.Dataset:
    """Held-out ablation read-out of a fitted model's coupling, with a time-shift null.

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
        window); ``p_value = (1 + #{null >= observed}) / (1 + n_null)``.
    max_windows : int, optional
        Evaluate a random subset of this many windows (of ``model.chunk`` seconds each).
    batch_size : int
        Windows per batch (memory ``batch_size * chunk/dt * N**2`` floats).
    random_state : int
    verbose : bool
        Progress bar.

    Returns
    -------
    xarray.Dataset
        ``score`` (signed gain, bits per target spike), ``p_value``, ``gain`` (unsigned, bits per
        target spike), ``null_mean``, ``null_sd`` and ``null_q95`` of the null gains, ``weight``
        (the kernel's signed value at its largest magnitude lag); dims ``(target, source)``.

    Notes
    -----
    Cost: ``(1 + n_null) * n_bins * N**2 * n_basis`` multiply-adds over the evaluated bins (a 48-unit
    network, 120 s at 2 ms, 19 shifts: about 20 G, tens of seconds on one thread).

    Examples
    --------
    >>> from neuroana.datasets.spiking_sim import simulate_chain
    >>> from neuroana.pretrain import SpikeRateModel, model_connectivity
    >>> net = simulate_chain(duration=60.0, random_state=0)
    >>> m = SpikeRateModel(max_epochs=4, verbose=False).fit(net.spike_times, t_stop=40.0)
    >>> ds = model_connectivity(m, net.spike_times, 40.0, 60.0, verbose=False)
    >>> bool(ds.score.sel(target=1, source=0) > ds.score.sel(target=0, source=1))
    True
    """
    from tqdm.auto import tqdm

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
    N = len(model.units_)
    L = ctx + n_chunk
    W = net.coupling.detach()
    obs = torch.zeros(N, N, dtype=torch.float64)
    null = torch.zeros(max(n_null, 1), N, N, dtype=torch.float64)
    n_spk = torch.zeros(N, dtype=torch.float64)
    lo = max(1, n_chunk // 10)
    work = batch_size * n_chunk * N * N * model.n_basis
    bar = tqdm(total=len(order), desc="model_connectivity", disable=not verbose)
    with torch.no_grad(), limit_threads(fit_threads(work, MIN_WORK, requested=model.n_threads)):
        for k in range(0, len(order), batch_size):
            idx = order[k : k + batch_size]
            xb = torch.stack([X[starts[i] : starts[i] + L] for i in idx])
            yb = torch.stack(
                [torch.from_numpy(y[ctx + starts[i] : ctx + starts[i] + n_chunk]) for i in idx]
            )
            valid = torch.stack(
                [(starts[i] + torch.arange(n_chunk)) < n_loss for i in idx]
            ).float()[..., None]
            eta, _ = net(xb)
            lam = eta.exp() * valid
            yb = yb * valid
            C = torch.einsum("btsk,jsk->btjs", net.history(xb), W)
            obs += (yb[..., None] * C - lam[..., None] * (-torch.expm1(-C))).sum((0, 1)).double()
            lam_a = lam[..., None] * torch.exp(-C)  # rate with the source ablated
            for r in range(n_null):
                Cs = torch.roll(C, int(rng.integers(lo, n_chunk - lo + 1)), dims=1)
                null[r] += (yb[..., None] * Cs - lam_a * torch.expm1(Cs)).sum((0, 1)).double()
            n_spk += yb.sum((0, 1, 2)).double()
            bar.update(len(idx))
    bar.close()
    norm = (n_spk.clamp_min(1) * LN2)[:, None]
    gain, nul = (obs / norm).numpy(), (null / norm).numpy()
    kern = torch.einsum("jsk,kl->jsl", W, net.basis).numpy()
    peak = np.take_along_axis(kern, np.abs(kern).argmax(-1)[..., None], -1)[..., 0]
    sign = np.where(kern.sum(-1) >= 0, 1.0, -1.0)
    if n_null:
        p = (1 + (nul >= gain[None]).sum(0)) / (1 + n_null)
        extra = {
            "null_mean": nul.mean(0),
            "null_sd": nul.std(0),
            "null_q95": np.quantile(nul, 0.95, 0),
        }
    else:
        p, extra = np.full_like(gain, np.nan), {}
    ds = _dataset(model.units_, sign * gain, p, gain=gain, weight=peak, **extra)
    ds.attrs.update(
        method="model ablation",
        t_start=float(t_start),
        t_stop=float(t_stop),
        n_windows=len(order),
        n_null=int(n_null),
        unit="bits per target spike",
    )
    return ds


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
