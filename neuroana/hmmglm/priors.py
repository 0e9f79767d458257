"""Priors over per-state coupling weights: Gaussian (shared mean) and one-hot (shared class prior).

Both act on the weight part of ``theta`` (R, K, N, P) (the last feature column is the bias, which
has no prior). Pure functions with closed-form updates; see :mod:`neuroana.hmmglm.em` for how
the EM loop calls them.

One-hot model. Each connection ``(k, n, j)`` has a class ``c`` in (inhibitory, none, excitatory)
with a categorical prior ``pi[n, j]`` shared by all states and a positive strength ``s >= s_min``:
``w = (c - 1) * s``. We fit it by variational EM with a categorical ``q(c_knj)``: the expected
log-likelihood of row ``(k, n)`` is replaced by its quadratic (Laplace) expansion around the
unconstrained optimum ``theta_hat`` with the Fisher information ``F``, so that each class's
conditional evidence has a closed form: for a connection whose conditional optimum is ``u``,
"none" scores ``-F u^2 / 2`` and "excitatory" integrates the strength over a uniform prior on
``[s_min, s_max]`` (normal CDFs; this Occam factor keeps noise-sized weights at "none"), and the
strength estimate is ``clip(u, s_min, s_max)``; inhibitory mirrors it. A few coordinate sweeps give
``q(c) ~ pi(c) exp(value(c))`` and the MAP classes; the shared prior then has the closed form
``pi = mean_k q_k`` (lightly smoothed so no class probability is exactly 0).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

CLASS_NAMES = ("inhibitory", "none", "excitatory")


class GaussianPrior(NamedTuple):
    """``mean`` (R, 1, N, P) shared across states and ``prec`` (R, 1, 1, 1) = 1 / sigma^2."""

    mean: torch.Tensor
    prec: torch.Tensor


def gaussian_prior_update(
    theta: torch.Tensor, var_floor: float = 1e-3, a0: float = 1.0, b0: float = 1e-3
) -> GaussianPrior:
    """Closed-form prior update: ``W_bar = mean_k W_k``, ``sigma^2`` = mean squared deviation.

    ``sigma^2`` gets a weak inverse-gamma(a0, b0) prior and a floor so that it never collapses.

    Examples
    --------
    >>> import torch
    >>> from neuroana.hmmglm.priors import gaussian_prior_update
    >>> th = torch.zeros(1, 2, 1, 2); th[0, 0, 0, 0] = 1.0
    >>> float(gaussian_prior_update(th, a0=0, b0=0, var_floor=0).mean[0, 0, 0, 0])
    0.5
    """
    W = theta[..., :-1]
    R, K, N, Pw = W.shape
    mean = W.mean(1, keepdim=True)
    ss = ((W - mean) ** 2).sum((1, 2, 3))
    var = ((ss + 2 * b0) / (K * N * Pw + 2 * a0 + 2)).clamp_min(var_floor)
    mean_full = torch.cat([mean, torch.zeros_like(theta[:, :1, :, -1:])], -1)
    return GaussianPrior(mean_full, (1.0 / var).reshape(R, 1, 1, 1))


class OnehotStep(NamedTuple):
    """Result of :func:`onehot_update`.

    Attributes
    ----------
    theta : torch.Tensor
        (R, K, N, N + 1) weights ``(c - 1) * s`` of the MAP classes, and the re-optimised bias.
    classes : torch.Tensor
        (R, K, N, N) int64 in {0, 1, 2} = (inhibitory, none, excitatory).
    q : torch.Tensor
        (R, K, N, N, 3) categorical posteriors.
    log_prior : torch.Tensor
        (R, N, N, 3) updated shared prior log-probabilities.
    elbo_prior : torch.Tensor
        (R,) ``sum q (log pi - log q)`` under the updated prior.
    """

    theta: torch.Tensor
    classes: torch.Tensor
    q: torch.Tensor
    log_prior: torch.Tensor
    elbo_prior: torch.Tensor


def _log_evidence(u, F, s_min, s_max):
    """log of (1 / (s_max - s_min)) * integral_{s_min}^{s_max} exp(-F (s - u)^2 / 2) ds."""
    sf = F.sqrt()
    hi = torch.special.log_ndtr(sf * (s_max - u))
    lo = torch.special.log_ndtr(sf * (s_min - u))
    diff = hi + torch.log1p(-torch.exp((lo - hi).clamp(max=-1e-12)))
    return diff + 0.5 * math.log(2 * math.pi) - torch.log(sf) - math.log(s_max - s_min)


def onehot_update(
    theta_hat: torch.Tensor,
    fisher: torch.Tensor,
    theta: torch.Tensor,
    log_prior: torch.Tensor,
    s_min: float,
    s_max: float = 2.0,
    n_sweeps: int = 3,
    smoothing: float = 1e-3,
) -> OnehotStep:
    """One variational M-step of the one-hot prior (see the module docstring).

    ``theta_hat`` (R, K, N, P) is the unconstrained optimum, ``fisher`` (R, K, N, P, P) its Fisher
    information, ``theta`` the current one-hot weights (coordinate ascent starts there),
    ``log_prior`` (R, N, N, 3). Needs a single history filter (P = N + 1).

    Examples
    --------
    A strong positive weight stays excitatory; a weight near 0 becomes "none":

    >>> import torch
    >>> from neuroana.hmmglm.priors import onehot_update
    >>> th = torch.tensor([[[[0.8, 0.01, 0.0]]]])  # R=K=N... (1, 1, 1, 3): two weights + bias
    >>> F = 1000 * torch.eye(3)[None, None, None]
    >>> lp = torch.full((1, 1, 2, 3), 1 / 3).log()
    >>> onehot_update(th, F, th, lp, s_min=0.15).classes.tolist()
    [[[[2, 1]]]]
    """
    R, K, N, P = theta_hat.shape
    J = P - 1
    w = theta.clone()
    d = (w - theta_hat)[..., None]  # (R, K, N, P, 1)
    Fd = (fisher @ d)[..., 0]  # (R, K, N, P)
    diag = fisher.diagonal(dim1=-2, dim2=-1).clamp_min(1e-12)
    lp = log_prior[:, None]  # (R, 1, N, J, 3)
    scores = torch.zeros(R, K, N, J, 3, dtype=w.dtype, device=w.device)
    for _ in range(n_sweeps):
        for j in range(P):
            Fjj = diag[..., j]
            # conditional optimum of coordinate j given the others
            u = theta_hat[..., j] - (Fd[..., j] - Fjj * (w[..., j] - theta_hat[..., j])) / Fjj
            if j == J:  # bias: free
                new = u
            else:
                exc = torch.clamp(u, min=s_min)
                inh = torch.clamp(u, max=-s_min)
                exc = torch.clamp(exc, max=s_max)
                inh = torch.clamp(inh, min=-s_max)
                cand = torch.stack([inh, torch.zeros_like(u), exc], -1)
                # class evidence: strength integrated over its uniform prior on [s_min, s_max]
                val = torch.stack(
                    [
                        _log_evidence(-u, Fjj, s_min, s_max),
                        -0.5 * Fjj * u * u,
                        _log_evidence(u, Fjj, s_min, s_max),
                    ],
                    -1,
                )
                sc = val + lp[..., j, :]
                scores[..., j, :] = sc
                c = sc.argmax(-1)
                new = cand.gather(-1, c[..., None])[..., 0]
            delta = new - w[..., j]
            w[..., j] = new
            Fd = Fd + fisher[..., :, j] * delta[..., None]
    classes = scores.argmax(-1)
    q = torch.softmax(scores, -1)
    pi = (q.mean(1) + smoothing) / (1 + 3 * smoothing)
    log_pi = pi.log()
    elbo = (q * (log_pi[:, None] - torch.log(q.clamp_min(1e-30)))).sum((1, 2, 3, 4))
    return OnehotStep(w, classes, q, log_pi, elbo)
