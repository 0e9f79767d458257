"""Synthetic population tuning data in the Benucci, Saleem & Carandini 2013 layout, with known truth."""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from neuroana.backend import make_generators
from neuroana.io.benucci import BENUCCI_ADAPTOR_PROBABILITY

#: 12 distinct neuron groups (preferred orientation, deg) and 20 distinct stimuli (deg, adapter at 0)
BENUCCI_PREFERRED = np.arange(-90.0, 90.0, 15.0)
BENUCCI_STIMULI = np.arange(-90.0, 90.0, 9.0)


def make_benucci_like(
    tuning_width: float = 20.0,
    recurrence: float = 0.6,
    alpha: float = 0.7,
    *,
    kernel_width: float = 20.0,
    baseline: float = 0.05,
    noise: float = 0.02,
    n_sessions: int | None = None,
    adaptor_probability: tuple[float, ...] | None = None,
    random_state=None,
) -> tuple[xr.DataArray, dict]:
    """Population tuning curves before/after adaptation from the gain model with known parameters.

    Each session's curves are the model's normalised curves (see
    :func:`neuroana.adaptation.tuning.predict_core`) times a random positive scale plus a random
    offset (undone by the Benucci normalisation), plus Gaussian noise of s.d. ``noise`` times the
    scale.

    Returns
    -------
    data : xarray.DataArray
        dims ``("session", "neuron", "stimulus", "ensemble")`` with coords ``adaptor_probability``
        (session), ``neuron`` (preferred orientation), ``stimulus`` (orientation, adapter at 0) and
        ``ensemble`` = ``["uniform", "biased"]``.
    truth : dict
        The generating parameters and the noiseless normalised curves (``"clean"``).

    Examples
    --------
    >>> from neuroana.datasets.adaptation_sim import make_benucci_like
    >>> data, truth = make_benucci_like(random_state=0)
    >>> data.dims, data.shape
    (('session', 'neuron', 'stimulus', 'ensemble'), (11, 12, 20, 2))
    """
    from neuroana.adaptation.tuning import DIMS, predict_core, priors_for

    pa = BENUCCI_ADAPTOR_PROBABILITY if adaptor_probability is None else tuple(adaptor_probability)
    if n_sessions is not None:
        pa = tuple(pa[i % len(pa)] for i in range(n_sessions))
    rng, _ = make_generators(random_state)
    S = len(pa)
    coords = {
        "session": np.arange(S),
        "neuron": BENUCCI_PREFERRED,
        "stimulus": BENUCCI_STIMULI,
        "ensemble": ["uniform", "biased"],
        "adaptor_probability": ("session", np.asarray(pa, float)),
    }
    skeleton = xr.DataArray(np.zeros((S, 12, 20, 2)), dims=DIMS, coords=coords)
    with torch.no_grad():
        clean, gains = predict_core(
            torch.tensor(np.log(tuning_width), dtype=torch.float64),
            torch.tensor(np.arctanh(recurrence), dtype=torch.float64),
            torch.tensor(np.log(alpha / (1 - alpha)), dtype=torch.float64),
            None,
            pref=BENUCCI_PREFERRED,
            stim=BENUCCI_STIMULI,
            priors=priors_for(skeleton, 0.0, 180.0),
            variant="optimal",
            kernel_width=kernel_width,
            baseline=baseline,
            lam=1.0,
        )
    clean = clean.numpy()
    scale = rng.uniform(5.0, 20.0, size=(S, 12, 1, 1))
    offset = rng.uniform(0.0, 2.0, size=(S, 12, 1, 1))
    y = scale * (clean + noise * rng.standard_normal(clean.shape)) + offset
    data = xr.DataArray(y, dims=DIMS, coords=coords, name="response")
    truth = {
        "tuning_width": tuning_width,
        "recurrence": recurrence,
        "alpha": alpha,
        "kernel_width": kernel_width,
        "baseline": baseline,
        "clean": clean,
        "gains": gains.numpy(),
    }
    return data, truth
