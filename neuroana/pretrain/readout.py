"""Directed connectivity read-outs, all returning ``xr.DataArray(("target", "source"))``.

- :func:`attention_connectivity`: cross-attention mass from the queries that predict a target's
  spikes to the past tokens of each source, relative to uniform attention (frequency-corrected).
- :func:`ablation_connectivity`: mean drop in a target token's log-probability when every past token of
  a source is masked out ("model Granger").
- Both take ``shuffle_past=True`` to compute the null (past windows shuffled across samples).
- Baselines on binned counts: :func:`crosscorr_connectivity` and :func:`glm_connectivity` (Poisson GLM,
  whose core :func:`fit_poisson_glm` / :func:`glm_window_loglik` is also the likelihood anchor).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import xarray as xr

from neuroana.pretrain.dataset import WindowArrays, as_events, session_unit_index, to_batch
from neuroana.pretrain.nn import token_logprob


def _session_windows(estimator, spikes, t_end, shuffle_past, random_state):
    estimator._check()
    ev = as_events(spikes, session=estimator.session)
    idx = session_unit_index(ev, estimator.vocab_, grow=False)
    w = estimator._windows(ev, t_end)
    if shuffle_past:
        perm = np.random.default_rng(random_state).permutation(len(w))
        a = dict(w.arrays)
        a["past_unit"], a["past_offset"] = a["past_unit"][perm], a["past_offset"][perm]
        w = WindowArrays(a)
    return ev, idx, w


def _wrap(mat: np.ndarray, ev, name: str) -> xr.DataArray:
    ids = list(ev.unit_ids)
    return xr.DataArray(
        mat, dims=("target", "source"), coords={"target": ids, "source": ids}, name=name
    )


@torch.no_grad()
def attention_connectivity(
    estimator,
    spikes,
    t_end,
    *,
    shuffle_past: bool = False,
    random_state: int | None = None,
    blocks: str = "last",
    batch_size: int = 128,
) -> xr.DataArray:
    """Attention-based directed connectivity (heads and blocks averaged).

    ``C[target, source] = (attention mass to source's past tokens) / (mass under uniform attention)``,
    averaged over the queries whose next token is a spike of ``target``; 1 means chance. Each query's
    attention is renormalised over the past tokens (the memory's null slot and modality tokens are
    left out) before averaging over heads and blocks; ``blocks="last"`` (default) uses the last fusion
    block only (in small models the first blocks attend by time, not by content), ``"all"`` averages
    every block.

    Examples
    --------
    >>> from neuroana.datasets.spiking_sim import simulate_chain
    >>> from neuroana.pretrain import SpikeFormer
    >>> from neuroana.pretrain.readout import attention_connectivity
    >>> sim = simulate_chain(duration=30.0, random_state=0)
    >>> m = SpikeFormer(max_iter=1, steps_per_iter=2, random_state=0).fit(sim.spike_times)
    >>> attention_connectivity(m, sim.spike_times, m.split_.test).dims
    ('target', 'source')
    """
    if blocks not in ("last", "all"):
        raise ValueError(f"blocks={blocks!r}; expected 'last' or 'all'")
    ev, idx, w = _session_windows(estimator, spikes, t_end, shuffle_past, random_state)
    model, dev = estimator.model_, estimator.device_
    V = model.n_units
    S = torch.zeros(V, V, dtype=torch.float64)
    Fq = torch.zeros(V, V, dtype=torch.float64)
    for i in range(0, len(w), batch_size):
        b = to_batch(w, np.arange(i, min(i + batch_size, len(w))), dev)
        out = model(b, return_attention=True)
        Lp = b["past_unit"].shape[1]
        att = out.attention[-1:] if blocks == "last" else out.attention
        A = torch.stack([p.float() for p in att])[:, :, :, :, 1 : 1 + Lp]
        # per query, head and block: distribution over the past tokens (the null slot removed)
        A = (A / A.sum(-1, keepdim=True).clamp_min(1e-12)).mean((0, 2))
        pu = b["past_unit"]
        oh = torch.nn.functional.one_hot(pu.clamp_min(0), V).float() * (pu >= 0)[..., None]
        mass = torch.einsum("bim,bmu->biu", A, oh)  # (B, Lq, V)
        nvalid = (pu >= 0).sum(1).clamp_min(1).float()
        unif = oh.sum(1) / nvalid[:, None]  # (B, V)
        tgt = b["cur_unit"]
        toh = torch.nn.functional.one_hot(tgt.clamp_min(0), V).float() * (tgt >= 0)[..., None]
        # query i predicts token i (the SOS query predicts token 0)
        S += torch.einsum("biu,bit->tu", mass[:, : tgt.shape[1]], toh).double().cpu()
        Fq += torch.einsum("bu,bit->tu", unif, toh).double().cpu()
    C = (S / Fq.clamp_min(1e-12)).numpy()
    return _wrap(C[np.ix_(idx, idx)], ev, "attention_connectivity")


@torch.no_grad()
def ablation_connectivity(
    estimator,
    spikes,
    t_end,
    *,
    shuffle_past: bool = False,
    random_state: int | None = None,
    batch_size: int = 128,
) -> xr.DataArray:
    """Ablation-based directed connectivity: ``mean log p(target token | full past) -
    log p(target token | past without source)`` over the target's tokens (nats)."""
    ev, idx, w = _session_windows(estimator, spikes, t_end, shuffle_past, random_state)
    model, dev = estimator.model_, estimator.device_
    n_dt, V = model.cfg.n_dt, model.n_units
    n = len(idx)
    D = np.zeros((n, n))
    cnt = np.zeros(n)
    for i in range(0, len(w), batch_size):
        b = to_batch(w, np.arange(i, min(i + batch_size, len(w))), dev)
        base = token_logprob(model(b), b, n_dt)
        toh = torch.nn.functional.one_hot(base.unit.clamp_min(0), V).double()
        toh = (toh * (base.unit >= 0)[..., None]).cpu()[..., idx]
        cnt += toh.sum((0, 1)).numpy()
        for s, vs in enumerate(idx):
            keep = b["past_unit"] != int(vs)
            lp = token_logprob(model(b, past_keep=keep), b, n_dt)
            delta = (base.logp - lp.logp).double().cpu()
            D[:, s] += torch.einsum("bi,bit->t", delta, toh).numpy()
    return _wrap(D / np.maximum(cnt, 1)[:, None], ev, "ablation_connectivity")


# ---------------------------------------------------------------------- binned baselines
def binned_counts(spike_times: dict, t_start: float, t_stop: float, dt: float) -> np.ndarray:
    """Counts ``(n_bins, n_units)`` (float64) on ``t_start + k * dt`` by the package's one binning
    rule, :func:`neuroana.preprocess.bin_spike_times` (left-closed bins, whole bins only)."""
    from neuroana.preprocess import bin_spike_times

    return bin_spike_times(spike_times, dt, start=t_start, stop=t_stop).values.astype(np.float64)


def _span(spike_times: dict, dt: float, t_start, t_stop) -> tuple[float, float]:
    """``[t_start, t_stop)``, by default from the first spike to one bin past the last."""
    allt = np.concatenate([np.asarray(v, dtype=float).ravel() for v in spike_times.values()])
    t0 = float(allt.min()) if t_start is None else float(t_start)
    t1 = float(allt.max()) + dt if t_stop is None else float(t_stop)
    return t0, t1


def _lagged(counts: np.ndarray, n_lags: int) -> np.ndarray:
    T, U = counts.shape
    X = np.zeros((T, U * n_lags))
    for lag in range(1, n_lags + 1):
        X[lag:, (lag - 1) * U : lag * U] = counts[:-lag]
    return X


def crosscorr_connectivity(
    spike_times: dict, *, dt: float = 0.01, max_lag: int = 3, t_start=None, t_stop=None
) -> xr.DataArray:
    """Lagged cross-correlation baseline: ``sum_{lag=1..max_lag} corr(source(t-lag), target(t))``.

    Examples
    --------
    >>> from neuroana.datasets.spiking_sim import simulate_chain
    >>> from neuroana.pretrain.readout import crosscorr_connectivity
    >>> sim = simulate_chain(duration=60.0, random_state=0)
    >>> C = crosscorr_connectivity(sim.spike_times)
    >>> bool(C.sel(target=1, source=0) > C.sel(target=0, source=1))
    True
    """
    c = binned_counts(spike_times, *_span(spike_times, dt, t_start, t_stop), dt)
    z = (c - c.mean(0)) / np.maximum(c.std(0), 1e-12)
    T = z.shape[0]
    C = sum(z[lag:].T @ z[:-lag] / (T - lag) for lag in range(1, max_lag + 1))
    ids = list(spike_times)
    return xr.DataArray(
        C,
        dims=("target", "source"),
        coords={"target": ids, "source": ids},
        name="crosscorr_connectivity",
    )


class PoissonGLM(NamedTuple):
    bias: np.ndarray  # (U,)
    weights: np.ndarray  # (n_lags, U_source, U_target)
    n_lags: int


def fit_poisson_glm(
    counts: np.ndarray, n_lags: int, *, l2: float = 1e-3, max_iter: int = 200
) -> PoissonGLM:
    """Fit ``count_j(t) ~ Poisson(exp(b_j + sum_lag sum_i W[lag, i, j] count_i(t - lag)))`` (L-BFGS).

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.pretrain.readout import fit_poisson_glm
    >>> rng = np.random.default_rng(0)
    >>> g = fit_poisson_glm(rng.poisson(0.2, size=(2000, 2)), 1)
    >>> bool(np.allclose(np.exp(g.bias), 0.2, atol=0.05))
    True
    """
    c = np.asarray(counts, dtype=np.float64)
    T, U = c.shape
    X = torch.as_tensor(_lagged(c, n_lags)[n_lags:])
    Y = torch.as_tensor(c[n_lags:])
    W = torch.zeros(U * n_lags, U, dtype=torch.float64, requires_grad=True)
    b = torch.log(Y.mean(0).clamp_min(1e-6)).clone().requires_grad_(True)
    opt = torch.optim.LBFGS([W, b], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        eta = X @ W + b
        loss = (eta.exp() - Y * eta).mean() + l2 * (W**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    Wn = W.detach().numpy().reshape(n_lags, U, U)
    return PoissonGLM(b.detach().numpy(), Wn, n_lags)


def glm_window_loglik(
    glm: PoissonGLM, counts: np.ndarray, window_bins: np.ndarray, n_cur: int
) -> np.ndarray:
    """Poisson log-likelihood of each window's current bins ``[k - n_cur, k)`` for ``k`` in
    ``window_bins`` (bin index of each window's end), history from ``counts``."""
    from scipy.special import gammaln

    c = np.asarray(counts, dtype=np.float64)
    X = _lagged(c, glm.n_lags)
    eta = X @ glm.weights.reshape(-1, c.shape[1]) + glm.bias
    ll_bin = (c * eta - np.exp(eta) - gammaln(c + 1)).sum(1)
    cs = np.concatenate([[0.0], np.cumsum(ll_bin)])
    k = np.asarray(window_bins, dtype=int)
    return cs[k] - cs[k - n_cur]


def rate_window_loglik(
    rates: np.ndarray, counts: np.ndarray, window_bins: np.ndarray, n_cur: int
) -> np.ndarray:
    """Homogeneous Poisson (per-neuron rate per bin) log-likelihood of each window's current bins."""
    from scipy.special import gammaln

    c = np.asarray(counts, dtype=np.float64)
    lam = np.maximum(np.asarray(rates, dtype=float), 1e-12)
    ll_bin = (c * np.log(lam) - lam - gammaln(c + 1)).sum(1)
    cs = np.concatenate([[0.0], np.cumsum(ll_bin)])
    k = np.asarray(window_bins, dtype=int)
    return cs[k] - cs[k - n_cur]


def glm_connectivity(
    spike_times: dict,
    *,
    dt: float = 0.01,
    n_lags: int = 3,
    l2: float = 1e-3,
    t_start=None,
    t_stop=None,
) -> xr.DataArray:
    """Poisson-GLM baseline: coupling summed over lags, ``DataArray(("target", "source"))``."""
    c = binned_counts(spike_times, *_span(spike_times, dt, t_start, t_stop), dt)
    g = fit_poisson_glm(c, n_lags, l2=l2)
    ids = list(spike_times)
    return xr.DataArray(
        g.weights.sum(0).T,
        dims=("target", "source"),
        coords={"target": ids, "source": ids},
        name="glm_connectivity",
    )
