"""HMM-GLM initialisation as pure functions: history basis, restart subsets and starting parameters.

Everything here is deterministic given a NumPy ``Generator``; the estimator
(:class:`~neuroana.hmmglm.HMMGLM`) only resolves user parameters and calls these.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from neuroana.hmmglm.data import SpikeBatch
from neuroana.hmmglm.emissions import (
    exp_filter,
    maybe_pair_products,
    newton_mstep,
    raised_cosine_basis,
)

__all__ = [
    "EMParams",
    "Flat",
    "explore_subset",
    "flatten",
    "history_basis",
    "initial_params",
    "inverse_link",
]


class EMParams(NamedTuple):
    """HMM-GLM parameters, batched over restarts.

    ``theta`` (R, K, N, P) GLM weights (bias last), ``log_A`` (R, K, K) log transition matrix,
    ``log_pi0`` (R, K) log initial-state distribution.
    """

    theta: torch.Tensor
    log_A: torch.Tensor
    log_pi0: torch.Tensor


class Flat(NamedTuple):
    """A :class:`~neuroana.hmmglm.data.SpikeBatch` with (trial, time) flattened to rows for M-steps.

    ``pairs`` caches the feature products of every row
    (:func:`~neuroana.hmmglm.emissions.pair_products`; None when too large to keep).
    """

    batch: SpikeBatch
    Xf: torch.Tensor
    Yf: torch.Tensor
    mask: torch.Tensor
    M: int
    P: int
    pairs: torch.Tensor | None


def history_basis(history) -> np.ndarray:
    """Resolve the ``history`` parameter to a finite ``(n_basis, window)`` array.

    Examples
    --------
    >>> from neuroana.hmmglm.init import history_basis
    >>> history_basis("exp").shape, history_basis("raised_cosine").shape
    ((1, 5), (4, 20))
    """
    if isinstance(history, str):
        if history == "exp":
            return exp_filter()
        if history == "raised_cosine":
            return raised_cosine_basis()
        raise ValueError(
            f"history={history!r} is not supported; expected 'exp', 'raised_cosine' or an array "
            "(n_basis, window)"
        )
    b = np.asarray(history, dtype=float)
    if b.ndim == 1:
        b = b[None, :]
    if b.ndim != 2 or b.shape[1] < 1 or not np.isfinite(b).all():
        raise ValueError(f"history array has shape {b.shape}; expected finite (n_basis, window)")
    return b


def inverse_link(rate: torch.Tensor, link: str) -> torch.Tensor:
    """The linear predictor that gives ``rate`` (clamped into the link's range)."""
    rate = rate.clamp(1e-3, 0.999 if link == "sigmoid" else 1e6)
    if link == "sigmoid":
        return torch.log(rate / (1 - rate))
    if link == "softplus":
        return rate + torch.log(-torch.expm1(-rate))
    return rate.log()


def flatten(batch: SpikeBatch) -> Flat:
    """Flatten (trial, time) to rows, with the mask of real (unpadded) bins."""
    B, T, N = batch.Y.shape
    P = batch.X.shape[-1]
    mask = (torch.arange(T, device=batch.Y.device)[None, :] < batch.lengths[:, None]).reshape(-1)
    Xf = batch.X.reshape(B * T, P)
    return Flat(batch, Xf, batch.Y.reshape(B * T, N), mask, B * T, P, maybe_pair_products(Xf))


def _subset(batch: SpikeBatch, idx: np.ndarray) -> SpikeBatch:
    i = torch.as_tensor(idx, device=batch.Y.device)
    T = int(batch.lengths[i].max())
    return SpikeBatch(
        batch.Y[i, :T], batch.X[i, :T], batch.lengths[i], batch.lgam[i, :T], batch.unit, None
    )


def explore_subset(full: Flat, n_restarts: int, rng: np.random.Generator) -> Flat:
    """The trials the batched restarts explore on: about a third (>= 20000 bins) of large data sets.

    With one restart or fewer than 40000 bins, all of ``full``.
    """
    batch = full.batch
    n_bins = int(batch.lengths.sum())
    if n_restarts <= 1 or n_bins < 40000:
        return full
    order = rng.permutation(batch.Y.shape[0])
    cum = np.cumsum(batch.lengths.cpu().numpy()[order])
    n_sub = int(np.searchsorted(cum, max(20000, n_bins // 3))) + 1
    return flatten(_subset(batch, np.sort(order[:n_sub])))


def initial_params(
    full: Flat,
    explore: Flat,
    n_states: int,
    n_restarts: int,
    link: str,
    rng: np.random.Generator,
    *,
    select: bool,
) -> EMParams:
    """Starting parameters per restart: random blocks of bins given to random states, one M-step.

    Biases start at the inverse link of each unit's mean count; transitions at 0.95 on the diagonal;
    the initial distribution uniform.
    """
    K, R = int(n_states), int(n_restarts)
    dt, dev = full.Xf.dtype, full.Xf.device
    N = full.batch.Y.shape[-1]
    eb = explore.batch
    mean_rate = (full.Yf[full.mask].mean(0) + 1e-3).to(dt)
    theta = torch.zeros(R, K, N, full.P, dtype=dt, device=dev)
    theta[..., -1] = inverse_link(mean_rate, link)
    Be, Te = eb.Y.shape[:2]
    G = np.zeros((R, K, Be, Te))
    block = max(int(eb.lengths.min()) // 8, 1)
    for r in range(R):
        for b in range(Be):
            for s0 in range(0, Te, block):
                k = rng.integers(K)
                G[r, :, b, s0 : s0 + block] = 0.1 / K
                G[r, k, b, s0 : s0 + block] += 0.9
    G = torch.as_tensor(G, dtype=dt, device=dev).reshape(R, K, explore.M) * explore.mask
    theta = newton_mstep(
        explore.Xf, explore.Yf, G, theta, link, n_iter=2, select=select, pairs=explore.pairs
    ).theta
    stay = 0.95 if K > 1 else 1.0
    A0 = torch.full((K, K), (1 - stay) / max(K - 1, 1), dtype=torch.float64)
    A0.fill_diagonal_(stay)
    log_A = A0.log().to(dt).to(dev).expand(R, K, K).clone()
    log_pi0 = torch.full((R, K), -math.log(K), dtype=dt, device=dev)
    return EMParams(theta, log_A, log_pi0)
