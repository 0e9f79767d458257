"""EM for the HMM-GLM as pure functions: E-step, transition update, and the staged fits.

Stages (Li et al., ICLR 2024): batched restarts explore for ``n_explore`` iterations and the best is
kept; then EM without prior to convergence; then, for ``prior="gaussian"``, EM with a learned Gaussian
prior on the weights, or, for ``prior="onehot"``, variational EM with the one-hot class prior warm-
started from the no-prior fit. Iteration, convergence and progress go through
:func:`neuroana.backend.fit_loop`. Tensor layouts are those of :mod:`.emissions` and
:mod:`.inference`.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
import xarray as xr

from neuroana.backend import fit_loop
from neuroana.hmmglm.data import SpikeBatch
from neuroana.hmmglm.emissions import emission_loglik, newton_mstep
from neuroana.hmmglm.inference import forward_backward, forward_backward_scan
from neuroana.hmmglm.init import EMParams, Flat
from neuroana.hmmglm.priors import GaussianPrior, gaussian_prior_update, onehot_update

__all__ = ["EMFit", "estep", "fit_em", "transition_update"]

#: on CUDA, sequences at least this long use the associative scan
SCAN_MIN_T = 512


class EMFit(NamedTuple):
    """Result of :func:`fit_em` (tensors with a leading restart axis of length 1).

    ``gprior`` is set for the Gaussian prior, ``classes`` (1, K, N, N) in {0, 1, 2} and
    ``log_prior`` (1, N, N, 3) for the one-hot prior; ``history`` has an ``iteration`` dim and a
    ``stage`` variable (0 no prior, 1 prior).
    """

    params: EMParams
    gprior: GaussianPrior | None
    classes: torch.Tensor | None
    log_prior: torch.Tensor | None
    history: xr.Dataset
    converged: bool


def estep(batch: SpikeBatch, params: EMParams, link: str, method: str = "auto"):
    """Exact E-step for every restart and trial.

    Trials of unequal length are padded; both forward-backward paths restart from ``log_pi0`` at
    each trial and ignore its padded bins. ``method`` is ``"sequential"``, ``"scan"`` (associative
    scan) or ``"auto"`` (the scan on CUDA for trials of at least :data:`SCAN_MIN_T` bins).

    Returns ``log_lik`` (R, B) float64, ``gamma`` (R, B, T, K) posteriors and ``xi`` (R, K, K)
    expected transition counts summed over trials.
    """
    if method not in ("auto", "sequential", "scan"):
        raise ValueError(f"method={method!r}; expected 'auto', 'sequential' or 'scan'")
    theta, log_A, log_pi0 = params
    R, K = theta.shape[:2]
    B, T, _ = batch.Y.shape
    log_e = emission_loglik(batch.X, batch.Y, theta, link, batch.lgam)
    log_e = log_e.reshape(R * B, T, K)
    lA = log_A[:, None].expand(R, B, K, K).reshape(R * B, K, K)
    lp = log_pi0[:, None].expand(R, B, K).reshape(R * B, K)
    lengths = batch.lengths.repeat(R)
    use_scan = method == "scan" or (
        method == "auto" and batch.Y.device.type == "cuda" and T >= SCAN_MIN_T
    )
    post = (forward_backward_scan if use_scan else forward_backward)(log_e, lA, lp, lengths)
    return (
        post.log_lik.reshape(R, B),
        post.gamma.reshape(R, B, T, K),
        post.xi_sum.reshape(R, B, K, K).sum(1),
    )


def transition_update(xi: torch.Tensor, sticky: float, dtype: torch.dtype) -> torch.Tensor:
    """M-step of the transition matrix with ``sticky`` pseudo-counts on the diagonal (log, float64
    accumulation, returned in ``dtype``)."""
    K = xi.shape[-1]
    counts = xi.double() + sticky * torch.eye(K, dtype=torch.float64, device=xi.device)
    counts = counts + 1e-10
    A = counts / counts.sum(-1, keepdim=True)
    return A.log().to(dtype)


def _keep(params: EMParams, gprior, idx: int):
    sl = slice(idx, idx + 1)
    params = EMParams(*(v[sl] for v in params))
    if gprior is not None:
        gprior = type(gprior)(*(v[sl] for v in gprior))
    return params, gprior


def _em_stage(
    full: Flat,
    explore: Flat,
    params: EMParams,
    *,
    link: str,
    sticky: float,
    with_prior: bool,
    n_explore: int,
    max_iter: int,
    tol: float,
    min_iter: int,
    select: bool,
    verbose: bool,
    desc: str,
):
    K = params.theta.shape[1]
    st: dict[str, Any] = {
        "params": params,
        "gprior": gaussian_prior_update(params.theta) if with_prior else None,
    }

    def step(it):
        p, gp = st["params"], st["gprior"]
        data = explore if p.theta.shape[0] > 1 else full
        ll, gamma, xi = estep(data.batch, p, link)
        ll = ll.sum(1)
        objective = ll.clone()
        if gp is not None:
            d = (p.theta - gp.mean)[..., :-1]
            npar = d[0].numel()
            objective = (
                objective
                + (
                    -0.5 * (gp.prec.reshape(-1) * d.pow(2).sum((1, 2, 3)))
                    + 0.5 * npar * torch.log(gp.prec.reshape(-1) / (2 * math.pi))
                ).double()
            )
        log_A = transition_update(xi, sticky, p.theta.dtype)
        Gm = gamma.permute(0, 3, 1, 2).reshape(gamma.shape[0], K, data.M)
        kw = {}
        if gp is not None:
            kw = {
                "prior_mean": gp.mean.expand_as(p.theta),
                "prior_prec": gp.prec.expand(-1, K, -1, -1),
            }
        theta = newton_mstep(
            data.Xf, data.Yf, Gm, p.theta, link, n_iter=1, select=select, pairs=data.pairs, **kw
        ).theta
        p = EMParams(theta, log_A, p.log_pi0)
        if with_prior:
            gp = gaussian_prior_update(theta)
        best = int(torch.argmax(objective))
        nb = int(data.batch.lengths.sum())
        out = {
            "log_lik": float(ll[best]) / nb,
            "objective": float(objective[best]) / nb,
            "n_active_restarts": float(ll.shape[0]),
        }
        if theta.shape[0] > 1 and it + 1 >= n_explore:
            p, gp = _keep(p, gp, best)
        st["params"], st["gprior"] = p, gp
        return out

    res = fit_loop(
        step,
        max_iter=max_iter,
        tol=tol,
        monitor="objective",
        min_iter=min_iter,
        verbose=verbose,
        desc=desc,
    )
    return st["params"], st["gprior"], res


def _onehot_stage(
    full: Flat,
    params: EMParams,
    *,
    link: str,
    sticky: float,
    strength_floor: float,
    max_iter: int,
    tol: float,
    select: bool,
    verbose: bool,
):
    K = params.theta.shape[1]
    N = params.theta.shape[2]
    n_bins = int(full.batch.lengths.sum())
    th = params.theta
    st: dict[str, Any] = {
        "free": th,
        "params": params,
        "log_prior": torch.full((1, N, N, 3), -math.log(3), dtype=th.dtype, device=th.device),
        "classes": None,
    }

    def step(it):
        p = st["params"]
        ll, gamma, xi = estep(full.batch, p, link)
        ll = ll.sum(1)
        log_A = transition_update(xi, sticky, p.theta.dtype)
        Gm = gamma.permute(0, 3, 1, 2).reshape(1, K, full.M)
        nr = newton_mstep(
            full.Xf, full.Yf, Gm, st["free"], link, n_iter=1, select=select, pairs=full.pairs
        )
        st["free"] = nr.theta
        oh = onehot_update(nr.theta, nr.fisher, p.theta, st["log_prior"], float(strength_floor))
        st["params"] = EMParams(oh.theta, log_A, p.log_pi0)
        st["log_prior"], st["classes"] = oh.log_prior, oh.classes
        return {
            "log_lik": float(ll[0]) / n_bins,
            "objective": float(ll[0] + oh.elbo_prior[0]) / n_bins,
            "n_active_restarts": 1.0,
        }

    res = fit_loop(
        step,
        max_iter=max_iter,
        tol=tol,
        monitor="objective",
        min_iter=3,
        verbose=verbose,
        desc="HMM-GLM (one-hot prior)",
    )
    return st["params"], st["classes"], st["log_prior"], res


def fit_em(
    full: Flat,
    explore: Flat,
    params: EMParams,
    *,
    link: str,
    prior: str,
    sticky: float,
    strength_floor: float,
    n_explore: int,
    max_iter: int,
    tol: float,
    verbose: bool = False,
) -> EMFit:
    """Run the EM stages from starting ``params`` (see the module docstring).

    Parameters
    ----------
    full, explore : Flat
        All trials, and the subset the batched restarts explore on (may be ``full``).
    params : EMParams
        Starting parameters with a leading restart axis (from
        :func:`~neuroana.hmmglm.init.initial_params`).
    link, prior, sticky, strength_floor, n_explore, max_iter, tol, verbose
        As in :class:`~neuroana.hmmglm.HMMGLM`.
    """
    R = params.theta.shape[0]
    select = full.Xf.device.type == "cpu"
    common = {"link": link, "sticky": sticky, "max_iter": max_iter, "tol": tol, "select": select}
    params, gprior, res = _em_stage(
        full,
        explore,
        params,
        with_prior=False,
        n_explore=n_explore,
        min_iter=n_explore + 1 if R > 1 else 1,
        verbose=verbose,
        desc="HMM-GLM (no prior)",
        **common,
    )
    histories = [res.history.assign(stage=("iteration", [0] * res.n_iter))]
    if params.theta.shape[0] > 1:  # max_iter < n_explore: keep the best restart now
        ll, _, _ = estep(explore.batch, params, link)
        params, _ = _keep(params, None, int(torch.argmax(ll.sum(1))))
    converged = res.converged
    classes = log_prior = gprior = None
    if prior == "gaussian":
        params, gprior, res = _em_stage(
            full,
            full,
            params,
            with_prior=True,
            n_explore=n_explore,
            min_iter=1,
            verbose=verbose,
            desc="HMM-GLM (Gaussian prior)",
            **common,
        )
        histories.append(res.history.assign(stage=("iteration", [1] * res.n_iter)))
        converged = res.converged
    elif prior == "onehot":
        params, classes, log_prior, res = _onehot_stage(
            full, params, strength_floor=strength_floor, verbose=verbose, **common
        )
        histories.append(res.history.assign(stage=("iteration", [1] * res.n_iter)))
        converged = res.converged
    hist = xr.concat(histories, dim="iteration")
    hist = hist.assign_coords(iteration=np.arange(hist.sizes["iteration"]))
    return EMFit(params, gprior, classes, log_prior, hist, bool(converged))
