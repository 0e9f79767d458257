"""A synthetic recording session with known ground truth, for the demo, tests and tutorials.

One call builds everything an NWB session holds, generated from hidden variables that are kept:

- **spikes** from a switching-state coupled Poisson GLM: a sticky Markov chain over ``n_states``
  hidden states; in each bin of ``bin_size`` seconds unit ``n`` fires
  ``Poisson(exp(log_rate[s, n] + sum_m W[s, n, m] * y_m(t-1)) * bin_size)`` spikes, placed
  uniformly inside the bin (never on an edge);
- **calcium traces** with planted communities: time is cut into ``n_episodes`` equal episodes; in
  each, ROIs are partitioned into ``n_communities`` groups that share a sparse latent event driver
  (plus private events), convolved with a double-exponential calcium kernel, scaled by a per-ROI
  baseline and corrupted by Gaussian noise;
- **ROI masks**: non-overlapping Gaussian-weighted elliptical blobs in a ``(y, x)`` image;
- **behaviour**: running speed set by the hidden state (zero during sleep), head direction as a
  random walk, and 2-D position integrated from both inside a square box;
- **epochs**: a ``wake`` block followed by a ``sleep`` block;
- **a planted directed edge**: unit 0 excites unit 1 (weight ``edge_weight`` in every state) and
  unit 1 does not act on unit 0, for connectivity read-outs;
- **stimulus tuning data** (when ``n_tuning_sessions > 0``): population tuning curves before and
  after adaptation from the gain-control model with known parameters
  (:func:`~neuroana.datasets.adaptation_sim.make_benucci_like`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from scipy.signal import lfilter

from neuroana.backend import make_generators
from neuroana.dims import FEATURE, ROI, STATE, TIME, UNIT, X, Y

EPISODE = "episode"


@dataclass(frozen=True)
class SyntheticSession:
    """Data of one synthetic session and the ground truth that generated it.

    Attributes
    ----------
    spike_times : dict
        Unit id -> sorted float64 spike times (s).
    spike_counts : xarray.DataArray
        ``("time", "unit")`` true counts in bins of ``bin_size`` from 0 (bin centres as ``time``).
    states : xarray.DataArray
        ``("time",)`` true hidden state of each spike bin.
    transition : xarray.DataArray
        ``("state", "state_next")`` Markov transition matrix.
    log_rates : xarray.DataArray
        ``("state", "unit")`` log baseline firing rate (log Hz) per state.
    couplings : xarray.DataArray
        ``("state", "target", "source")`` weight of ``source``'s previous-bin count on ``target``.
    fluorescence : xarray.DataArray
        ``("time", "roi")`` raw fluorescence at ``frame_rate`` (``time`` = frame times from 0).
    calcium : xarray.DataArray
        ``("time", "roi")`` noise-free dF/F (the kernel-convolved events).
    events : xarray.DataArray
        ``("time", "roi")`` event amplitudes before convolution.
    baseline_fluorescence : xarray.DataArray
        ``("roi",)`` F0 of each ROI.
    communities : xarray.DataArray
        ``("episode", "roi")`` true community label of each ROI in each episode.
    episodes : pandas.DataFrame
        ``start_time``, ``stop_time`` of each community episode.
    kernel : xarray.DataArray
        ``("time",)`` calcium kernel sampled at ``frame_rate`` (peak 1).
    roi_masks : xarray.DataArray
        ``("roi", "y", "x")`` float weights in [0, 1], disjoint supports.
    behavior : dict
        Series name -> ``("time", "feature")`` DataArray: ``position`` (x, y in cm), ``head_direction``
        (rad in [0, 2 pi)), ``speed`` (cm/s).
    speed_by_state : xarray.DataArray
        ``("state",)`` mean running speed (cm/s) of each hidden state while awake.
    epochs : pandas.DataFrame
        ``start_time``, ``stop_time``, ``tags`` (list of str) of the wake and sleep blocks.
    roi_labels : xarray.DataArray
        ``("roi",)`` a label per ROI (``"N000"``...), written as the ``neuron_label`` column.
    tuning : xarray.DataArray or None
        ``("session", "neuron", "stimulus", "ensemble")`` tuning curves (Benucci layout), or
        ``None`` when ``n_tuning_sessions=0``.
    tuning_truth : dict
        The parameters that generated ``tuning`` (``tuning_width``, ``recurrence``, ``alpha``).
    params : dict
        The arguments of :func:`make_session` that built it.
    """

    spike_times: dict
    spike_counts: xr.DataArray
    states: xr.DataArray
    transition: xr.DataArray
    log_rates: xr.DataArray
    couplings: xr.DataArray
    fluorescence: xr.DataArray
    calcium: xr.DataArray
    events: xr.DataArray
    baseline_fluorescence: xr.DataArray
    communities: xr.DataArray
    episodes: pd.DataFrame
    kernel: xr.DataArray
    roi_masks: xr.DataArray
    behavior: dict
    speed_by_state: xr.DataArray
    epochs: pd.DataFrame
    roi_labels: xr.DataArray | None = None
    tuning: xr.DataArray | None = None
    tuning_truth: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    @property
    def duration(self) -> float:
        """Session length in seconds."""
        return float(self.params["duration"])

    @property
    def n_spikes(self) -> int:
        """Total number of spikes."""
        return int(sum(t.size for t in self.spike_times.values()))


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}={value!r} is not valid; expected an integer >= {minimum}")
    return int(value)


def _check_pos(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name}={value!r} is not valid; expected a positive finite number")
    return v


def _sticky_transition(n_states: int, stay: float) -> np.ndarray:
    if n_states == 1:
        return np.ones((1, 1))
    a = np.full((n_states, n_states), (1 - stay) / (n_states - 1))
    np.fill_diagonal(a, stay)
    return a


def _markov_chain(rng, a: np.ndarray, n: int) -> np.ndarray:
    k = a.shape[0]
    cum = np.cumsum(a, axis=1)
    u = rng.random(n)
    z = np.empty(n, dtype=np.int64)
    z[0] = rng.integers(k)
    for t in range(1, n):
        z[t] = min(int(np.searchsorted(cum[z[t - 1]], u[t], side="right")), k - 1)
    return z


def _simulate_spikes(rng, z, log_rates, w, bin_size, max_rate):
    n_bins, n_units = z.size, log_rates.shape[1]
    counts = np.zeros((n_bins, n_units), dtype=np.int64)
    prev = np.zeros(n_units)
    cap = math.log(max_rate)
    for t in range(n_bins):
        s = z[t]
        eta = np.minimum(log_rates[s] + w[s] @ prev, cap)
        counts[t] = rng.poisson(np.exp(eta) * bin_size)
        prev = counts[t]
    return counts


def _spike_times_from_counts(rng, counts, bin_size):
    times = {}
    for j in range(counts.shape[1]):
        bins = np.repeat(np.arange(counts.shape[0]), counts[:, j])
        # k*dt + u*dt with u in [0.02, 0.98]: strictly inside bin k whatever the rounding
        t = bins * bin_size + rng.uniform(0.02, 0.98, bins.size) * bin_size
        times[j] = np.sort(t)
    return times


def _calcium_kernel(frame_rate, tau_rise, tau_decay):
    t = np.arange(int(math.ceil(6 * tau_decay * frame_rate)) + 1) / frame_rate
    k = np.exp(-t / tau_decay) - np.exp(-t / tau_rise)
    return t, k / k.max()


def _roi_masks(rng, n_rois, shape, radius):
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    masks = np.zeros((n_rois, h, w))
    centres = []
    min_dist = 2 * radius + 2
    for _ in range(20000):
        if len(centres) == n_rois:
            break
        c = rng.uniform([radius + 1, radius + 1], [h - radius - 2, w - radius - 2])
        if all(np.hypot(*(c - o)) >= min_dist for o in centres):
            centres.append(c)
    if len(centres) < n_rois:
        raise ValueError(
            f"image_shape={shape} fits only {len(centres)} ROIs of radius {radius}; expected room "
            f"for n_rois={n_rois} (use a larger image_shape)"
        )
    for i, (cy, cx) in enumerate(centres):
        ry, rx = rng.uniform(0.6 * radius, radius, 2)
        d2 = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
        masks[i] = np.where(d2 <= 1.0, np.exp(-d2), 0.0)
    return masks, np.asarray(centres)


def make_session(
    random_state: int | np.random.Generator | None = 0,
    duration: float = 60.0,
    n_units: int = 16,
    n_rois: int = 24,
    *,
    n_states: int = 3,
    bin_size: float = 0.01,
    mean_dwell: float = 4.0,
    coupling_density: float = 0.2,
    coupling_scale: float = 0.8,
    n_communities: int = 3,
    n_episodes: int = 3,
    frame_rate: float = 20.0,
    driver_rate: float = 0.5,
    private_rate: float = 0.05,
    tau_rise: float = 0.05,
    tau_decay: float = 0.6,
    noise: float = 0.05,
    image_shape: tuple[int, int] = (48, 64),
    roi_radius: float = 3.0,
    behavior_rate: float = 50.0,
    sleep_fraction: float = 0.25,
    edge_weight: float = 2.5,
    n_tuning_sessions: int = 0,
) -> SyntheticSession:
    """Generate a synthetic session (spikes, calcium, masks, behaviour, epochs) with ground truth.

    Parameters
    ----------
    random_state : int, numpy.random.Generator or None
        Seed; the same int gives the same session.
    duration : float
        Length in seconds.
    n_units, n_rois : int
        Number of spiking units and of imaged ROIs.
    n_states : int
        Hidden states of the spiking network.
    bin_size : float
        Time step (s) of the spike simulation; spikes binned at this size from 0 reproduce
        ``spike_counts`` exactly.
    mean_dwell : float
        Mean time (s) spent in a state before switching.
    coupling_density, coupling_scale : float
        Fraction of non-zero couplings per state and their standard deviation (log-rate units).
    n_communities, n_episodes : int
        Planted ROI communities, re-drawn in each of ``n_episodes`` equal episodes.
    frame_rate : float
        Imaging rate (Hz).
    driver_rate, private_rate : float
        Rates (Hz) of shared community events and of private per-ROI events.
    tau_rise, tau_decay : float
        Calcium kernel time constants (s).
    noise : float
        Fluorescence noise standard deviation relative to each ROI's baseline.
    image_shape : (int, int)
        ``(height, width)`` of the imaging plane in pixels.
    roi_radius : float
        Largest ROI half-axis in pixels.
    behavior_rate : float
        Sampling rate (Hz) of the behavioural series.
    sleep_fraction : float
        Fraction of the session, at its end, in the ``sleep`` epoch (in [0, 1)).
    edge_weight : float
        Weight of the planted edge unit 0 -> unit 1 in every state (unit 1 -> unit 0 is 0); needs
        ``n_units >= 2``, ``0`` plants none.
    n_tuning_sessions : int
        Sessions of stimulus tuning data for the adaptation analysis (0: none; drawing them
        imports torch).

    Returns
    -------
    SyntheticSession

    Raises
    ------
    ValueError
        On a non-positive size or rate, too short a duration for one bin, frame and episode each,
        or an image too small for the ROIs.

    Examples
    --------
    >>> from neuroana.datasets import make_session
    >>> s = make_session(random_state=0, duration=10.0, n_units=4, n_rois=6)
    >>> s.spike_counts.dims, s.fluorescence.dims, s.roi_masks.dims
    (('time', 'unit'), ('time', 'roi'), ('roi', 'y', 'x'))
    >>> int(s.spike_counts.sum()) == s.n_spikes
    True
    """
    duration = _check_pos("duration", duration)
    n_units = _check_int("n_units", n_units, 1)
    n_rois = _check_int("n_rois", n_rois, 1)
    n_states = _check_int("n_states", n_states, 1)
    n_communities = _check_int("n_communities", n_communities, 1)
    n_episodes = _check_int("n_episodes", n_episodes, 1)
    n_tuning_sessions = _check_int("n_tuning_sessions", n_tuning_sessions, 0)
    if not math.isfinite(edge_weight):
        raise ValueError(f"edge_weight={edge_weight!r}; expected a finite number")
    for name, v in [
        ("bin_size", bin_size),
        ("mean_dwell", mean_dwell),
        ("coupling_scale", coupling_scale),
        ("frame_rate", frame_rate),
        ("driver_rate", driver_rate),
        ("tau_rise", tau_rise),
        ("tau_decay", tau_decay),
        ("roi_radius", roi_radius),
        ("behavior_rate", behavior_rate),
    ]:
        _check_pos(name, v)
    if not 0 <= coupling_density <= 1:
        raise ValueError(f"coupling_density={coupling_density!r}; expected a value in [0, 1]")
    if private_rate < 0 or noise < 0:
        raise ValueError(
            f"private_rate={private_rate!r}, noise={noise!r}; expected non-negative values"
        )
    if not 0 <= sleep_fraction < 1:
        raise ValueError(f"sleep_fraction={sleep_fraction!r}; expected a value in [0, 1)")
    if tau_rise >= tau_decay:
        raise ValueError(f"tau_rise={tau_rise!r} >= tau_decay={tau_decay!r}; expected rise < decay")
    if n_communities > n_rois:
        raise ValueError(
            f"n_communities={n_communities} > n_rois={n_rois}; expected at most n_rois"
        )
    if len(image_shape) != 2 or min(image_shape) < 2 * roi_radius + 4:
        raise ValueError(f"image_shape={image_shape!r}; expected (height, width) > 2*roi_radius+4")
    n_bins = int(round(duration / bin_size))
    n_frames = int(round(duration * frame_rate))
    n_beh = int(round(duration * behavior_rate))
    if n_bins < 2 or n_frames < 2 * n_episodes or n_beh < 2:
        raise ValueError(
            f"duration={duration} s is too short for bin_size={bin_size}, frame_rate={frame_rate} "
            f"and n_episodes={n_episodes}; expected at least two samples of each per episode"
        )
    params = dict(
        random_state=random_state if not isinstance(random_state, np.random.Generator) else None,
        duration=duration,
        n_units=n_units,
        n_rois=n_rois,
        n_states=n_states,
        bin_size=float(bin_size),
        mean_dwell=float(mean_dwell),
        coupling_density=float(coupling_density),
        coupling_scale=float(coupling_scale),
        n_communities=n_communities,
        n_episodes=n_episodes,
        frame_rate=float(frame_rate),
        driver_rate=float(driver_rate),
        private_rate=float(private_rate),
        tau_rise=float(tau_rise),
        tau_decay=float(tau_decay),
        noise=float(noise),
        image_shape=tuple(int(v) for v in image_shape),
        roi_radius=float(roi_radius),
        behavior_rate=float(behavior_rate),
        sleep_fraction=float(sleep_fraction),
        edge_weight=float(edge_weight),
        n_tuning_sessions=n_tuning_sessions,
    )
    rng, _ = make_generators(random_state)
    # one independent stream per part, so that changing one part (e.g. the couplings, which
    # change how many draws the Poisson sampler takes) leaves the others as they were
    rng_spk, rng_ca, rng_roi, rng_beh, rng_tun = rng.spawn(5)
    bin_size = float(bin_size)
    duration = n_bins * bin_size

    # ---- hidden states and spikes ----------------------------------------------------------
    stay = max(0.0, 1.0 - bin_size / mean_dwell)
    a = _sticky_transition(n_states, stay)
    z = _markov_chain(rng, a, n_bins)
    base = np.log(rng.uniform(3.0, 12.0, n_units))
    log_rates = base + rng.normal(0.0, 0.7, (n_states, n_units))
    w = rng.normal(0.0, coupling_scale, (n_states, n_units, n_units))
    w *= rng.random((n_states, n_units, n_units)) < coupling_density
    for s in range(n_states):
        np.fill_diagonal(w[s], -abs(coupling_scale))  # refractoriness
    if n_units >= 2 and edge_weight:
        w[:, 1, 0], w[:, 0, 1] = edge_weight, 0.0  # the planted directed edge 0 -> 1
    counts = _simulate_spikes(rng_spk, z, log_rates, w, bin_size, max_rate=200.0)
    spike_times = _spike_times_from_counts(rng_spk, counts, bin_size)
    t_bins = (np.arange(n_bins) + 0.5) * bin_size
    units = np.arange(n_units)
    states_da = xr.DataArray(z, dims=(TIME,), coords={TIME: t_bins}, name="state")

    # ---- calcium ---------------------------------------------------------------------------
    t_frames = np.arange(n_frames) / frame_rate
    ep_edges = np.linspace(0, n_frames, n_episodes + 1).round().astype(int)
    communities = np.zeros((n_episodes, n_rois), dtype=np.int64)
    events = np.zeros((n_frames, n_rois))
    p_drv = min(driver_rate / frame_rate, 1.0)
    p_priv = min(private_rate / frame_rate, 1.0)
    for e in range(n_episodes):
        lo, hi = ep_edges[e], ep_edges[e + 1]
        labels = rng_ca.permutation(np.arange(n_rois) % n_communities)
        communities[e] = labels
        drivers = rng_ca.random((hi - lo, n_communities)) < p_drv
        amp = rng_ca.lognormal(0.0, 0.3, (hi - lo, n_rois))
        shared = drivers[:, labels] * (rng_ca.random((hi - lo, n_rois)) < 0.9)
        private = rng_ca.random((hi - lo, n_rois)) < p_priv
        events[lo:hi] = amp * (shared | private)
    t_kernel, kernel = _calcium_kernel(frame_rate, tau_rise, tau_decay)
    calcium = lfilter(kernel, [1.0], events, axis=0)
    f0 = rng_ca.uniform(50.0, 150.0, n_rois)
    fluor = f0 * (1.0 + calcium) + noise * f0 * rng_ca.standard_normal((n_frames, n_rois))
    rois = np.arange(n_rois)

    def _frames(data, name):
        return xr.DataArray(data, dims=(TIME, ROI), coords={TIME: t_frames, ROI: rois}, name=name)

    episodes = pd.DataFrame(
        {
            "start_time": t_frames[ep_edges[:-1]],
            "stop_time": np.r_[t_frames[ep_edges[1:-1]], n_frames / frame_rate],
        }
    )

    # ---- ROI masks ---------------------------------------------------------------------------
    masks, _ = _roi_masks(rng_roi, n_rois, tuple(image_shape), roi_radius)
    h, wd = image_shape
    masks_da = xr.DataArray(
        masks,
        dims=(ROI, Y, X),
        coords={ROI: rois, Y: np.arange(h), X: np.arange(wd)},
        name="roi_masks",
    )

    # ---- epochs and behaviour ------------------------------------------------------------------
    sleep_start = duration * (1.0 - sleep_fraction)
    rows = [(0.0, sleep_start, ["wake"])]
    if sleep_fraction > 0:
        rows.append((sleep_start, duration, ["sleep"]))
    epochs = pd.DataFrame(rows, columns=["start_time", "stop_time", "tags"])
    t_beh = np.arange(n_beh) / behavior_rate
    speed_by_state = np.sort(rng_beh.uniform(2.0, 30.0, n_states))
    state_at = z[np.minimum((t_beh / bin_size).astype(np.int64), n_bins - 1)]
    target = speed_by_state[state_at] * (t_beh < sleep_start)
    alpha = 1.0 - math.exp(-1.0 / (0.5 * behavior_rate))  # 0.5 s low-pass
    speed = lfilter([alpha], [1.0, alpha - 1.0], target + rng_beh.normal(0.0, 1.0, n_beh))
    speed = np.clip(speed, 0.0, None)
    speed[t_beh >= sleep_start] = 0.0
    hd = np.mod(
        np.cumsum(rng_beh.normal(0.0, 0.08, n_beh)) + rng_beh.uniform(0, 2 * np.pi), 2 * np.pi
    )
    box = 100.0
    pos = np.empty((n_beh, 2))
    pos[0] = rng_beh.uniform(20.0, 80.0, 2)
    step = np.column_stack([np.cos(hd), np.sin(hd)]) * (speed / behavior_rate)[:, None]
    for i in range(1, n_beh):
        p = pos[i - 1] + step[i]
        p = np.abs(p)  # reflect at 0
        pos[i] = box - np.abs(box - p)  # reflect at the far wall
    behavior = {
        "position": xr.DataArray(
            pos,
            dims=(TIME, FEATURE),
            coords={TIME: t_beh, FEATURE: ["x", "y"]},
            name="position",
            attrs={"unit": "cm"},
        ),
        "head_direction": xr.DataArray(
            hd[:, None],
            dims=(TIME, FEATURE),
            coords={TIME: t_beh, FEATURE: ["head_direction"]},
            name="head_direction",
            attrs={"unit": "radians"},
        ),
        "speed": xr.DataArray(
            speed[:, None],
            dims=(TIME, FEATURE),
            coords={TIME: t_beh, FEATURE: ["speed"]},
            name="speed",
            attrs={"unit": "cm/s"},
        ),
    }

    # ---- stimulus tuning data -------------------------------------------------------------
    tuning, tuning_truth = None, {}
    tuning_seed = int(rng_tun.integers(2**32))
    if n_tuning_sessions:
        from neuroana.datasets.adaptation_sim import make_benucci_like

        tuning_truth = {"tuning_width": 20.0, "recurrence": 0.6, "alpha": 0.7}
        tuning, _ = make_benucci_like(
            **tuning_truth, noise=0.01, n_sessions=n_tuning_sessions, random_state=tuning_seed
        )
        tuning = tuning.rename("tuning")

    return SyntheticSession(
        spike_times=spike_times,
        spike_counts=xr.DataArray(
            counts,
            dims=(TIME, UNIT),
            coords={TIME: t_bins, UNIT: units},
            name="spike_counts",
            attrs={"bin_size": bin_size, "start": 0.0, "stop": duration},
        ),
        states=states_da,
        transition=xr.DataArray(a, dims=(STATE, "state_next"), name="transition"),
        log_rates=xr.DataArray(
            log_rates, dims=(STATE, UNIT), coords={UNIT: units}, name="log_rates"
        ),
        couplings=xr.DataArray(
            w,
            dims=(STATE, "target", "source"),
            coords={"target": units, "source": units},
            name="couplings",
        ),
        fluorescence=_frames(fluor, "fluorescence"),
        calcium=_frames(calcium, "calcium"),
        events=_frames(events, "events"),
        baseline_fluorescence=xr.DataArray(f0, dims=(ROI,), coords={ROI: rois}, name="f0"),
        communities=xr.DataArray(
            communities, dims=(EPISODE, ROI), coords={ROI: rois}, name="communities"
        ),
        episodes=episodes,
        kernel=xr.DataArray(kernel, dims=(TIME,), coords={TIME: t_kernel}, name="kernel"),
        roi_masks=masks_da,
        behavior=behavior,
        speed_by_state=xr.DataArray(speed_by_state, dims=(STATE,), name="speed_by_state"),
        epochs=epochs,
        roi_labels=xr.DataArray(
            [f"N{r:03d}" for r in rois], dims=(ROI,), coords={ROI: rois}, name="neuron_label"
        ),
        tuning=tuning,
        tuning_truth=tuning_truth,
        params=params,
    )
