"""Seeding: one ``random_state`` gives reproducible NumPy and torch generators; no global state."""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from contextlib import contextmanager

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


@contextmanager
def seeded_default_generator(seed: int, device: torch.device | str | None = None) -> Iterator[None]:
    """Run a block with torch's default generators seeded by ``seed``, then restore their state.

    The one seeding rule of neuroana: random draws use generators from :func:`make_generators`;
    code that can only draw from torch's default generator (``torch.nn`` weight initialisation,
    dropout) runs inside this block, so the process-wide state is left as it was (no global
    ``torch.manual_seed``). The CPU generator is always seeded; with a CUDA ``device`` that
    device's default generator is seeded (and restored) too.

    Examples
    --------
    >>> import torch
    >>> from neuroana.backend import seeded_default_generator
    >>> before = torch.random.get_rng_state()
    >>> with seeded_default_generator(0):
    ...     a = torch.nn.Linear(2, 2).weight.detach().clone()
    >>> with seeded_default_generator(0):
    ...     b = torch.nn.Linear(2, 2).weight.detach().clone()
    >>> bool(torch.equal(a, b)), bool(torch.equal(before, torch.random.get_rng_state()))
    (True, True)
    """
    dev = torch.device("cpu" if device is None else device)
    cuda = [dev] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.random.default_generator.manual_seed(int(seed))
        for d in cuda:
            index = torch.cuda.current_device() if d.index is None else d.index
            torch.cuda.default_generators[index].manual_seed(int(seed))
        yield
