"""Optimal gains: closed form, Newton, L-BFGS and the online (stochastic) update.

The functional core (:func:`solve_gains`) works on tensors and stays differentiable: closed forms
directly, Newton / L-BFGS solutions through one implicit-function step
``u = u* - H^-1 grad_u L(u*)`` (H detached), whose first derivative with respect to ``M``, ``F``,
``p`` and the hyper-parameters is the implicit-function-theorem derivative of the optimum.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import xarray as xr

from neuroana.adaptation.errors import AdaptationInputError
from neuroana.adaptation.network import RecurrentGainNetwork
from neuroana.adaptation.objectives import get_objective
from neuroana.adaptation.priors import check_prior
from neuroana.backend import fit_loop, make_generators

METHODS = ("analytic", "newton", "lbfgs", "online")


class GainSolution(NamedTuple):
    """What :func:`optimal_gains` returns.

    Attributes
    ----------
    gains : xarray.DataArray
        Optimal gains, dim ``neuron`` (coordinate: preferred stimulus).
    loss : float
        Objective at the gains.
    grad_norm : float
        Max-abs gradient of the objective with respect to ``log g`` at the gains.
    n_iter : int
        Iterations used (0 for the closed form).
    converged : bool
    method : str
    history : xarray.Dataset or None
        Per-iteration metrics (dim ``iteration``) for the iterative methods.
    """

    gains: xr.DataArray
    loss: float
    grad_norm: float
    n_iter: int
    converged: bool
    method: str
    history: xr.Dataset | None


# ------------------------------------------------------------------------------ core
def grad_hess_log(objective, u: torch.Tensor, M, F, p, *, create_graph: bool = False):
    """Gradient and Hessian of the objective in ``u = log g`` (closed form when the objective has
    one, else autograd; single problem or batched for the closed form)."""
    if hasattr(objective, "grad_hess_log"):
        return objective.grad_hess_log(u, M, F, p)
    if u.dim() != 1:
        raise AdaptationInputError("autograd Hessians are computed one problem at a time")

    def f(x):
        return objective.loss(torch.exp(x), M, F, p)

    if create_graph:
        x = u.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(f(x), x, create_graph=True)
        return grad, torch.autograd.functional.hessian(f, u.detach())
    x = u.detach().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(f(x), x)
    return grad, torch.autograd.functional.hessian(f, u.detach())


def newton_log_gains(
    objective, M, F, p, *, u0=None, max_iter: int = 100, tol: float = 1e-13, verbose: bool = False
):
    """Damped Newton in ``u = log g`` (batched for objectives with closed-form derivatives).

    Returns ``(u, FitResult)``; stops when ``max|grad_u L| <= tol``.
    """
    n = F.shape[-2]
    batch = torch.broadcast_shapes(M.shape[:-2], F.shape[:-2], p.shape[:-1])
    u = torch.zeros((*batch, n), dtype=F.dtype, device=F.device) if u0 is None else u0.clone()
    state = {"u": u}

    def loss_of(x):
        return objective.loss(torch.exp(x), M, F, p)

    def step(i):
        with torch.no_grad():
            return _step(i)

    def _step(_):
        x = state["u"]
        grad, H = grad_hess_log(objective, x, M, F, p)
        gmax = float(grad.abs().max())
        if gmax <= tol:
            return {"loss": float(loss_of(x).sum()), "grad_max": gmax, "done": 1.0}
        eye = torch.eye(n, dtype=x.dtype, device=x.device)
        damp = 0.0
        for _ in range(30):
            try:
                L = torch.linalg.cholesky(H + damp * eye)
                break
            except RuntimeError:
                damp = max(1e-8, 10 * damp)
        else:
            raise AdaptationInputError("Newton: the Hessian could not be regularised")
        delta = -torch.cholesky_solve(grad[..., None], L)[..., 0]
        f0 = loss_of(x)
        t = torch.ones(batch, dtype=x.dtype, device=x.device)
        slope = (grad * delta).sum(-1)
        for _ in range(40):
            cand = x + t[..., None] * delta
            ok = loss_of(cand) <= f0 + 1e-4 * t * slope + 1e-14 * f0.abs()
            if bool(ok.all()):
                break
            t = torch.where(ok, t, 0.5 * t)
        state["u"] = x + t[..., None] * delta
        return {"loss": float(loss_of(state["u"]).sum()), "grad_max": gmax, "done": 0.0}

    res = fit_loop(
        step,
        max_iter=max_iter,
        callbacks=[lambda i, m: m["done"] > 0],
        verbose=verbose,
        desc="newton gains",
    )
    return state["u"], res


def lbfgs_log_gains(objective, M, F, p, *, max_iter: int = 50, tol: float = 1e-11, verbose=False):
    """L-BFGS (strong Wolfe) in ``u = log g`` on one problem; ``(u, FitResult)``."""
    n = F.shape[-2]
    u = torch.zeros(n, dtype=F.dtype, device=F.device, requires_grad=True)
    opt = torch.optim.LBFGS(
        [u],
        lr=1.0,
        max_iter=50,
        tolerance_grad=tol,
        tolerance_change=1e-30,
        history_size=50,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        val = objective.loss(torch.exp(u), M, F, p)
        val.backward()
        return val

    def step(_):
        opt.step(closure)
        with torch.enable_grad():
            closure()
        gmax = float(u.grad.abs().max())
        return {"loss": float(objective.loss(torch.exp(u), M, F, p).detach()), "grad_max": gmax}

    res = fit_loop(
        step,
        max_iter=max_iter,
        tol=1e-16,
        callbacks=[lambda i, m: m["grad_max"] <= tol],
        verbose=verbose,
        desc="lbfgs gains",
    )
    return u.detach(), res


def online_log_gains(
    objective,
    M,
    F,
    p,
    *,
    n_steps: int = 4000,
    batch_size: int = 32,
    learning_rate: float = 0.2,
    random_state=None,
    verbose: bool = False,
):
    """Online gain update: stochastic steps ``u += eta_t * direction(minibatch)`` with stimuli drawn
    from ``p``; ``eta_t = learning_rate / (1 + t / 100)^0.6`` and Polyak averaging over the second
    half. Its expected step is zero exactly at the optimum, so it agrees with the closed form in
    expectation. Returns ``(u_averaged, FitResult)``."""
    rng, _ = make_generators(random_state)
    k = F.shape[-1]
    pn = p.detach().cpu().numpy().astype(float)
    pn = pn / pn.sum()
    state = {"u": torch.zeros(F.shape[-2], dtype=F.dtype, device=F.device), "avg": None, "n": 0}

    def step(t):
        idx = rng.choice(k, size=batch_size, p=pn)
        p_hat = torch.as_tensor(
            np.bincount(idx, minlength=k) / batch_size, dtype=F.dtype, device=F.device
        )
        d = objective.online_direction(torch.exp(state["u"]), M, F, p_hat)
        eta = learning_rate / (1.0 + t / 100.0) ** 0.6
        state["u"] = state["u"] + eta * d
        if t >= n_steps // 2:
            state["n"] += 1
            a = state["avg"]
            state["avg"] = state["u"].clone() if a is None else a + (state["u"] - a) / state["n"]
        return {"loss": float(objective.loss(torch.exp(state["u"]), M, F, p)), "step": eta}

    res = fit_loop(step, max_iter=n_steps, verbose=verbose, desc="online gains")
    return (state["avg"] if state["avg"] is not None else state["u"]), res


def attach_implicit_gradient(objective, u_star: torch.Tensor, M, F, p) -> torch.Tensor:
    """``u* - H^-1 grad_u L(u*)`` with ``H`` detached: equals ``u*`` in value (grad ~ 0) and carries the
    implicit-function derivative of the optimum with respect to ``M``, ``F``, ``p``."""
    u0 = u_star.detach()
    if hasattr(objective, "grad_hess_log"):
        grad, H = objective.grad_hess_log(u0, M, F, p)
    else:
        grad, H = grad_hess_log(objective, u0, M, F, p, create_graph=True)
        with torch.enable_grad():
            grad = torch.func.grad(lambda x: objective.loss(torch.exp(x), M, F, p))(u0)
    return u0 - torch.linalg.solve(H.detach(), grad[..., None])[..., 0]


def solve_gains(objective, M, F, p, *, method: str = "newton", **kw) -> tuple[torch.Tensor, object]:
    """Tensor-level solver: ``(gains, FitResult | None)``; differentiable in ``M, F, p``."""
    if method == "analytic":
        g = objective.analytic(M, F, p)
        if g is None:
            raise AdaptationInputError(
                f"{objective!r} has no closed-form optimum for this network (it needs alpha=0 or "
                "W=0); use method='newton' or 'lbfgs'"
            )
        return g, None
    if method == "newton":
        u, res = newton_log_gains(objective, M.detach(), F.detach(), p.detach(), **kw)
    elif method == "lbfgs":
        u, res = lbfgs_log_gains(objective, M.detach(), F.detach(), p.detach(), **kw)
    elif method == "online":
        u, res = online_log_gains(objective, M.detach(), F.detach(), p.detach(), **kw)
        return torch.exp(u), res
    else:
        raise AdaptationInputError(f"method={method!r}; expected one of {METHODS}")
    if any(t.requires_grad for t in (M, F, p)):
        u = attach_implicit_gradient(objective, u, M, F, p)
    return torch.exp(u), res


# ------------------------------------------------------------------------------ public
def optimal_gains(
    network: RecurrentGainNetwork,
    stimulus_prior: np.ndarray,
    objective="efficient_coding",
    method: str = "analytic",
    **solver_kw,
) -> GainSolution:
    """Gains that minimise ``objective`` for ``network`` under ``stimulus_prior``.

    Parameters
    ----------
    network : RecurrentGainNetwork
    stimulus_prior : array_like (stimulus,)
        Distribution over ``network.stimuli``; must be non-negative and sum to one.
    objective : str or objective instance
        ``"efficient_coding"`` (:class:`~neuroana.adaptation.objectives.EfficientCoding` defaults),
        ``"homeostatic"`` or an instance with hyper-parameters.
    method : {"analytic", "newton", "lbfgs", "online"}
        Closed form (where it exists), damped Newton in log-gain, L-BFGS in log-gain, or the online
        stochastic update (``n_steps``, ``batch_size``, ``learning_rate``, ``random_state``).
    **solver_kw
        Passed to the iterative solver (``max_iter``, ``tol``, ``verbose`` ...).

    Returns
    -------
    GainSolution

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.adaptation import RecurrentGainNetwork, optimal_gains
    >>> from neuroana.adaptation.objectives import EfficientCoding
    >>> net = RecurrentGainNetwork(n_neurons=8, stimuli=16, recurrence=0.4)
    >>> p = np.full(16, 1 / 16)
    >>> a = optimal_gains(net, p, EfficientCoding(alpha=0.0), "analytic").gains
    >>> b = optimal_gains(net, p, EfficientCoding(alpha=0.0), "newton").gains
    >>> bool(np.allclose(a, b, rtol=1e-10))
    True
    """
    if not isinstance(network, RecurrentGainNetwork):
        raise AdaptationInputError(
            f"network is {type(network).__name__}; expected RecurrentGainNetwork"
        )
    obj = get_objective(objective)
    p = torch.as_tensor(check_prior(stimulus_prior, network.stimuli.size), dtype=torch.float64)
    M = torch.as_tensor(network.resolvent(), dtype=torch.float64)
    F = torch.as_tensor(network.F, dtype=torch.float64)
    g, res = solve_gains(obj, M, F, p, method=method, **solver_kw)
    g = g.detach()
    u = torch.log(g).requires_grad_(True)
    val = obj.loss(torch.exp(u), M, F, p)
    (gr,) = torch.autograd.grad(val, u)
    val = val.detach()
    return GainSolution(
        gains=xr.DataArray(
            g.numpy(), dims=("neuron",), coords={"neuron": network.preferred}, name="gain"
        ),
        loss=float(val),
        grad_norm=float(gr.abs().max()),
        n_iter=0 if res is None else res.n_iter,
        converged=True if res is None else (res.stop_reason in ("callback", "converged")),
        method=method,
        history=None if res is None else res.history,
    )
