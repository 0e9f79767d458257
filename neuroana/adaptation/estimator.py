"""``GainAdaptationModel``: the gain-adaptation model fitted to Benucci-layout population tuning data.

A thin estimator over :mod:`.tuning` (the differentiable tuning-curve core); see there for the data
layout. A fitted estimator holds CPU NumPy and xarray state only.
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from neuroana.adaptation.errors import AdaptationInputError
from neuroana.adaptation.tuning import (
    DIMS,
    VARIANTS,
    check_benucci,
    normalize_benucci,
    predict_core,
    priors_for,
    r2_scores,
)
from neuroana.backend import fit_loop, make_generators
from neuroana.dims import ENSEMBLE, NEURON, SESSION

__all__ = ["GainAdaptationModel", "leave_one_session_out"]


class GainAdaptationModel(BaseEstimator):
    """Recurrent gain-adaptation model fitted to Benucci-layout population tuning data.

    Free parameters: ``tuning_width`` (von Mises width, degrees), ``recurrence`` (signed spectral
    radius of a Gaussian ring kernel of width ``kernel_width``) and ``alpha`` (the trade-off weight of
    :class:`~neuroana.adaptation.objectives.EfficientCoding`; ``lam`` is not identifiable from
    normalised curves and stays fixed). The gains in each session and ensemble are **not fitted**:
    they are the optimum of the objective for that ensemble's prior.

    Parameters
    ----------
    variant : {"optimal", "feedforward", "free_gains", "no_adaptation"}
        The model, or a baseline: W = 0 with optimal gains; free per-neuron gains per ensemble (shared
        across sessions) with W and tuning fitted; biased-ensemble gains equal to the uniform ones.
    tuning_width, recurrence, alpha : float
        Starting values.
    kernel_width, baseline, lam : float
        Fixed hyper-parameters (kernel width in degrees, untuned drive relative to amplitude 1,
        activity weight).
    adapter : float
        Adapter orientation in the stimulus coordinate.
    max_iter, tol, n_restarts, random_state, verbose
        Optimiser settings (L-BFGS in float64; restarts jitter the start).

    Examples
    --------
    >>> from neuroana.datasets.adaptation_sim import make_benucci_like
    >>> from neuroana.adaptation import GainAdaptationModel
    >>> data, truth = make_benucci_like(random_state=0, noise=0.01)
    >>> m = GainAdaptationModel(max_iter=15).fit(data)
    >>> abs(m.recurrence_ - truth["recurrence"]) < 0.15
    True
    """

    def __init__(
        self,
        variant: str = "optimal",
        tuning_width: float = 25.0,
        recurrence: float = 0.3,
        alpha: float = 0.5,
        kernel_width: float = 20.0,
        baseline: float = 0.05,
        lam: float = 1.0,
        adapter: float = 0.0,
        max_iter: int = 30,
        tol: float = 1e-10,
        n_restarts: int = 1,
        random_state=None,
        verbose: bool = False,
    ) -> None:
        self.variant = variant
        self.tuning_width = tuning_width
        self.recurrence = recurrence
        self.alpha = alpha
        self.kernel_width = kernel_width
        self.baseline = baseline
        self.lam = lam
        self.adapter = adapter
        self.max_iter = max_iter
        self.tol = tol
        self.n_restarts = n_restarts
        self.random_state = random_state
        self.verbose = verbose

    # ---------------------------------------------------------------- internals
    def _validate(self):
        if self.variant not in VARIANTS:
            raise AdaptationInputError(f"variant={self.variant!r}; expected one of {VARIANTS}")
        if not self.tuning_width > 0:
            raise AdaptationInputError(f"tuning_width={self.tuning_width!r}; expected > 0")
        if not -1 < self.recurrence < 1:
            raise AdaptationInputError(f"recurrence={self.recurrence!r}; expected in (-1, 1)")
        if not 0 < self.alpha < 1:
            raise AdaptationInputError(f"alpha={self.alpha!r}; expected a start in (0, 1)")

    def _kw(self, data):
        return dict(
            pref=data.neuron.values.astype(float),
            stim=data.stimulus.values.astype(float),
            priors=priors_for(data, self.adapter, 180.0),
            variant=self.variant,
            kernel_width=self.kernel_width,
            baseline=self.baseline,
            lam=self.lam,
        )

    def fit(self, data: xr.DataArray, y=None) -> GainAdaptationModel:
        """Fit the free parameters by L-BFGS on the normalised curves of all sessions in ``data``."""
        self._validate()
        data = check_benucci(data)
        kw = self._kw(data)
        target = normalize_benucci(torch.as_tensor(data.values, dtype=torch.float64))
        rng, _ = make_generators(self.random_state)
        n = data.sizes["neuron"]
        best = None
        for restart in range(max(1, int(self.n_restarts))):
            jit = 0.0 if restart == 0 else 1.0
            p = [
                torch.tensor(np.log(self.tuning_width) + 0.3 * jit * rng.standard_normal()),
                torch.tensor(np.arctanh(self.recurrence) + jit * rng.standard_normal()),
                torch.tensor(np.log(self.alpha / (1 - self.alpha)) + jit * rng.standard_normal()),
                torch.zeros(2, n, dtype=torch.float64),
            ]
            p = [t.to(torch.float64).requires_grad_(True) for t in p]
            train = [p[0], p[1]] if self.variant == "feedforward" else p[:2]
            if self.variant in ("optimal", "feedforward", "no_adaptation"):
                train = train + [p[2]]
            if self.variant == "free_gains":
                train = train + [p[3]]
            opt = torch.optim.LBFGS(train, max_iter=20, line_search_fn="strong_wolfe")

            def closure(p=p, opt=opt):
                opt.zero_grad()
                pred, _ = predict_core(*p, **kw)
                loss = ((pred - target) ** 2).mean()
                loss.backward()
                return loss

            def step(_, opt=opt, closure=closure):
                return {"loss": float(opt.step(closure).detach())}

            res = fit_loop(
                step, max_iter=self.max_iter, tol=self.tol, verbose=self.verbose, desc="gain model"
            )
            with torch.no_grad():
                loss = float(((predict_core(*p, **kw)[0] - target) ** 2).mean())
            if best is None or loss < best[0]:
                best = (loss, [t.detach().clone() for t in p], res)
        self.loss_, params, res = best
        # CPU NumPy state only (float64): the fitted estimator pickles without torch tensors
        self._params = [t.numpy() for t in params]
        self.history_ = res.history
        self.n_iter_ = res.n_iter
        self.tuning_width_ = float(np.exp(self._params[0]))
        self.recurrence_ = 0.0 if self.variant == "feedforward" else float(np.tanh(self._params[1]))
        self.alpha_ = float(1.0 / (1.0 + np.exp(-self._params[2])))
        with torch.no_grad():
            _, g = predict_core(*params, **kw)
        self.gains_ = xr.DataArray(
            g.detach().numpy(),
            dims=(SESSION, ENSEMBLE, NEURON),
            coords={
                SESSION: data.session.values,
                ENSEMBLE: data.ensemble.values,
                NEURON: data.neuron.values,
            },
            name="gain",
        )
        return self

    def predict(self, data: xr.DataArray) -> xr.DataArray:
        """Normalised model curves for the sessions (adaptor probabilities) and grids of ``data``."""
        if not hasattr(self, "_params"):
            raise NotFittedError(
                "This GainAdaptationModel instance is not fitted yet; call 'fit' first"
            )
        data = check_benucci(data)
        params = [torch.as_tensor(v, dtype=torch.float64) for v in self._params]
        with torch.no_grad():
            pred, _ = predict_core(*params, **self._kw(data))
        return xr.DataArray(pred.numpy(), dims=DIMS, coords=data.coords, name="response")

    def score(self, data: xr.DataArray, y=None) -> float:
        """R^2 of the normalised biased-ensemble (adapted) curves."""
        return float(r2_scores(self.predict(data), data)["r2_adapted"])


def leave_one_session_out(estimator: GainAdaptationModel, data: xr.DataArray) -> xr.Dataset:
    """Fit on all sessions but one, score on the held-out one; returns per-session held-out R^2.

    Examples
    --------
    >>> from neuroana.datasets.adaptation_sim import make_benucci_like
    >>> from neuroana.adaptation import GainAdaptationModel, leave_one_session_out
    >>> data, _ = make_benucci_like(n_sessions=3, random_state=0)
    >>> cv = leave_one_session_out(GainAdaptationModel(max_iter=3), data)
    >>> cv.r2_adapted.sizes["session"]
    3
    """
    from sklearn.base import clone

    data = check_benucci(data)
    rows = []
    for s in data.session.values:
        train = data.sel(session=data.session != s)
        test = data.sel(session=[s])
        m = clone(estimator).fit(train)
        rows.append(r2_scores(m.predict(test), test))
    return xr.Dataset(
        {k: ("session", [r[k] for r in rows]) for k in ("r2_adapted", "r2_change")},
        coords={"session": data.session.values},
    )
