"""Stimulus ensembles (priors over the stimulus grid) for adaptation experiments."""

from __future__ import annotations

import numpy as np

from neuroana.adaptation.errors import AdaptationInputError
from neuroana.adaptation.network import wrapped_difference


def check_prior(prior: np.ndarray, n_stimuli: int, *, name: str = "stimulus_prior") -> np.ndarray:
    """Return ``prior`` as a float array after checking it is a distribution over ``n_stimuli`` bins.

    Raises
    ------
    AdaptationInputError
        When the length differs from the stimulus grid, an entry is negative or not finite, or the
        entries do not sum to one (tolerance 1e-8).

    Examples
    --------
    >>> from neuroana.adaptation.priors import check_prior
    >>> check_prior([0.25, 0.75], 2).tolist()
    [0.25, 0.75]
    """
    p = np.asarray(prior, dtype=float)
    if p.ndim != 1 or p.size != n_stimuli:
        raise AdaptationInputError(
            f"{name} has shape {p.shape}; expected ({n_stimuli},) to match the stimulus grid"
        )
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise AdaptationInputError(f"{name} has negative or non-finite entries; expected p >= 0")
    s = float(p.sum())
    if abs(s - 1.0) > 1e-8:
        raise AdaptationInputError(f"{name} sums to {s!r}; expected a distribution summing to 1")
    return p


def uniform_prior(n_stimuli: int) -> np.ndarray:
    """Uniform distribution over ``n_stimuli`` grid points.

    Examples
    --------
    >>> from neuroana.adaptation.priors import uniform_prior
    >>> float(uniform_prior(4).sum())
    1.0
    """
    return np.full(int(n_stimuli), 1.0 / int(n_stimuli))


def biased_prior(
    stimuli: np.ndarray,
    adapter: float = 0.0,
    adaptor_probability: float = 0.5,
    *,
    period: float | None = 180.0,
    width: float | None = None,
    neighbour_split: tuple[float, float] = (0.5, 0.25),
) -> np.ndarray:
    """A biased ensemble: extra probability near the adapter, the rest uniform.

    With ``width=None`` (the Benucci, Saleem & Carandini 2013 protocol as modelled by Duong's analysis
    code): the adaptor mass ``adaptor_probability`` is split ``neighbour_split[0]`` on the grid point
    nearest ``adapter`` and ``neighbour_split[1]`` on each neighbour, the remaining mass is uniform
    over the other points. With ``width`` (stimulus units): the adaptor mass follows a von Mises
    (ring) or Gaussian (line) bump of that width, for prior-width sweeps.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.adaptation.priors import biased_prior
    >>> p = biased_prior(np.arange(-90, 90, 9.0), 0.0, 0.5)
    >>> round(float(p.sum()), 12), round(float(p[10]), 3)
    (1.0, 0.25)
    """
    s = np.asarray(stimuli, dtype=float)
    k = s.size
    if not 0.0 <= adaptor_probability < 1.0:
        raise AdaptationInputError(
            f"adaptor_probability={adaptor_probability!r}; expected a value in [0, 1)"
        )
    d = wrapped_difference(s, adapter, period)
    if width is None:
        i0 = int(np.argmin(np.abs(d)))
        bump = np.zeros(k)
        bump[i0] += neighbour_split[0]
        for off in (-1, 1):
            j = i0 + off
            if period is not None:
                j %= k
            if 0 <= j < k:
                bump[j] += neighbour_split[1]
        bump /= bump.sum()
        rest = np.where(bump > 0, 0.0, 1.0)
        rest /= rest.sum()
        p = adaptor_probability * bump + (1 - adaptor_probability) * rest
    else:
        if width <= 0:
            raise AdaptationInputError(f"width={width!r}; expected a positive prior width")
        bump = np.exp(-(d**2) / (2 * width**2))
        bump /= bump.sum()
        p = adaptor_probability * bump + (1 - adaptor_probability) / k
    return p / p.sum()
