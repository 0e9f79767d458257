"""Simulated switching-state coupled Poisson GLM spike trains with known ground truth.

Follows the generative model of the one-hot HMM-GLM paper (Li et al., ICLR 2024) as described in
``../shared/hmmglm_reference/README.md``: a shared class prior ``pi[n, j] ~ Dirichlet``, per-state
classes drawn from it, strengths ``log(1 + 3u)``, a bias shared by all states, a sticky transition
matrix and Poisson counts through the capped sigmoid link. Written from that description with NumPy
(it does not reproduce the paper's torch random stream).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr


@dataclass(frozen=True)
class HMMGLMSimulation:
    """Spikes and the parameters that generated them.

    Attributes
    ----------
    spikes : xarray.DataArray
        ``("trial", "time", "unit")`` counts.
    states : xarray.DataArray
        ``("trial", "time")`` true states.
    weights, adjacency : numpy.ndarray
        ``(state, post, pre)`` true weights and classes in {-1, 0, 1}.
    prior_prob : numpy.ndarray
        ``(post, pre, 3)`` class probabilities (inhibitory, none, excitatory).
    anatomical_adjacency : numpy.ndarray
        ``argmax(prior_prob) - 1``.
    bias : numpy.ndarray
        ``(unit,)`` shared bias.
    transition : numpy.ndarray
        ``(state, state)``.
    history_filter : numpy.ndarray
        ``(window,)`` the filter used.
    """

    spikes: xr.DataArray
    states: xr.DataArray
    weights: np.ndarray
    adjacency: np.ndarray
    prior_prob: np.ndarray
    anatomical_adjacency: np.ndarray
    bias: np.ndarray
    transition: np.ndarray
    history_filter: np.ndarray


def simulate_hmmglm(
    n_states: int = 3,
    n_units: int = 10,
    n_trials: int = 20,
    n_time: int = 500,
    *,
    stay: float = 0.98,
    concentration: tuple[float, float, float] = (0.2, 1.6, 0.2),
    max_strength: float = 1.386,
    random_state: int | None = 0,
) -> HMMGLMSimulation:
    """Draw a dataset from the paper's HMM-GLM generative model (sigmoid link, 5-bin exp filter).

    Examples
    --------
    >>> from neuroana.datasets.hmmglm_sim import simulate_hmmglm
    >>> sim = simulate_hmmglm(2, 4, n_trials=3, n_time=50, random_state=1)
    >>> sim.spikes.dims, sim.weights.shape
    (('trial', 'time', 'unit'), (2, 4, 4))
    """
    from neuroana.hmmglm import exp_filter

    if n_states < 1 or n_units < 1 or n_trials < 1 or n_time < 1:
        raise ValueError(
            f"n_states, n_units, n_trials, n_time must be >= 1, got "
            f"{(n_states, n_units, n_trials, n_time)}"
        )
    rng = np.random.default_rng(random_state)
    K, N = n_states, n_units
    pi = rng.dirichlet(concentration, size=(N, N))
    strength = np.log1p((np.exp(max_strength) - 1) * rng.random((K, N, N)))
    cum = pi.cumsum(-1)
    u = rng.random((K, N, N, 1))
    adjacency = (u > cum[None, :, :, :2]).sum(-1) - 1
    bias = rng.uniform(-0.05, 0.05, N)
    weights = adjacency * strength
    trans = np.full((K, K), (1 - stay) / max(K - 1, 1))
    np.fill_diagonal(trans, stay if K > 1 else 1.0)
    phi = exp_filter()[0]
    W = len(phi)
    spikes = np.zeros((n_trials, n_time, N), dtype=np.int64)
    states = np.zeros((n_trials, n_time), dtype=np.int64)
    for b in range(n_trials):
        z = rng.integers(K)
        for t in range(n_time):
            if t > 0:
                z = rng.choice(K, p=trans[z])
            states[b, t] = z
            lo = max(0, t - W)
            past = spikes[b, lo:t][::-1]  # lag 1 first
            h = phi[: len(past)] @ past if len(past) else np.zeros(N)
            eta = bias + weights[z] @ h
            rate = (1 - 1e-8) / (1 + np.exp(-eta)) + 1e-8
            spikes[b, t] = rng.poisson(rate)
    return HMMGLMSimulation(
        spikes=xr.DataArray(spikes, dims=("trial", "time", "unit"), name="spikes"),
        states=xr.DataArray(states, dims=("trial", "time"), name="states"),
        weights=weights,
        adjacency=adjacency.astype(np.int64),
        prior_prob=pi,
        anatomical_adjacency=pi.argmax(-1) - 1,
        bias=bias,
        transition=trans,
        history_filter=phi,
    )
