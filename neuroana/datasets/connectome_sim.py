"""Synthetic dynamic connectomes with known ground truth (tensor level and trace level).

* :func:`make_connectome_tensor`: a planted non-negative CP tensor ``(pair, window, animal)`` whose
  pair factors are block structured (one partition of the ROIs per component), time factors are
  smooth bumps, animal weights are gamma distributed; additive |Gaussian| noise; 10-30% of the
  neurons missing per animal (their pairs are NaN).
* :func:`make_connectome_traces`: calcium traces ``(time, roi, animal)``: successive episodes, each
  with its own partition of the ROIs into communities whose members share a latent event driver;
  events are convolved with an exponential calcium kernel, noise added, neurons dropped per animal.
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
