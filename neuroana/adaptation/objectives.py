"""Adaptation objectives as functions of gains, the stimulus ensemble and hyper-parameters.

All gain objectives act on the steady state ``r(theta) = M diag(g) f(theta)`` of
:class:`~neuroana.adaptation.network.RecurrentGainNetwork` and take torch tensors with optional
leading batch dims: ``g [..., N]``, ``M [..., N, N]``, ``F [..., N, K]``, ``p [..., K]``. Expectations
are exact sums over the stimulus grid weighted by the prior ``p``.

Notation: ``mu = F p`` (mean drive), ``C = F diag(p) F^T`` (second moment of the drive),
``A = (M^T M) o C`` (``o`` the Hadamard product; positive semi-definite by the Schur product theorem),
``a = (M^T 1) o mu``. Then ``E_p[1^T r] = a . g`` and ``E_p ||r||^2 = g^T A g``.

Objectives
----------
:class:`EfficientCoding`
    The paper's adaptive efficient-coding trade-off (reconstructed; see the class docstring).
:class:`Homeostatic`
    Classical homeostatic / divisive-normalisation gain: every neuron's mean response to the
    ensemble is driven to a common target (the Benucci et al. 2013 "equality").
:func:`westrick_adapt_weights`
    The synaptic-weight baseline (Westrick, Heeger & Landy 2016): normalisation weights, not gains,
    adapt so that pairwise response products return to their unadapted values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from neuroana.adaptation.errors import AdaptationInputError


def ensemble_moments(
    M: torch.Tensor, F: torch.Tensor, p: torch.Tensor, *, centered: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a, A)`` with ``E_p[1^T r] = a . g`` and ``E_p ||r - c||^2 = g^T A g`` (see module doc).

    With ``centered=True`` ``A`` uses the covariance ``C - mu mu^T`` of the drive instead of its
    second moment (the activity cost then penalises response variance, not power).
    """
    mu = torch.einsum("...nk,...k->...n", F, p)
    C = torch.einsum("...nk,...k,...mk->...nm", F, p, F)
    if centered:
        C = C - mu[..., :, None] * mu[..., None, :]
    MtM = M.transpose(-1, -2) @ M
    a = M.sum(dim=-2) * mu
    return a, MtM * C


@dataclass(frozen=True)
class EfficientCoding:
    """Adaptive efficient coding: stimulus fidelity traded against network activity.

    ``L(g) = -sum_i log g_i + lam * [(1 - alpha) E_p(1^T r) + alpha E_p ||r||^2]``

    *Fidelity.* With small additive Gaussian output noise of fixed variance, the mutual information
    between drive and response is ``const + log|det M| + sum_i log g_i``; with Poisson noise the
    gain-dependent part of ``E log J(theta)`` is the same ``sum_i log g_i``. Both give the
    log-gain fidelity term (choice documented in ``gain_control.md`` §1.2; the paper's exact noise model
    could not be read).

    *Activity.* A mixture of total (L1) and squared (L2) activity. ``alpha`` is the trade-off weight
    that shapes the adapted gains: ``alpha = 0`` has the closed form
    ``g_i = 1 / (lam (M^T 1)_i mu_i)`` (exact homeostasis of mean responses on a ring);
    ``alpha = 1`` is the second-moment cost, whose optimum solves ``g_i (A g)_i = 1 / (2 lam)`` and
    also decorrelates. ``lam`` only rescales all gains together when ``alpha`` is 0 or 1 (the cost is
    then homogeneous in g), so data normalised per neuron identify ``alpha``, not ``lam``.

    Parameters
    ----------
    lam : float
        Weight of the activity cost (> 0).
    alpha : float
        L2 share of the activity cost, in [0, 1].
    centered : bool
        Use the response covariance instead of its second moment in the L2 term.

    Examples
    --------
    >>> import torch
    >>> from neuroana.adaptation.objectives import EfficientCoding
    >>> obj = EfficientCoding(lam=2.0, alpha=0.0)
    >>> M = torch.eye(2, dtype=torch.float64); F = torch.ones(2, 3, dtype=torch.float64)
    >>> p = torch.full((3,), 1 / 3, dtype=torch.float64)
    >>> obj.analytic(M, F, p).tolist()
    [0.5, 0.5]
    """

    lam: float = 1.0
    alpha: float = 1.0
    centered: bool = False

    def __post_init__(self) -> None:
        if not np.isfinite(self.lam) or self.lam <= 0:
            raise AdaptationInputError(f"lam={self.lam!r}; expected a positive trade-off weight")
        if not 0.0 <= self.alpha <= 1.0:
            raise AdaptationInputError(f"alpha={self.alpha!r}; expected a value in [0, 1]")

    @property
    def linear_in_prior(self) -> bool:
        """Whether ``L`` is an expectation over stimuli (needed for the unbiased online rule)."""
        return not self.centered

    def loss(
        self, g: torch.Tensor, M: torch.Tensor, F: torch.Tensor, p: torch.Tensor
    ) -> torch.Tensor:
        """Objective value (to minimise); batch dims of the inputs are kept."""
        a, A = ensemble_moments(M, F, p, centered=self.centered)
        l1 = (a * g).sum(-1)
        l2 = torch.einsum("...n,...nm,...m->...", g, A, g)
        return -torch.log(g).sum(-1) + self.lam * ((1 - self.alpha) * l1 + self.alpha * l2)

    def grad_hess_log(
        self, u: torch.Tensor, M: torch.Tensor, F: torch.Tensor, p: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradient and Hessian in ``u = log g`` in closed form (batched)."""
        a, A = ensemble_moments(M, F, p, centered=self.centered)
        g = torch.exp(u)
        Ag = torch.einsum("...nm,...m->...n", A, g)
        lin = self.lam * (1 - self.alpha) * a * g
        quad = 2 * self.lam * self.alpha * g * Ag
        grad = -1.0 + lin + quad
        H = 2 * self.lam * self.alpha * g[..., :, None] * A * g[..., None, :]
        H = H + torch.diag_embed(lin + quad)
        return grad, H

    def analytic(self, M: torch.Tensor, F: torch.Tensor, p: torch.Tensor) -> torch.Tensor | None:
        """Closed-form optimum, or None where none exists.

        ``alpha = 0``: ``g = 1 / (lam a)``. Diagonal ``A`` (``W = 0``): per-neuron quadratic
        ``2 lam alpha A_ii g^2 + lam (1 - alpha) a_i g - 1 = 0``. Differentiable in all inputs.
        """
        a, A = ensemble_moments(M, F, p, centered=self.centered)
        if self.alpha == 0.0:
            if torch.any(a <= 0):
                raise AdaptationInputError(
                    "the closed form needs (M^T 1)_i mu_i > 0 for every neuron; got non-positive "
                    "values (strongly inhibitory W or zero drive)"
                )
            return 1.0 / (self.lam * a)
        off = A - torch.diag_embed(torch.diagonal(A, dim1=-2, dim2=-1))
        if torch.max(torch.abs(off)) > 1e-14 * torch.max(torch.abs(A)):
            return None
        d = torch.diagonal(A, dim1=-2, dim2=-1)
        qa = 2 * self.lam * self.alpha * d
        qb = self.lam * (1 - self.alpha) * a
        return (-qb + torch.sqrt(qb**2 + 4 * qa)) / (2 * qa)

    def online_direction(
        self, g: torch.Tensor, M: torch.Tensor, F: torch.Tensor, p_hat: torch.Tensor
    ) -> torch.Tensor:
        """Descent direction in ``log g`` from a minibatch with empirical distribution ``p_hat``.

        Unbiased (expectation = ``-grad_u L``) because ``L`` is linear in the prior. The rule is
        ``du_i = 1 - lam g_i [(1 - alpha) (M^T 1)_i f_i + 2 alpha f_i (M^T r)_i]`` averaged over the
        minibatch: local up to the feedback pass ``M^T r``.
        """
        if not self.linear_in_prior:
            raise AdaptationInputError(
                "the online rule needs an objective linear in the prior; centered=True is not"
            )
        grad, _ = self.grad_hess_log(torch.log(g), M, F, p_hat)
        return -grad


@dataclass(frozen=True)
class Homeostatic:
    """Homeostatic (divisive-normalisation) gain: equal mean responses across the population.

    ``L(g) = 1/2 sum_i (E_p[r_i] / target - 1)^2`` with ``E_p[r] = M diag(mu) g``. Each neuron's gain
    divides out its mean drive (classical single-neuron gain control; Benucci et al. 2013's
    "equality"); through the recurrence the exact optimum is ``g = (I - W) target 1 / mu`` (must be
    positive). It ignores stimulus fidelity entirely, which is the contrast with
    :class:`EfficientCoding`.

    Examples
    --------
    >>> import torch
    >>> from neuroana.adaptation.objectives import Homeostatic
    >>> M = torch.eye(2, dtype=torch.float64); F = torch.tensor([[1.0, 3.0], [2.0, 2.0]], dtype=torch.float64)
    >>> Homeostatic(target=1.0).analytic(M, F, torch.tensor([0.5, 0.5], dtype=torch.float64)).tolist()
    [0.5, 0.5]
    """

    target: float = 1.0

    def __post_init__(self) -> None:
        if not np.isfinite(self.target) or self.target <= 0:
            raise AdaptationInputError(f"target={self.target!r}; expected a positive mean response")

    linear_in_prior = True

    def _mean_response(self, g, M, F, p):
        mu = torch.einsum("...nk,...k->...n", F, p)
        return torch.einsum("...nm,...m->...n", M, mu * g)

    def loss(
        self, g: torch.Tensor, M: torch.Tensor, F: torch.Tensor, p: torch.Tensor
    ) -> torch.Tensor:
        """Objective value (to minimise)."""
        m = self._mean_response(g, M, F, p)
        return 0.5 * ((m / self.target - 1.0) ** 2).sum(-1)

    def analytic(self, M: torch.Tensor, F: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """``g = (I - W) target 1 / mu``; raises when a gain would be non-positive."""
        mu = torch.einsum("...nk,...k->...n", F, p)
        ones = torch.full_like(mu, self.target)
        g = torch.linalg.solve(M, ones[..., None])[..., 0] / mu
        if torch.any(g <= 0):
            raise AdaptationInputError(
                "homeostatic gains would be non-positive for this W (recurrent excitation exceeds "
                "what positive gains can balance); lower the recurrence or the target"
            )
        return g

    def online_direction(self, g, M, F, p_hat) -> torch.Tensor:
        """``du_i = 1 - r_i / target`` averaged over the minibatch (zero in expectation at the optimum)."""
        return 1.0 - self._mean_response(g, M, F, p_hat) / self.target


def get_objective(objective) -> EfficientCoding | Homeostatic:
    """Turn ``"efficient_coding"``, ``"homeostatic"`` or an objective instance into an instance."""
    if isinstance(objective, EfficientCoding | Homeostatic):
        return objective
    if objective == "efficient_coding":
        return EfficientCoding()
    if objective == "homeostatic":
        return Homeostatic()
    raise AdaptationInputError(
        f"objective={objective!r}; expected 'efficient_coding', 'homeostatic' or an objective instance"
    )


# ----------------------------------------------------------------- synaptic-weight baseline
def normalization_responses(
    F: np.ndarray, weights: np.ndarray, *, sigma: float = 0.1, exponent: float = 2.0
) -> np.ndarray:
    """Divisive normalisation ``R_i = D_i^n / (sigma^n + sum_j w_ij D_j^n)`` (Carandini & Heeger 2012;
    Westrick, Heeger & Landy 2016), ``F`` = drive ``D`` (neuron, stimulus).

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.adaptation.objectives import normalization_responses
    >>> normalization_responses(np.ones((2, 1)), np.zeros((2, 2)), sigma=1.0).ravel().tolist()
    [1.0, 1.0]
    """
    Dn = np.asarray(F, float) ** exponent
    return Dn / (sigma**exponent + weights @ Dn)


def westrick_loss(
    weights: np.ndarray,
    F: np.ndarray,
    prior: np.ndarray,
    target: np.ndarray,
    *,
    sigma: float = 0.1,
    exponent: float = 2.0,
) -> float:
    """``sum_ij (log E_p[R_i R_j] - log T_ij)^2``: how far pairwise response products are from the
    target products ``T`` (the unadapted, uniform-ensemble values in Westrick et al. 2016)."""
    R = normalization_responses(F, weights, sigma=sigma, exponent=exponent)
    P = (R * prior) @ R.T
    return float(np.sum((np.log(P) - np.log(target)) ** 2))


def westrick_adapt_weights(
    F: np.ndarray,
    prior: np.ndarray,
    *,
    weights0: np.ndarray | None = None,
    target: np.ndarray | None = None,
    sigma: float = 0.1,
    exponent: float = 2.0,
    rate: float = 0.5,
    max_iter: int = 500,
    tol: float = 1e-10,
    verbose: bool = False,
) -> tuple[np.ndarray, float]:
    """Synaptic-weight adaptation baseline (Westrick, Heeger & Landy 2016, reweighting rule).

    The normalisation weights follow the multiplicative Hebbian-like update
    ``w_ij <- w_ij (E_p[R_i R_j] / T_ij)^rate`` until the pairwise products match ``T`` (default: their
    values under the uniform ensemble with ``weights0``). Gains stay fixed; this is the "synaptic
    efficacy" alternative the gain model is contrasted with.

    Returns
    -------
    weights : ndarray (neuron, neuron)
    loss : float
        :func:`westrick_loss` at the returned weights.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.adaptation.objectives import westrick_adapt_weights
    >>> F = np.exp(np.cos(np.linspace(0, 2 * np.pi, 8, endpoint=False)[:, None]
    ...            - np.linspace(0, 2 * np.pi, 16, endpoint=False)[None, :]))
    >>> p = np.full(16, 1 / 16)
    >>> w, loss = westrick_adapt_weights(F, p)
    >>> loss < 1e-12
    True
    """
    from neuroana.backend import fit_loop

    F = np.asarray(F, float)
    n, k = F.shape
    w = np.full((n, n), 1.0 / n) if weights0 is None else np.array(weights0, float)
    if target is None:
        R0 = normalization_responses(F, w, sigma=sigma, exponent=exponent)
        target = (R0 / k) @ R0.T
    state = {"w": w}

    def step(_):
        R = normalization_responses(F, state["w"], sigma=sigma, exponent=exponent)
        P = (R * prior) @ R.T
        state["w"] = state["w"] * (P / target) ** rate
        return {"loss": westrick_loss(state["w"], F, prior, target, sigma=sigma, exponent=exponent)}

    fit_loop(step, max_iter=max_iter, tol=tol, verbose=verbose, desc="westrick")
    return state["w"], westrick_loss(state["w"], F, prior, target, sigma=sigma, exponent=exponent)
