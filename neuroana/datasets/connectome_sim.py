"""Synthetic dynamic connectomes with known ground truth (tensor level and trace level).

* :func:`make_connectome_tensor`: a planted non-negative CP tensor ``(pair, window, animal)`` whose
  pair factors are block structured (one partition of the ROIs per component), time factors are
  smooth bumps, animal weights are gamma distributed; additive |Gaussian| noise; 10-30% of the
  neurons missing per animal (their pairs are NaN).
* :func:`make_connectome_traces`: calcium traces ``(time, roi, animal)``: successive episodes, each
  with its own partition of the ROIs into communities whose members share a latent event driver;
  events are convolved with an exponential calcium kernel, noise added, neurons dropped per animal.
* :func:`make_calcium_recordings`: the same kind of truth laid out like real multi-animal data:
  raw fluorescence with per-ROI baselines and photobleaching, a slow fluctuation shared by all
  neurons, spikes and calcium dynamics, neuron labels in a random row order per animal with
  meaningless table ids, missing neurons, an animal without one episode's drivers, an epochs table.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import xarray as xr


class ConnectomeTensorSim(NamedTuple):
    """Planted tensor and its truth.

    Attributes
    ----------
    tensor : xarray.DataArray
        ``("pair", "window", "animal")``, NaN for pairs with a missing neuron.
    factors : list of ndarray
        True ``[pair (P, R), window (W, R), animal (A, R)]`` factors.
    communities : xarray.DataArray
        ``("component", "roi")`` planted community labels.
    present : xarray.DataArray
        ``("roi", "animal")`` bool, False where a neuron is missing.
    """

    tensor: xr.DataArray
    factors: list
    communities: xr.DataArray
    present: xr.DataArray


class ConnectomeTraceSim(NamedTuple):
    """Planted traces and their truth.

    Attributes
    ----------
    traces : xarray.DataArray
        ``("time", "roi", "animal")`` calcium traces (NaN for missing neurons), ``time`` in s.
    communities : xarray.DataArray
        ``("episode", "roi")`` planted partition of every episode.
    episodes : xarray.Dataset
        ``start`` and ``stop`` times (s) per ``episode``.
    participation : xarray.DataArray
        ``("episode", "animal")`` coupling strength of the shared drivers.
    present : xarray.DataArray
        ``("roi", "animal")`` bool.
    """

    traces: xr.DataArray
    communities: xr.DataArray
    episodes: xr.Dataset
    participation: xr.DataArray
    present: xr.DataArray


def _balanced_partition(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    labels = np.arange(n) % k
    rng.shuffle(labels)
    return labels


def _missing(rng: np.random.Generator, n_roi: int, n_animal: int, frac) -> np.ndarray:
    present = np.ones((n_roi, n_animal), dtype=bool)
    lo, hi = frac
    for a in range(n_animal):
        n_miss = int(round(rng.uniform(lo, hi) * n_roi))
        present[rng.choice(n_roi, n_miss, replace=False), a] = False
    return present


def make_connectome_tensor(
    n_rois: int = 24,
    n_windows: int = 40,
    n_animals: int = 4,
    n_components: int = 3,
    n_communities: int = 3,
    noise: float = 0.05,
    missing_fraction: tuple[float, float] = (0.1, 0.3),
    random_state: int | None = 0,
) -> ConnectomeTensorSim:
    """Planted dynamic-connectome tensor (see the module docstring).

    ``noise`` is the standard deviation of the additive |Gaussian| noise relative to the standard
    deviation of the noiseless tensor.

    Examples
    --------
    >>> from neuroana.datasets.connectome_sim import make_connectome_tensor
    >>> sim = make_connectome_tensor(n_rois=10, n_windows=12, n_animals=2, random_state=0)
    >>> sim.tensor.dims, sim.tensor.sizes["pair"]
    (('pair', 'window', 'animal'), 45)
    """
    rng = np.random.default_rng(random_state)
    ii, jj = np.triu_indices(n_rois, k=1)
    labels = np.stack(
        [_balanced_partition(rng, n_rois, n_communities) for _ in range(n_components)]
    )
    pair = np.empty((ii.size, n_components))
    for r in range(n_components):
        strength = rng.uniform(0.6, 1.4, n_communities)
        same = labels[r, ii] == labels[r, jj]
        pair[:, r] = np.where(same, strength[labels[r, ii]], 0.03)
    t = np.linspace(0, 1, n_windows)
    centres = (np.arange(n_components) + 0.5) / n_components
    width = 0.6 / n_components
    window = np.exp(-0.5 * ((t[:, None] - centres[None, :]) / width) ** 2)
    animal = rng.gamma(4.0, 0.25, size=(n_animals, n_components))
    clean = np.einsum("ir,jr,kr->ijk", pair, window, animal)
    x = clean + np.abs(rng.normal(0.0, noise * clean.std(), clean.shape))
    present = _missing(rng, n_rois, n_animals, missing_fraction)
    ok = present[ii] & present[jj]  # (P, A)
    x = np.where(ok[:, None, :], x, np.nan)
    tensor = xr.DataArray(
        x,
        dims=("pair", "window", "animal"),
        coords={"roi_i": ("pair", ii), "roi_j": ("pair", jj), "time": ("window", t)},
        name="affinity",
    )
    comm = xr.DataArray(labels, dims=("component", "roi"))
    pres = xr.DataArray(present, dims=("roi", "animal"))
    return ConnectomeTensorSim(tensor, [pair, window, animal], comm, pres)


def make_connectome_traces(
    n_rois: int = 30,
    n_animals: int = 3,
    n_episodes: int = 3,
    n_communities: int = 3,
    episode_duration: float = 120.0,
    fs: float = 4.0,
    tau: float = 1.0,
    event_rate: float = 0.4,
    private_rate: float = 0.05,
    noise: float = 0.15,
    missing_fraction: tuple[float, float] = (0.1, 0.3),
    random_state: int | None = 0,
) -> ConnectomeTraceSim:
    """Calcium traces with planted, episode-specific communities (see the module docstring).

    Each episode has its own balanced partition. Every community has a latent driver: Poisson
    events at ``event_rate`` Hz with gamma amplitudes; each member neuron receives each driver event
    with probability 0.9 (scaled by the animal's participation), plus private events at
    ``private_rate`` Hz. Events are convolved with ``exp(-t / tau)`` and Gaussian noise of s.d.
    ``noise`` (in units of the mean event amplitude) is added.

    Examples
    --------
    >>> from neuroana.datasets.connectome_sim import make_connectome_traces
    >>> sim = make_connectome_traces(n_rois=8, n_animals=2, episode_duration=20.0, random_state=0)
    >>> sim.traces.dims
    ('time', 'roi', 'animal')
    """
    rng = np.random.default_rng(random_state)
    n_ep = int(round(episode_duration * fs))
    n_time = n_ep * n_episodes
    labels = np.stack([_balanced_partition(rng, n_rois, n_communities) for _ in range(n_episodes)])
    participation = rng.uniform(0.7, 1.0, size=(n_episodes, n_animals))
    kern = np.exp(-np.arange(int(np.ceil(6 * tau * fs))) / (tau * fs))
    events = np.zeros((n_time, n_rois, n_animals))
    p_drv, p_priv = event_rate / fs, private_rate / fs
    for e in range(n_episodes):
        sl = slice(e * n_ep, (e + 1) * n_ep)
        for a in range(n_animals):
            for c in range(n_communities):
                drv = (rng.random(n_ep) < p_drv) * rng.gamma(4.0, 0.25, n_ep)
                members = np.flatnonzero(labels[e] == c)
                keep = rng.random((n_ep, members.size)) < 0.9 * participation[e, a]
                events[sl, members, a] += drv[:, None] * keep
    events += (rng.random(events.shape) < p_priv) * rng.gamma(4.0, 0.25, events.shape)
    calcium = np.apply_along_axis(lambda v: np.convolve(v, kern)[:n_time], 0, events)
    traces = calcium + rng.normal(0.0, noise, calcium.shape)
    present = _missing(rng, n_rois, n_animals, missing_fraction)
    traces = np.where(present[None], traces, np.nan)
    time = np.arange(n_time) / fs
    da = xr.DataArray(
        traces,
        dims=("time", "roi", "animal"),
        coords={"time": time, "roi": np.arange(n_rois), "animal": np.arange(n_animals)},
        name="calcium",
    )
    episodes = xr.Dataset(
        {
            "start": ("episode", np.arange(n_episodes) * episode_duration),
            "stop": ("episode", (np.arange(n_episodes) + 1) * episode_duration),
        }
    )
    return ConnectomeTraceSim(
        traces=da,
        communities=xr.DataArray(labels, dims=("episode", "roi")),
        episodes=episodes,
        participation=xr.DataArray(participation, dims=("episode", "animal")),
        present=xr.DataArray(present, dims=("roi", "animal")),
    )


class ConnectomeRecordingSim(NamedTuple):
    """Planted multi-animal calcium recordings laid out like real data, and their truth.

    Attributes
    ----------
    traces : dict of str -> xarray.DataArray
        One ``("time", "roi")`` raw-fluorescence DataArray per animal; ``roi`` holds the neuron
        labels (``"N01"``...) in a random row order per animal, ``roi_id`` random non-contiguous
        table ids that mean nothing across animals; absent neurons are left out.
    epochs : pandas.DataFrame
        ``start_time``, ``stop_time``, ``stimulus`` per episode (as ``read_intervals`` returns).
    communities : xarray.DataArray
        ``("episode", "roi")`` planted partition of every episode (all labels).
    participation : xarray.DataArray
        ``("episode", "animal")`` bool: False where the animal has no shared drivers.
    present : xarray.DataArray
        ``("roi", "animal")`` bool.
    """

    traces: dict
    epochs: object
    communities: xr.DataArray
    participation: xr.DataArray
    present: xr.DataArray


def _smooth_noise(rng, n: int, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter1d

    x = gaussian_filter1d(rng.normal(size=n), max(sigma, 1e-3))
    return (x - x.mean()) / x.std()


def _event_train(rng, n: int, rate: float, decay: float) -> np.ndarray:
    ev = (rng.random(n) < rate) * rng.gamma(2.0, 1.0, n)
    kern = np.exp(-np.arange(int(np.ceil(6 * decay)) + 1) / max(decay, 1e-3))
    x = np.convolve(ev, kern)[:n]
    return (x - x.mean()) / (x.std() + 1e-12)


def make_calcium_recordings(
    n_neurons: int = 40,
    n_animals: int = 3,
    episode_durations: tuple[float, ...] = (400.0, 300.0, 400.0),
    n_communities: tuple[int, ...] = (3, 4, 2),
    fs: float = 3.0,
    loading: tuple[float, float] = (0.25, 0.55),
    global_sd: float = 0.3,
    bleach_fraction: float = 0.2,
    missing_fraction: tuple[float, float] = (0.0, 0.1),
    non_participating: tuple[int, int] | None = (1, 1),
    random_state: int | None = 0,
) -> ConnectomeRecordingSim:
    """Raw-fluorescence recordings of several animals with planted episode communities.

    Per animal, episode ``e`` and community ``c`` a latent driver (smoothed noise plus decaying
    events, drawn per animal: the partition is shared across animals, the time courses are not);
    neuron ``i`` follows its community's driver with a per-neuron loading ``w ~ U(loading)`` and a
    delay of 0-0.5 s, plus private noise and events; a slow fluctuation (s.d. ``global_sd``, 20-s
    smoothing) shared by all neurons of the animal; spikes are Poisson from a softplus rate;
    calcium decays with tau 0.8-1.4 s per animal; ``F = F0 * bleach(t) * (1 + calcium + noise)``
    with ``F0 ~ U(80, 900)`` per ROI and exponential bleaching by ``bleach_fraction`` over the
    recording. ``non_participating=(episode, animal)``: that animal has no shared drivers in that
    episode. Neurons are dropped per animal (``missing_fraction``), rows shuffled, table ids
    random.

    Examples
    --------
    >>> from neuroana.datasets.connectome_sim import make_calcium_recordings
    >>> sim = make_calcium_recordings(n_neurons=12, n_animals=2, episode_durations=(60.0, 60.0),
    ...                               n_communities=(2, 3), random_state=0)
    >>> sorted(sim.traces), sim.traces["animal-0"].dims, list(sim.epochs.columns)
    (['animal-0', 'animal-1'], ('time', 'roi'), ['start_time', 'stop_time', 'stimulus'])
    """
    import pandas as pd

    if len(episode_durations) != len(n_communities):
        raise ValueError(
            f"{len(episode_durations)} episode durations but {len(n_communities)} community counts"
        )
    rng = np.random.default_rng(random_state)
    n_ep = len(episode_durations)
    lengths = [int(round(d * fs)) for d in episode_durations]
    n_time = int(sum(lengths))
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    labels = [f"N{k + 1:02d}" for k in range(n_neurons)]
    parts = np.stack([_balanced_partition(rng, n_neurons, k) for k in n_communities])
    part = np.ones((n_ep, n_animals), dtype=bool)
    if non_participating is not None:
        part[non_participating[0], non_participating[1]] = False
    present = _missing(rng, n_neurons, n_animals, missing_fraction)
    t = np.arange(n_time) / fs
    traces = {}
    for a in range(n_animals):
        drive = np.zeros((n_time, n_neurons))
        for e in range(n_ep):
            sl = slice(bounds[e], bounds[e + 1])
            n = lengths[e]
            drivers = [
                0.6 * _smooth_noise(rng, n, 1.0 * fs)
                + 0.8 * _event_train(rng, n, 0.08 / fs, 0.8 * fs)
                for _ in range(n_communities[e])
            ]
            for i in range(n_neurons):
                priv = 0.6 * _smooth_noise(rng, n, 1.0 * fs) + 0.8 * _event_train(
                    rng, n, 0.06 / fs, 0.8 * fs
                )
                priv /= priv.std()
                if part[e, a]:
                    w = rng.uniform(*loading)
                    x = np.roll(drivers[parts[e, i]], int(rng.integers(0, int(0.5 * fs) + 1)))
                    drive[sl, i] = w * x / x.std() + np.sqrt(1 - w**2) * priv
                else:
                    drive[sl, i] = priv
        drive += global_sd * _smooth_noise(rng, n_time, 20.0 * fs)[:, None]
        rate = 4.0 * np.logaddexp(0.0, 1.6 * drive - 1.0) + 0.5
        spikes = rng.poisson(rate / fs)
        tau = rng.uniform(0.8, 1.4) * fs
        calcium = np.zeros_like(drive)
        decay = np.exp(-1.0 / tau)
        acc = np.zeros(n_neurons)
        for k in range(n_time):
            acc = acc * decay + 0.25 * spikes[k]
            calcium[k] = acc
        f0 = rng.uniform(80.0, 900.0, n_neurons)
        bleach = (1.0 - bleach_fraction) ** (t / t[-1])
        noise = rng.normal(0.0, 0.1, calcium.shape)
        f = f0[None, :] * bleach[:, None] * (1.0 + calcium + noise)
        keep = rng.permutation(np.flatnonzero(present[:, a]))
        ids = np.sort(rng.choice(10 * n_neurons, keep.size, replace=False))
        traces[f"animal-{a}"] = xr.DataArray(
            f[:, keep].astype(np.float32),
            dims=("time", "roi"),
            coords={"time": t, "roi": np.asarray(labels)[keep], "roi_id": ("roi", ids)},
            name="RoiResponseSeries",
            attrs={"unit": "a.u.", "roi_label": "neuron_label"},
        )
    epochs = pd.DataFrame(
        {
            "start_time": bounds[:-1] / fs,
            "stop_time": bounds[1:] / fs,
            "stimulus": [f"episode-{e}" for e in range(n_ep)],
        }
    )
    animals = list(traces)
    return ConnectomeRecordingSim(
        traces=traces,
        epochs=epochs,
        communities=xr.DataArray(parts, dims=("episode", "roi"), coords={"roi": labels}),
        participation=xr.DataArray(part, dims=("episode", "animal"), coords={"animal": animals}),
        present=xr.DataArray(
            present, dims=("roi", "animal"), coords={"roi": labels, "animal": animals}
        ),
    )
