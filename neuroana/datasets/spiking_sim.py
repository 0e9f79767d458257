"""Spiking simulators with known ground truth for :mod:`neuroana.pretrain`.

One simulator core, :func:`simulate_spikes`: a discrete-time Poisson GLM network (per-unit log-rate
drive, delayed exponential synaptic coupling in ``(target, source)`` orientation, absolute and
relative refractoriness, a rate cap, at most one spike per bin). The public simulators are
configurations of it:

- :func:`simulate_glm_network`: constant base rates and a given weight matrix (one-bin delay);
- :func:`simulate_chain`: the strongly coupled chain A -> B -> C of :func:`simulate_glm_network`;
- :func:`simulate_stimulus_population`: no coupling, units driven by a smooth latent through random
  receptive fields, with a behaviour variable read out from the same latent;
- :func:`simulate_realistic_network`: a network that looks like a recording (hubs, delays,
  refractoriness, a shared slow fluctuation, optional speed tuning).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xarray as xr

#: bins of drive and random numbers drawn at a time
BLOCK = 10000


def simulate_spikes(
    rng: np.random.Generator,
    n_bins: int,
    drive: Callable[[int, int], np.ndarray],
    weights: np.ndarray,
    delays: np.ndarray,
    *,
    dt: float,
    tau_syn: float,
    max_rate: float,
    abs_refractory: float = 0.0,
    rel_refractory: tuple[float, float] = (0.0, 1.0),
) -> tuple[np.ndarray, np.ndarray]:
    """The simulator core: bins and units of the spikes of a Poisson GLM network.

    In bin ``t``::

        log rate_j(t) = drive(t)[j] + sum_i W[j, i] * sum_{s in spikes_i} exp(-(t - s - D[j, i]) dt / tau_syn)
                        + a_rel * sum_{s in spikes_j} exp(-(t - s) dt / tau_rel)

    (a spike of source ``i`` in bin ``s`` reaches target ``j`` in bin ``s + D[j, i]``), capped at
    ``max_rate``; unit ``j`` spikes with probability ``1 - exp(-rate dt)``, never within
    ``abs_refractory`` of its previous spike. Draws one uniform per bin and unit, in blocks of
    :data:`BLOCK` bins (without coupling or refractoriness each block is one vectorised draw).

    Parameters
    ----------
    rng : numpy.random.Generator
    n_bins : int
    drive : callable ``(a, b) -> (b - a, N)``
        The log-rate drive of bins ``a .. b - 1``.
    weights : (N, N) array, ``(target, source)``
    delays : (N, N) int array
        Delay in bins (>= 1) of each non-zero weight.
    dt, tau_syn, max_rate, abs_refractory : float
        Seconds, Hz.
    rel_refractory : (a_rel, tau_rel)

    Returns
    -------
    (bins, units) : int arrays, in time order (units ascending within a bin)

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.datasets.spiking_sim import simulate_spikes
    >>> W = np.array([[0.0, 0.0], [4.0, 0.0]])  # 0 -> 1
    >>> tb, ub = simulate_spikes(np.random.default_rng(0), 20000,
    ...     lambda a, b: np.full((b - a, 2), np.log(5.0)), W, np.ones((2, 2), int),
    ...     dt=0.005, tau_syn=0.01, max_rate=150.0)
    >>> bool((ub == 1).sum() > (ub == 0).sum())  # unit 1 fires more: it is driven by unit 0
    True
    """
    W = np.asarray(weights, dtype=float)
    N = W.shape[0]
    a_rel, tau_rel = rel_refractory
    absr = int(round(abs_refractory / dt))
    tb, ub = [], []
    if not W.any() and absr == 0 and a_rel == 0:  # independent units: vectorised draws
        for a in range(0, n_bins, BLOCK):
            b = min(n_bins, a + BLOCK)
            d = drive(a, b)
            spk = rng.random((b - a, N)) < -np.expm1(-np.minimum(np.exp(d), max_rate) * dt)
            t, u = np.nonzero(spk)
            tb.append(t + a)
            ub.append(u)
        return np.concatenate(tb or [np.zeros(0, int)]), np.concatenate(ub or [np.zeros(0, int)])
    D = np.asarray(delays, dtype=int)
    if (D[W != 0] < 1).any():
        raise ValueError("delays of non-zero weights must be >= 1 bin")
    Dmax = int(D.max()) + 1
    dec_syn, dec_rel = np.exp(-dt / tau_syn), np.exp(-dt / tau_rel)
    ring = np.zeros((Dmax + 1, N))
    syn, rel = np.zeros(N), np.zeros(N)
    last = np.full(N, -(10**9))
    for a in range(0, n_bins, BLOCK):
        b = min(n_bins, a + BLOCK)
        d = drive(a, b)
        u = rng.random((b - a, N))
        for k in range(b - a):
            t = a + k
            slot = t % (Dmax + 1)
            syn = syn * dec_syn + ring[slot]
            ring[slot] = 0.0
            rel *= dec_rel
            lam = np.minimum(np.exp(d[k] + syn + a_rel * rel), max_rate)
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
    return tb, ub


def _spike_times(rng, tb, ub, n_units: int, dt: float) -> dict:
    """``{unit index: sorted times}``, each spike jittered uniformly inside its bin."""
    times = (tb + rng.random(tb.size)) * dt
    return {j: np.sort(times[ub == j]) for j in range(n_units)}


@dataclass(frozen=True)
class SpikingNetwork:
    """A simulated network.

    Attributes
    ----------
    spike_times : dict unit -> sorted spike times (s)
    weights : DataArray (target, source)
        Ground-truth coupling (log-rate units).
    duration, dt : float
    """

    spike_times: dict
    weights: xr.DataArray
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
    random_state: int | np.random.Generator | None = None,
) -> dict:
    """Simulate a Poisson GLM network; return ``{unit: spike times}``.

    ``rate_j(t) = base_j * exp(sum_i W[j, i] * s_i(t))`` where ``s_i`` is source ``i``'s spike train
    filtered by a causal exponential kernel (time constant ``tau``; a spike acts from the next bin
    on), capped at ``max_rate``: :func:`simulate_spikes` with constant drive ``log base`` and
    one-bin delays. At most one spike per bin; spike times are jittered uniformly inside the bin.

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
    log_base = np.log(np.broadcast_to(np.asarray(base_rate, dtype=float), (n,)))
    rng = np.random.default_rng(random_state)
    n_bins = int(round(duration / dt))
    tb, ub = simulate_spikes(
        rng,
        n_bins,
        lambda a, b: np.broadcast_to(log_base, (b - a, n)),
        W,
        np.ones((n, n), dtype=int),
        dt=dt,
        tau_syn=tau,
        max_rate=max_rate,
    )
    return _spike_times(rng, tb, ub, n, dt)


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
    log_base = np.log(base_rate * rng.uniform(0.5, 1.5, n_units))
    no_coupling = np.zeros((n_units, n_units))
    tb, ub = simulate_spikes(
        rng,
        n_bins,
        lambda a, b: log_base + z[a:b] @ rf.T,
        no_coupling,
        no_coupling.astype(int),
        dt=dt,
        tau_syn=1.0,
        max_rate=200.0,
    )
    st = _spike_times(rng, tb, ub, n_units, dt)
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

    def drive(a: int, b: int) -> np.ndarray:  # the 10-ms drive interpolated to 1 ms
        tt = np.arange(a, b) * dt
        return np.stack([np.interp(tt, t10, drive10[:, j]) for j in range(N)], 1)

    tb, ub = simulate_spikes(
        rng,
        n,
        drive,
        W,
        D,
        dt=dt,
        tau_syn=tau_syn,
        max_rate=max_rate,
        abs_refractory=abs_refractory,
        rel_refractory=rel_refractory,
    )
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
