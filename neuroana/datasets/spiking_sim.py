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


# ---------------------------------------------------------------------- realistic recordings
@dataclass(frozen=True)
class RealisticNetwork:
    """A network simulated like a recording (see :func:`simulate_realistic_network`).

    Attributes
    ----------
    spike_times : dict unit id -> sorted spike times (s); ids are non-contiguous integers
    weights : DataArray (target, source)
        Planted coupling (log-rate units), coords = unit ids.
    delays : DataArray (target, source)
        Synaptic delays (s) of the planted edges (0 where no edge).
    edge_type : DataArray (target, source)
        ``"hub_exc"``, ``"exc"``, ``"inh"`` or ``""``.
    hubs : list of hub unit ids
    shared : DataArray (time,)
        The slow shared log-rate fluctuation (before each unit's gain), at 10 ms.
    behaviour : DataArray (time,) or None
        Running speed (cm/s) at 100 Hz for tuned populations.
    duration : float
    """

    spike_times: dict
    weights: xr.DataArray
    delays: xr.DataArray
    edge_type: xr.DataArray
    hubs: list
    shared: xr.DataArray
    behaviour: xr.DataArray | None
    duration: float


def _smooth_noise(rng, n: int, sigma_bins: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter1d

    z = gaussian_filter1d(rng.normal(size=n), sigma_bins, mode="wrap")
    return (z - z.mean()) / z.std()


def simulate_realistic_network(
    n_units: int = 40,
    n_hubs: int = 2,
    *,
    duration: float = 300.0,
    hub_out_degree: tuple = (12, 18),
    hub_weight: tuple = (0.8, 1.3),
    hub_delay: tuple = (0.004, 0.02),
    p_random: float = 0.05,
    frac_inhibitory: float = 0.3,
    exc_weight: tuple = (0.4, 0.8),
    inh_weight: tuple = (0.8, 1.6),
    random_delay: tuple = (0.002, 0.012),
    base_rate: tuple = (4.0, 9.0),
    hub_rate: tuple = (8.0, 12.0),
    shared_sd: float = 0.3,
    shared_timescale: float = 2.0,
    tau_syn: float = 0.003,
    abs_refractory: float = 0.002,
    rel_refractory: tuple = (-2.0, 0.008),
    tuned: bool = False,
    tuning_gain: tuple = (0.35, 0.8),
    max_rate: float = 400.0,
    random_state: int | None = None,
) -> RealisticNetwork:
    """A spiking network that looks like a recording: delays, refractoriness, shared fluctuation.

    Discrete time (1 ms), exponential link::

        log rate_j(t) = log base_j + gain_j * shared(t) + tuning_j(speed(t - lag_j))
                        + sum_i W[j, i] * sum_{s in spikes_i} exp(-(t - s - D[j, i]) / tau_syn)
                        + a_rel * sum_{s in spikes_j} exp(-(t - s) / tau_rel)

    with no spike within ``abs_refractory`` of the previous one, rates capped at ``max_rate``.
    ``n_hubs`` hubs each excite ``hub_out_degree`` random targets with delays in ``hub_delay``;
    other pairs get an edge with probability ``p_random`` (a ``frac_inhibitory`` share inhibitory).
    ``shared`` is smoothed white noise (Gaussian, ``shared_timescale`` s), z-scored, times
    ``shared_sd``, with a per-unit gain in [0.5, 1.5]: correlations that are not edges. Unit ids are
    sorted random integers (non-contiguous). With ``tuned=True`` units are also tuned (increasing,
    decreasing, bump or untuned; lags -100..200 ms) to a running speed returned as ``behaviour``.

    Examples
    --------
    >>> from neuroana.datasets.spiking_sim import simulate_realistic_network
    >>> net = simulate_realistic_network(12, 1, duration=5.0, hub_out_degree=(4, 6), random_state=0)
    >>> net.weights.dims, len(net.spike_times), net.hubs[0] in net.spike_times
    (('target', 'source'), 12, True)
    """
    rng = np.random.default_rng(random_state)
    dt = 0.001
    n, N = int(round(duration / dt)), n_units
    ids = np.sort(rng.choice(np.arange(1, 20 * N), N, replace=False))
    W = np.zeros((N, N))
    D = np.zeros((N, N), dtype=int)
    etype = np.full((N, N), "", dtype=object)
    hubs = rng.choice(N, n_hubs, replace=False) if n_hubs else np.array([], int)
    for h in hubs:
        deg = min(N - 1, int(rng.integers(hub_out_degree[0], hub_out_degree[1] + 1)))
        tg = rng.choice(np.setdiff1d(np.arange(N), [h]), deg, replace=False)
        W[tg, h] = rng.uniform(*hub_weight, deg)
        D[tg, h] = rng.integers(int(hub_delay[0] / dt), int(hub_delay[1] / dt) + 1, deg)
        etype[tg, h] = "hub_exc"
    free = (rng.random((N, N)) < p_random) & (etype == "")
    np.fill_diagonal(free, False)
    inh = rng.random((N, N)) < frac_inhibitory
    W[free & ~inh] = rng.uniform(*exc_weight, (free & ~inh).sum())
    W[free & inh] = -rng.uniform(*inh_weight, (free & inh).sum())
    D[free] = rng.integers(int(random_delay[0] / dt), int(random_delay[1] / dt) + 1, free.sum())
    etype[free & ~inh], etype[free & inh] = "exc", "inh"
    base = rng.uniform(*base_rate, N)
    base[hubs] = rng.uniform(*hub_rate, len(hubs))
    # slow shared fluctuation at 10 ms, interpolated to 1 ms
    n10 = n // 10 + 2
    shared10 = shared_sd * _smooth_noise(rng, n10, shared_timescale / 0.01)
    gain = rng.uniform(0.5, 1.5, N)
    drive10 = np.log(base)[None] + shared10[:, None] * gain[None]
    speed = None
    if tuned:
        z = _smooth_noise(rng, n10, 1.0 / 0.01)
        speed = 10.0 * np.logaddexp(0, 1.6 * z - 0.3)
        mu, sd = speed.mean(), speed.std()
        kind = rng.choice(4, N, p=[0.3, 0.25, 0.3, 0.15])
        g = rng.uniform(*tuning_gain, N)
        lag = rng.integers(-10, 21, N)  # 10-ms steps: -100..200 ms
        pref = rng.uniform(np.quantile(speed, 0.2), np.quantile(speed, 0.8), N)
        for j in range(N):
            s = np.roll(speed, lag[j])
            if kind[j] == 0:
                drive10[:, j] += g[j] * (s - mu) / sd
            elif kind[j] == 1:
                drive10[:, j] -= g[j] * (s - mu) / sd
            elif kind[j] == 2:
                b = np.exp(-0.5 * ((s - pref[j]) / 4.0) ** 2)
                drive10[:, j] += 2 * g[j] * (b - b.mean())
    t10 = np.arange(n10) * 0.01
    Dmax = int(D.max()) + 1
    dec_syn, dec_rel = np.exp(-dt / tau_syn), np.exp(-dt / rel_refractory[1])
    a_rel = rel_refractory[0]
    ring = np.zeros((Dmax + 1, N))
    syn, rel = np.zeros(N), np.zeros(N)
    last = np.full(N, -(10**9))
    absr = int(round(abs_refractory / dt))
    tb, ub = [], []
    block = 10000
    for a in range(0, n, block):
        b = min(n, a + block)
        tt = np.arange(a, b) * dt
        drive = np.stack([np.interp(tt, t10, drive10[:, j]) for j in range(N)], 1)
        u = rng.random((b - a, N))
        for k in range(b - a):
            t = a + k
            slot = t % (Dmax + 1)
            syn = syn * dec_syn + ring[slot]
            ring[slot] = 0.0
            rel *= dec_rel
            lam = np.minimum(np.exp(drive[k] + syn + a_rel * rel), max_rate)
            spk = (u[k] < -np.expm1(-lam * dt)) & (t - last > absr)
            if spk.any():
                for i in np.flatnonzero(spk):
                    tg = np.flatnonzero(W[:, i])
                    np.add.at(ring, ((t + D[tg, i]) % (Dmax + 1), tg), W[tg, i])
                last[spk] = t
                rel[spk] += 1.0
                tb.append(np.full(spk.sum(), t))
                ub.append(np.flatnonzero(spk))
    tb = np.concatenate(tb) if tb else np.zeros(0, int)
    ub = np.concatenate(ub) if ub else np.zeros(0, int)
    times = (tb + rng.random(tb.size)) * dt
    st = {int(ids[j]): np.sort(times[ub == j]) for j in range(N)}
    coords = {"target": ids, "source": ids}
    beh = None
    if speed is not None:
        t100 = np.arange(0, duration, 0.01)
        beh = xr.DataArray(
            np.interp(t100, t10, speed).astype(np.float32),
            dims="time",
            coords={"time": t100},
            name="speed",
            attrs={"unit": "cm/s"},
        )
    return RealisticNetwork(
        st,
        xr.DataArray(W, dims=("target", "source"), coords=coords, name="weights"),
        xr.DataArray(D * dt, dims=("target", "source"), coords=coords, name="delays"),
        xr.DataArray(etype.astype(str), dims=("target", "source"), coords=coords, name="edge_type"),
        [int(ids[h]) for h in hubs],
        xr.DataArray(shared10, dims="time", coords={"time": t10}, name="shared"),
        beh,
        float(duration),
    )
