"""Seeding: one ``random_state`` gives reproducible NumPy and torch generators."""

from __future__ import annotations

import numbers

import numpy as np
import torch


def make_generators(
    random_state: int | np.random.Generator | None, device: torch.device | str = "cpu"
) -> tuple[np.random.Generator, torch.Generator]:
    """Return a NumPy generator and a torch generator (on ``device``) derived from ``random_state``.

    ``None`` draws fresh entropy; an int gives the same pair every time; a NumPy ``Generator`` is used
    as is and seeds the torch generator from it. No global state is touched.

    Examples
    --------
    >>> from neuroana.backend import make_generators
    >>> rng, gen = make_generators(0)
    >>> a = rng.random(); rng2, _ = make_generators(0); a == rng2.random()
    True
    """
    if random_state is None or isinstance(random_state, numbers.Integral):
        rng = np.random.default_rng(random_state)
    elif isinstance(random_state, np.random.Generator):
        rng = random_state
    else:
        raise ValueError(
            f"random_state={random_state!r} is not valid; expected None, an int or a numpy Generator"
        )
    seed = int(rng.integers(0, 2**62))
    gen = torch.Generator(device=torch.device(device))
    gen.manual_seed(seed)
    return rng, gen
