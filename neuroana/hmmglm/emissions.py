"""Poisson GLM emissions: history bases, links, per-state log-likelihoods and the Newton M-step.

Tensor layout (fixed, no defaults guessed): features ``X`` are ``(B, T, P)`` with ``P = N * L + 1``
(pre-synaptic neuron major, history basis minor, a constant 1 last for the bias); parameters
``theta`` are ``(R, K, N, P)`` (restart, state, post-synaptic neuron, feature) so that
``eta[r, b, t, k, n] = sum_p X[b, t, p] * theta[r, k, n, p]``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

LINKS = ("sigmoid", "softplus", "exp")
#: lower bound and Poisson epsilon of the paper code (rate in (1e-8, 1] for the sigmoid link)
RATE_EPS = 1e-8


def exp_filter(window: int = 5, decay: float = 1.0) -> np.ndarray:
    """The paper's exponential history filter: ``phi[k-1] = exp(-k / decay)``, normalised to sum 1.

    Returns an array of shape ``(1, window)``; element ``[0, k-1]`` weights the count ``k`` bins back.

    Examples
    --------
    >>> from neuroana.hmmglm.emissions import exp_filter
    >>> exp_filter().round(4).tolist()
    [[0.6364, 0.2341, 0.0861, 0.0317, 0.0117]]
    """
    k = np.arange(1, window + 1, dtype=float)
    phi = np.exp(-k / decay)
    return (phi / phi.sum())[None, :]


def raised_cosine_basis(n_basis: int = 4, window: int = 20, log_scale: float = 1.0) -> np.ndarray:
    """Raised-cosine history basis on a log-stretched time axis (Pillow et al. 2008 style).

    Returns ``(n_basis, window)``; row ``l`` is bump ``l``, each normalised to sum 1.

    Examples
    --------
    >>> from neuroana.hmmglm.emissions import raised_cosine_basis
    >>> b = raised_cosine_basis(3, 10)
    >>> b.shape, bool(abs(b.sum(1) - 1).max() < 1e-12)
    ((3, 10), True)
    """
    if n_basis < 1 or window < n_basis:
        raise ValueError(
            f"raised_cosine_basis needs 1 <= n_basis <= window, got {n_basis}, {window}"
        )
    lag = np.log(np.arange(1, window + 1, dtype=float) + log_scale)
    lo, hi = lag[0], lag[-1]
    centres = np.linspace(lo, hi, n_basis)
    width = (hi - lo) / max(n_basis - 1, 1) * 2 if n_basis > 1 else (hi - lo) * 2 + 1e-9
    arg = np.clip((lag[None, :] - centres[:, None]) * math.pi / width, -math.pi, math.pi)
    basis = 0.5 * (1 + np.cos(arg))
    return basis / basis.sum(1, keepdims=True)


def history_features(spikes: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Convolve counts ``(B, T, N)`` with a causal basis ``(L, W)``; append a constant column.

    Counts before t = 0 are taken as 0 (each trial starts with an empty history). Returns
    ``(B, T, N * L + 1)``.

    Examples
    --------
    >>> import torch
    >>> from neuroana.hmmglm.emissions import history_features
    >>> x = torch.tensor([[[1.0], [0.0], [0.0]]])
    >>> history_features(x, torch.tensor([[0.5, 0.25]]))[0, :, 0].tolist()
    [0.0, 0.5, 0.25]
    """
    B, T, N = spikes.shape
    L, W = basis.shape
    x = spikes.permute(0, 2, 1).reshape(B * N, 1, T)
    x = torch.nn.functional.pad(x, (W, 0))  # x_pad[i] = count at i - W
    kernel = basis.flip(-1)[:, None, :].to(x.dtype)  # conv1d cross-correlates
    # output t sums x_pad[t .. t + W - 1] = counts t - W .. t - 1, i.e. lags W .. 1
    h = torch.nn.functional.conv1d(x, kernel)[..., :T]
    h = h.reshape(B, N, L, T).permute(0, 3, 1, 2).reshape(B, T, N * L)
    return torch.cat([h, torch.ones(B, T, 1, dtype=h.dtype, device=h.device)], -1)


def _capped_(s: torch.Tensor) -> torch.Tensor:
    """The paper's cap of the sigmoid link, in place: ``(1 - 1e-8) * s + 1e-8``."""
    return s.mul_(1 - RATE_EPS).add_(RATE_EPS)


def rate_and_derivative(eta: torch.Tensor, link: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Firing rate ``f(eta)`` and ``f'(eta)`` for a link in :data:`LINKS` (``eta`` unchanged).

    ``sigmoid`` is the paper's capped link ``(1 - 1e-8) * sigmoid(eta) + 1e-8`` (at most one
    expected spike per bin); ``softplus`` and ``exp`` are uncapped.
    """
    if link == "sigmoid":
        s = torch.sigmoid(eta)
        return _capped_(s.clone()), (1 - RATE_EPS) * s * (1 - s)
    rate = _rate_(eta.clone(), link)
    return rate, (torch.sigmoid(eta) if link == "softplus" else rate)


def _rate_(eta: torch.Tensor, link: str) -> torch.Tensor:
    """``f(eta)`` of :func:`rate_and_derivative`, in place in ``eta`` where the link allows (``eta``
    must be a fresh temporary)."""
    if link == "sigmoid":
        return _capped_(eta.sigmoid_())
    if link == "softplus":
        return torch.nn.functional.softplus(eta)
    if link == "exp":
        return eta.clamp_(max=30.0).exp_()
    raise ValueError(f"link={link!r} is not supported; expected one of {LINKS}")


def _weighted_poisson(Y: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
    """The paper code's Poisson term without ``lgamma(y + 1)``: ``Y * log(rate + 1e-8) - rate``, in
    a new tensor (``rate`` unchanged)."""
    return (rate + RATE_EPS).log_().mul_(Y).sub_(rate)


def emission_loglik(
    X: torch.Tensor,
    Y: torch.Tensor,
    theta: torch.Tensor,
    link: str,
    lgam: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-state emission log-likelihood summed over neurons: ``(R, B, T, K)``.

    ``X`` (B, T, P) features, ``Y`` (B, T, N) counts, ``theta`` (R, K, N, P).
    """
    B, T, P = X.shape
    R, K, N, _ = theta.shape
    eta = X.reshape(B * T, P) @ theta.reshape(R * K * N, P).T  # a fresh (B T, R K N) tensor
    rate = _rate_(eta, link).view(B * T, R * K, N)
    total_rate = rate.sum(-1)
    # sum_n y log(rate + eps) - sum_n rate, in place in the predictor's buffer
    ll = rate.add_(RATE_EPS).log_().mul_(Y.reshape(B * T, 1, N)).sum(-1).sub_(total_rate)
    lg = (torch.lgamma(Y + 1) if lgam is None else lgam).reshape(B * T, N).sum(-1)
    ll = ll.sub_(lg[:, None])
    return ll.reshape(B, T, R, K).permute(2, 0, 1, 3)


class NewtonResult(NamedTuple):
    """Result of :func:`newton_mstep`: new ``theta`` (R, K, N, P) and the Fisher information
    ``fisher`` (R, K, N, P, P) at the last expansion point (prior precision not included)."""

    theta: torch.Tensor
    fisher: torch.Tensor


#: :func:`pair_products` of more entries than this are not cached (built per chunk instead)
PAIR_CACHE_ELEMS = 1 << 26


def pair_products(X: torch.Tensor) -> torch.Tensor:
    """The distinct products of every row's features, ``O[m, (p, q)] = X[m, p] * X[m, q]`` for
    ``p <= q`` (row-major upper triangle): ``(M, P (P + 1) / 2)``.

    Every Fisher matrix of the Newton M-step is then one GEMM ``u.T @ O`` (see :func:`_fisher`): the
    design matrix is shared by all restarts, states and neurons and fixed during a fit.

    Examples
    --------
    >>> import torch
    >>> from neuroana.hmmglm.emissions import pair_products
    >>> pair_products(torch.tensor([[1.0, 2.0, 3.0]])).tolist()
    [[1.0, 2.0, 3.0, 4.0, 6.0, 9.0]]
    """
    M, P = X.shape
    out = torch.empty(M, P * (P + 1) // 2, dtype=X.dtype, device=X.device)
    off = 0
    for p in range(P):
        torch.mul(X[:, p : p + 1], X[:, p:], out=out[:, off : off + P - p])
        off += P - p
    return out


def maybe_pair_products(X: torch.Tensor) -> torch.Tensor | None:
    """:func:`pair_products` of ``X`` when it has at most :data:`PAIR_CACHE_ELEMS` entries, else None."""
    P = X.shape[1]
    return pair_products(X) if X.shape[0] * P * (P + 1) // 2 <= PAIR_CACHE_ELEMS else None


def _fisher(
    Xs: torch.Tensor, u: torch.Tensor, pairs: torch.Tensor | None = None, max_elems: int = 1 << 24
) -> torch.Tensor:
    """``F[n] = Xs.T @ diag(u[:, n]) @ Xs`` for every n: (N, P, P).

    One GEMM ``u.T @ pairs`` gives every row's upper triangle (``pairs`` =
    :func:`pair_products` of ``Xs``, built here by row chunks when not given): half the flops of
    ``N`` full Gram matrices and no ``(m, N, P)`` temporary.
    """
    m, P = Xs.shape
    N = u.shape[1]
    n_pairs = P * (P + 1) // 2
    if pairs is not None:
        Fp = u.T @ pairs
    else:
        Fp = torch.zeros(N, n_pairs, dtype=Xs.dtype, device=Xs.device)
        step = max(1, max_elems // n_pairs)
        for i in range(0, m, step):
            Fp.addmm_(u[i : i + step].T, pair_products(Xs[i : i + step]))
    iu = torch.triu_indices(P, P, device=Xs.device)
    F = torch.empty(N, P, P, dtype=Xs.dtype, device=Xs.device)
    F[:, iu[0], iu[1]] = Fp
    F[:, iu[1], iu[0]] = Fp
    return F


def _row_objective(Xs, Ys, g, th, link, prec, mean, rate=None):
    # th (N, P) -> (N,) weighted log-lik (no lgamma) minus the Gaussian prior on weights
    if rate is None:
        rate = _rate_(Xs @ th.T, link)
    # torch's cascaded sum, not a float32 GEMV: the line search compares values to 1e-7
    val = _weighted_poisson(Ys, rate).mul_(g[:, None]).sum(0)
    if prec is not None:
        d = (th - mean)[:, :-1]
        val = val - 0.5 * (prec[:, :-1] * d * d).sum(-1)
    return val


def newton_mstep(
    X: torch.Tensor,
    Y: torch.Tensor,
    G: torch.Tensor,
    theta: torch.Tensor,
    link: str,
    *,
    prior_mean: torch.Tensor | None = None,
    prior_prec: torch.Tensor | None = None,
    free: torch.Tensor | None = None,
    pairs: torch.Tensor | None = None,
    n_iter: int = 2,
    select: bool = True,
    min_weight: float = 1e-5,
    fisher_weight: float = 1e-3,
    ridge: float = 1e-6,
) -> NewtonResult:
    """Weighted Poisson-GLM M-step by batched Fisher scoring with a backtracking line search.

    Maximises, independently for every (restart, state, post-synaptic neuron) row,
    ``sum_m G[r, k, m] * log p(Y[m, n] | f(X[m] @ theta[r, k, n]))`` minus an optional Gaussian
    prior ``0.5 * prior_prec * (w - prior_mean)^2`` on the weights (not the bias). ``X`` is
    ``(M, P)``, ``Y`` ``(M, N)``, ``G`` ``(R, K, M)`` posterior weights. ``free`` (same shape as
    ``theta``, bool) freezes the entries that are False. With ``select`` only bins with
    ``G > min_weight`` enter each state's normal equations (the CPU path; the GPU path uses all bins).
    A row's step is accepted only if it does not decrease that row's objective. ``pairs``
    (:func:`pair_products` of ``X``, optional) makes every Fisher matrix a single GEMM.

    With ``select``, the Fisher matrix (the curvature that scales the step, not the gradient or the
    objective) is summed over the bins with ``G > fisher_weight`` only: late in EM about 65 % of the
    bins pass ``min_weight`` per state but only about 27 % pass ``1e-3``, and the bins left out
    change the curvature by well under 1 %. The step stays an ascent direction and the line search
    is on the objective over all selected bins, so EM stays monotone.
    """
    R, K, N, P = theta.shape
    theta = theta.clone()
    fisher = torch.zeros(R, K, N, P, P, dtype=theta.dtype, device=theta.device)
    eye = torch.eye(P, dtype=theta.dtype, device=theta.device)
    for r in range(R):
        for k in range(K):
            g = G[r, k]
            if select:
                idx = torch.nonzero(g > min_weight).squeeze(-1)
                if idx.shape[0] < g.shape[0]:
                    # index_select: a row gather 2-4x faster on CPU than advanced indexing
                    Xs, Ys, g = (
                        X.index_select(0, idx),
                        Y.index_select(0, idx),
                        g.index_select(0, idx),
                    )
                else:  # every bin selected: no copies
                    Xs, Ys, idx = X, Y, None
                sub = torch.nonzero(g > fisher_weight).squeeze(-1)
                if sub.shape[0] <= P or sub.shape[0] == g.shape[0]:
                    sub = None  # all selected bins (too few heavy ones to carry the curvature)
                Xf = Xs if sub is None else Xs.index_select(0, sub)
                rows = sub if idx is None else (idx if sub is None else idx.index_select(0, sub))
                Os = pairs if pairs is None or rows is None else pairs.index_select(0, rows)
            else:
                Xs, Ys, Os, Xf, sub = X, Y, pairs, X, None
            if Xs.shape[0] == 0:
                continue
            prec = None if prior_prec is None else prior_prec[r, k].expand(N, P)
            mean = None if prior_mean is None else prior_mean[r, k].expand(N, P)
            fr = None if free is None else free[r, k]
            th = theta[r, k]
            for _ in range(n_iter):
                rate, drate = rate_and_derivative(Xs @ th.T, link)
                f0 = _row_objective(Xs, Ys, g, th, link, prec, mean, rate)
                rr = rate + RATE_EPS
                resid = Ys.div(rr).sub_(1.0).mul_(drate).mul_(g[:, None])  # (m, N)
                grad = resid.T @ Xs  # (N, P)
                if sub is None:
                    u = drate.square().div_(rr).mul_(g[:, None])  # (m, N)
                else:
                    d_s, r_s = drate.index_select(0, sub), rr.index_select(0, sub)
                    u = d_s.square_().div_(r_s).mul_(g.index_select(0, sub)[:, None])
                F = _fisher(Xf, u, Os)
                fisher[r, k] = F
                H = F + ridge * eye * (1 + F.diagonal(dim1=-2, dim2=-1).mean(-1))[:, None, None]
                if prec is not None:
                    grad = grad.clone()
                    grad[:, :-1] -= prec[:, :-1] * (th - mean)[:, :-1]
                    H = H + torch.diag_embed(torch.cat([prec[:, :-1], prec[:, -1:] * 0], -1))
                if fr is not None:
                    grad = grad * fr
                    H = torch.where(fr[:, :, None] & fr[:, None, :], H, 0.0) + torch.diag_embed(
                        (~fr).to(H.dtype)
                    )
                step = torch.linalg.solve(H, grad[..., None])[..., 0]
                accepted = torch.zeros(N, dtype=torch.bool, device=th.device)
                new = th.clone()
                alpha = 1.0
                for _ls in range(8):
                    cand = th + alpha * step
                    f1 = _row_objective(Xs, Ys, g, cand, link, prec, mean)
                    ok = (f1 >= f0 - 1e-7 * f0.abs()) & ~accepted & torch.isfinite(f1)
                    new = torch.where(ok[:, None], cand, new)
                    accepted |= ok
                    if bool(accepted.all()):
                        break
                    alpha *= 0.5
                th = new
            theta[r, k] = th
    return NewtonResult(theta, fisher)
