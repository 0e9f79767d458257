"""Spiking simulators with known ground truth for :mod:`neuroana.pretrain`.

- :func:`simulate_glm_network`: a Poisson-GLM (Hawkes-like) network with a given directed weight
  matrix and an exponential synaptic kernel.
- :func:`simulate_hub_network`: hub neurons each driving a block of targets (excitatory), plus sparse
  random excitatory and inhibitory edges.
- :func:`simulate_chain`: a strongly coupled chain A -> B -> C.
- :func:`simulate_stimulus_population`: neurons driven by a smooth low-dimensional stimulus through
  random receptive fields, with a behaviour variable read out from the same latent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr


@dataclass(frozen=True)
class SpikingNetwork:
    """A simulated network.

    Attributes
    ----------
    spike_times : dict unit -> sorted spike times (s)
    weights : DataArray (target, source)
        Ground-truth coupling (log-rate units).
    hub_edge : DataArray (target, source) bool
        Edges from a hub neuron.
    hubs : ndarray of hub unit indices
    duration, dt : float
    """

    spike_times: dict
    weights: xr.DataArray
    hub_edge: xr.DataArray
    hubs: np.ndarray
    duration: float
    dt: float


def simulate_glm_network(
    weights: np.ndarray,
    base_rate: np.ndarray | float,
    *,
    duration: float = 600.0,
    dt: float = 0.005,
    tau: float = 0.01,
    max_rate: float = 150.0,
    random_state: int | None = None,
) -> dict:
    """Simulate a Poisson GLM network; return ``{unit: spike times}``.

    ``rate_j(t) = base_j * exp(sum_i W[j, i] * s_i(t))`` where ``s_i`` is source ``i``'s spike train
    filtered by a causal exponential kernel (time constant ``tau``), capped at ``max_rate``. At most one
    spike per bin; spike times are jittered uniformly inside the bin.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.datasets.spiking_sim import simulate_glm_network
    >>> st = simulate_glm_network(np.zeros((2, 2)), 10.0, duration=10.0, random_state=0)
    >>> sorted(st), 50 < len(st[0]) < 150
    ([0, 1], True)
    """
    W = np.asarray(weights, dtype=float)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"weights must be a square (target, source) matrix, got shape {W.shape}")
    n = W.shape[0]
    base = np.broadcast_to(np.asarray(base_rate, dtype=float), (n,))
    rng = np.random.default_rng(random_state)
    n_bins = int(round(duration / dt))
    decay = np.exp(-dt / tau)
    s = np.zeros(n)
    u = rng.random((n_bins, n))
    spikes = np.zeros((n_bins, n), dtype=bool)
    for t in range(n_bins):
        rate = np.minimum(base * np.exp(W @ s), max_rate)
        spk = u[t] < -np.expm1(-rate * dt)
        spikes[t] = spk
        s = s * decay + spk
    tb, ub = np.nonzero(spikes)
    times = (tb + rng.random(tb.size)) * dt
    return {j: np.sort(times[ub == j]) for j in range(n)}


def simulate_hub_network(
    n_units: int = 60,
    n_hubs: int = 3,
    *,
    hub_weight: float = 1.2,
    p_edge: float = 0.04,
    edge_weight: float = 0.8,
    p_inhibitory: float = 0.4,
    base_rate: float = 5.0,
    duration: float = 600.0,
    dt: float = 0.005,
    random_state: int | None = None,
) -> SpikingNetwork:
    """Hub network: ``n_hubs`` hubs each excite a block of targets, plus sparse random +/- edges.

    Examples
    --------
    >>> from neuroana.datasets.spiking_sim import simulate_hub_network
    >>> net = simulate_hub_network(12, 2, duration=5.0, random_state=0)
    >>> net.weights.dims, int(net.hub_edge.sum()) > 0
    (('target', 'source'), True)
    """
    rng = np.random.default_rng(random_state)
    W = np.zeros((n_units, n_units))
    hubs = np.arange(n_hubs)
    others = np.arange(n_hubs, n_units)
    blocks = np.array_split(others, n_hubs)
    hub_edge = np.zeros_like(W, dtype=bool)
    for h, blk in zip(hubs, blocks, strict=True):
        W[blk, h] = hub_weight
        hub_edge[blk, h] = True
    rand = (rng.random(W.shape) < p_edge) & ~hub_edge
    np.fill_diagonal(rand, False)
    rand[:, hubs] = False
    sign = np.where(rng.random(W.shape) < p_inhibitory, -1.0, 1.0)
    W[rand] = (sign * edge_weight * rng.uniform(0.7, 1.3, W.shape))[rand]
    rates = base_rate * rng.uniform(0.6, 1.4, n_units)
    rates[hubs] = base_rate * 2.5
    st = simulate_glm_network(W, rates, duration=duration, dt=dt, random_state=rng)
    coords = {"target": np.arange(n_units), "source": np.arange(n_units)}
    return SpikingNetwork(
        st,
        xr.DataArray(W, dims=("target", "source"), coords=coords, name="weights"),
        xr.DataArray(hub_edge, dims=("target", "source"), coords=coords, name="hub_edge"),
        hubs,
        float(duration),
        float(dt),
    )


def simulate_chain(
    *,
    weight: float = 3.0,
    base_rate: float = 8.0,
    duration: float = 120.0,
    dt: float = 0.005,
    random_state: int | None = None,
) -> SpikingNetwork:
    """A strongly coupled chain A -> B -> C (units 0 -> 1 -> 2).

    Examples
    --------
    >>> from neuroana.datasets.spiking_sim import simulate_chain
    >>> net = simulate_chain(duration=5.0, random_state=0)
    >>> float(net.weights.sel(target=1, source=0)) > 0 == float(net.weights.sel(target=0, source=1))
    True
    """
    W = np.zeros((3, 3))
    W[1, 0] = W[2, 1] = weight
    rates = np.array([base_rate * 2, base_rate / 2, base_rate / 2])
    st = simulate_glm_network(W, rates, duration=duration, dt=dt, random_state=random_state)
    coords = {"target": np.arange(3), "source": np.arange(3)}
    return SpikingNetwork(
        st,
        xr.DataArray(W, dims=("target", "source"), coords=coords, name="weights"),
        xr.DataArray(W > 0, dims=("target", "source"), coords=coords, name="hub_edge"),
        np.array([0]),
        float(duration),
        float(dt),
    )


@dataclass(frozen=True)
class StimulusPopulation:
    """A stimulus-driven population with a behaviour variable.

    Attributes
    ----------
    spike_times : dict unit -> spike times
    stimulus : DataArray (time, feature)
        Stimulus features (the latent plus noise dims) at ``stimulus_rate``.
    behaviour : DataArray (time,)
        ``tanh(w . latent) + noise`` at ``behaviour_rate``.
    latent : DataArray (time, feature)
        The latent at the simulation resolution.
    """

    spike_times: dict
    stimulus: xr.DataArray
    behaviour: xr.DataArray
    latent: xr.DataArray


def simulate_stimulus_population(
    n_units: int = 40,
    n_latent: int = 3,
    *,
    duration: float = 300.0,
    dt: float = 0.005,
    timescale: float = 0.5,
    base_rate: float = 6.0,
    gain: float = 0.9,
    stimulus_rate: float = 20.0,
    behaviour_rate: float = 50.0,
    behaviour_noise: float = 0.1,
    random_state: int | None = None,
) -> StimulusPopulation:
    """Neurons driven by a smooth latent through random receptive fields; behaviour reads the latent.

    Examples
    --------
    >>> from neuroana.datasets.spiking_sim import simulate_stimulus_population
    >>> pop = simulate_stimulus_population(10, duration=5.0, random_state=0)
    >>> pop.stimulus.dims, pop.behaviour.dims
    (('time', 'feature'), ('time',))
    """
    rng = np.random.default_rng(random_state)
    n_bins = int(round(duration / dt))
    a = np.exp(-dt / timescale)
    noise = rng.normal(size=(n_bins, n_latent)) * np.sqrt(1 - a**2)
    z = np.zeros((n_bins, n_latent))
    z[0] = rng.normal(size=n_latent)
    for t in range(1, n_bins):
        z[t] = a * z[t - 1] + noise[t]
    rf = rng.normal(size=(n_units, n_latent)) * gain / np.sqrt(n_latent)
    rates = base_rate * rng.uniform(0.5, 1.5, n_units) * np.exp(z @ rf.T)
    spk = rng.random((n_bins, n_units)) < -np.expm1(-np.minimum(rates, 200.0) * dt)
    tb, ub = np.nonzero(spk)
    times = (tb + rng.random(tb.size)) * dt
    st = {j: np.sort(times[ub == j]) for j in range(n_units)}
    t = np.arange(n_bins) * dt
    ks = max(1, int(round(1 / (stimulus_rate * dt))))
    kb = max(1, int(round(1 / (behaviour_rate * dt))))
    feats = np.concatenate([z[::ks], rng.normal(size=(len(z[::ks]), 2)) * 0.5], axis=1)
    w = rng.normal(size=n_latent)
    w /= np.linalg.norm(w)
    beh = np.tanh(1.5 * z[::kb] @ w) + behaviour_noise * rng.normal(size=len(z[::kb]))
    return StimulusPopulation(
        st,
        xr.DataArray(
            feats.astype(np.float32),
            dims=("time", "feature"),
            coords={"time": t[::ks]},
            name="stimulus",
        ),
        xr.DataArray(
            beh.astype(np.float32), dims=("time",), coords={"time": t[::kb]}, name="behaviour"
        ),
        xr.DataArray(z, dims=("time", "feature"), coords={"time": t}, name="latent"),
    )
