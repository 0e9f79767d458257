"""Demo section for ``neuroana demo``: recover known model parameters from synthetic Benucci data."""

from __future__ import annotations

import numpy as np


def demo_section(rng_seed: int = 0, quick: bool = False) -> dict:
    """Fit :class:`~neuroana.adaptation.GainAdaptationModel` to synthetic Benucci-layout data
    with known parameters and report recovered vs true values (a few seconds).

    Examples
    --------
    >>> from neuroana.adaptation.demo import demo_section
    >>> out = demo_section(quick=True)
    >>> out["abs_error"]["tuning_width"] < 3.0
    True
    """
    from neuroana.adaptation import GainAdaptationModel
    from neuroana.datasets.adaptation_sim import make_benucci_like

    truth = {"tuning_width": 20.0, "recurrence": 0.6, "alpha": 0.7}
    data, _ = make_benucci_like(
        **truth, noise=0.01, n_sessions=4 if quick else 11, random_state=rng_seed
    )
    model = GainAdaptationModel(max_iter=4 if quick else 15, random_state=rng_seed).fit(data)
    got = {
        "tuning_width": model.tuning_width_,
        "recurrence": model.recurrence_,
        "alpha": model.alpha_,
    }
    return {
        "section": "adaptation",
        "true": truth,
        "recovered": got,
        "abs_error": {k: float(abs(got[k] - truth[k])) for k in truth},
        "r2_adapted": float(model.score(data)),
        "loss": float(model.loss_),
        "ok": bool(np.isfinite(model.loss_)),
    }
