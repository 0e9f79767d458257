"""Adaptation protocol: gains optimal for a uniform ensemble, then for a biased one, and the effects."""

from __future__ import annotations

import numpy as np
import xarray as xr

from neuroana.adaptation.errors import AdaptationInputError
from neuroana.adaptation.gains import optimal_gains
from neuroana.adaptation.network import RecurrentGainNetwork, wrapped_difference
from neuroana.adaptation.priors import biased_prior, check_prior, uniform_prior


def preferred_stimulus(R: np.ndarray, stimuli: np.ndarray, period: float | None) -> np.ndarray:
    """Preferred stimulus of each row of ``R`` (neuron, stimulus) as the centroid of ``R - min R``.

    On a ring: circular centroid ``angle(sum_k R_k e^{2 pi i s_k / P}) P / (2 pi)``; on a line the
    weighted mean. Invariant to scaling each row, so feed-forward gains alone cannot move it.
    """
    Rc = R - R.min(axis=1, keepdims=True)
    if period is None:
        return (Rc * stimuli).sum(1) / Rc.sum(1)
    z = (Rc * np.exp(2j * np.pi * stimuli / period)).sum(1)
    return np.angle(z) * period / (2 * np.pi)


def ensemble_covariance(R: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Covariance of the responses over the stimulus ensemble, ``sum_k p_k r_k r_k^T - mu mu^T``."""
    mu = R @ prior
    return (R * prior) @ R.T - np.outer(mu, mu)


def _offdiag_mean_abs(C: np.ndarray) -> float:
    n = C.shape[0]
    return float(np.abs(C[~np.eye(n, dtype=bool)]).mean())


def simulate_adaptation(
    network: RecurrentGainNetwork,
    adapter: float = 0.0,
    adaptor_probability: float = 0.5,
    *,
    prior_width: float | None = None,
    objective="efficient_coding",
    method: str = "newton",
    prior_before: np.ndarray | None = None,
    prior_after: np.ndarray | None = None,
    near: float | None = None,
) -> xr.Dataset:
    """Adapt ``network`` from a uniform to a biased stimulus ensemble and measure the effects.

    "before" gains are optimal for ``prior_before`` (default uniform); "after" gains are optimal for
    ``prior_after`` (default :func:`~neuroana.adaptation.priors.biased_prior` with ``adapter``,
    ``adaptor_probability`` and ``prior_width``). Response statistics (mean activity, covariance,
    correlation) are taken under the biased ensemble for both, so "before" is the unadapted network
    exposed to the new ensemble, as in Benucci et al. 2013.

    Returns
    -------
    xarray.Dataset
        dims ``condition`` (before, after), ``neuron`` (coordinate: preferred stimulus),
        ``neuron_2``, ``stimulus``. Variables: ``gain``, ``tuning``, ``prior``, ``max_response``,
        ``min_response``, ``max_ratio``, ``min_ratio``, ``preferred``, ``pref_shift`` (signed, after -
        before), ``distance_from_adapter`` (signed, preferred before - adapter), ``repulsion``
        (``pref_shift * sign(distance)``: positive = away from the adapter), ``mean_activity``,
        ``homeostasis_cv`` (CV of mean activity across neurons), ``covariance``, ``correlation``,
        ``covariance_uniform`` (before gains, before ensemble), ``mean_abs_correlation``
        (off-diagonal), ``adapter_correlation`` (mean off-diagonal |correlation| among neurons
        preferring stimuli within ``near`` of the adapter, default a sixth of the period or range:
        the stimulus-driven decorrelation) and ``cov_distance`` (``||C - C_uniform|| /
        ||C_uniform||``).

    Examples
    --------
    >>> from neuroana.adaptation import RecurrentGainNetwork
    >>> from neuroana.adaptation.simulate import simulate_adaptation
    >>> ds = simulate_adaptation(RecurrentGainNetwork(n_neurons=12, stimuli=36))
    >>> float(ds.max_ratio.sel(neuron=0.0)) < 1.0
    True
    """
    if not isinstance(network, RecurrentGainNetwork):
        raise AdaptationInputError(
            f"network is {type(network).__name__}; expected RecurrentGainNetwork"
        )
    s = network.stimuli
    k = s.size
    p0 = (
        uniform_prior(k)
        if prior_before is None
        else check_prior(prior_before, k, name="prior_before")
    )
    p1 = (
        biased_prior(s, adapter, adaptor_probability, period=network.period, width=prior_width)
        if prior_after is None
        else check_prior(prior_after, k, name="prior_after")
    )
    g0 = optimal_gains(network, p0, objective, method).gains.values
    g1 = optimal_gains(network, p1, objective, method).gains.values
    R = np.stack([network.steady_state(g0), network.steady_state(g1)])
    pref = np.stack([preferred_stimulus(r, s, network.period) for r in R])
    shift = wrapped_difference(pref[1], pref[0], network.period)
    dist = wrapped_difference(pref[0], adapter, network.period)
    covs = np.stack([ensemble_covariance(r, p1) for r in R])
    cov_u = ensemble_covariance(R[0], p0)
    sd = np.sqrt(np.clip(np.diagonal(covs, axis1=1, axis2=2), 1e-300, None))
    corr = covs / sd[:, :, None] / sd[:, None, :]
    mean_act = R @ p1
    span = network.period if network.period is not None else np.ptp(network.preferred)
    nb = np.abs(dist) <= (span / 6.0 if near is None else near)
    if nb.sum() < 2:
        raise AdaptationInputError(f"near={near!r} selects fewer than 2 neurons around the adapter")
    adapter_corr = [_offdiag_mean_abs(c[np.ix_(nb, nb)]) for c in corr]
    cond = ["before", "after"]
    nd = ("condition", "neuron")
    ds = xr.Dataset(
        {
            "gain": (nd, np.stack([g0, g1])),
            "tuning": (("condition", "neuron", "stimulus"), R),
            "prior": (("condition", "stimulus"), np.stack([p0, p1])),
            "max_response": (nd, R.max(-1)),
            "min_response": (nd, R.min(-1)),
            "max_ratio": ("neuron", R[1].max(-1) / R[0].max(-1)),
            "min_ratio": ("neuron", R[1].min(-1) / R[0].min(-1)),
            "preferred": (nd, pref),
            "pref_shift": ("neuron", shift),
            "distance_from_adapter": ("neuron", dist),
            "repulsion": ("neuron", shift * np.sign(dist)),
            "mean_activity": (nd, mean_act),
            "homeostasis_cv": ("condition", mean_act.std(1) / np.abs(mean_act.mean(1))),
            "covariance": (("condition", "neuron", "neuron_2"), covs),
            "correlation": (("condition", "neuron", "neuron_2"), corr),
            "covariance_uniform": (("neuron", "neuron_2"), cov_u),
            "mean_abs_correlation": ("condition", [_offdiag_mean_abs(c) for c in corr]),
            "adapter_correlation": ("condition", adapter_corr),
            "cov_distance": (
                "condition",
                [np.linalg.norm(c - cov_u) / np.linalg.norm(cov_u) for c in covs],
            ),
        },
        coords={
            "condition": cond,
            "neuron": network.preferred,
            "neuron_2": network.preferred,
            "stimulus": s,
        },
        attrs={
            "adapter": float(adapter),
            "adaptor_probability": float(adaptor_probability),
            "objective": repr(objective),
            "method": method,
            "spectral_radius": network.spectral_radius_,
        },
    )
    return ds
