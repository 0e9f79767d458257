"""Fit the gain-adaptation model to population tuning data in the Benucci et al. 2013 layout.

Data: a DataArray ``response`` with dims ``("session", "neuron", "stimulus", "ensemble")``; coords
``neuron`` (preferred orientation of each neuron group, degrees), ``stimulus`` (orientation relative
to the adapter at 0, degrees), ``ensemble`` = ``["uniform", "biased"]`` and, on ``session``, the
coordinate ``adaptor_probability``. Curves are compared after the Benucci normalisation: per session
and neuron, subtract the minimum of the uniform-ensemble curve and divide by its amplitude (both
ensembles).
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr
from sklearn.base import BaseEstimator

from neuroana.adaptation.errors import AdaptationInputError
from neuroana.adaptation.gains import attach_implicit_gradient, newton_log_gains
from neuroana.adaptation.objectives import EfficientCoding
from neuroana.adaptation.priors import biased_prior, uniform_prior
from neuroana.backend import fit_loop, make_generators

DIMS = ("session", "neuron", "stimulus", "ensemble")
VARIANTS = ("optimal", "feedforward", "free_gains", "no_adaptation")


def check_benucci(data: xr.DataArray) -> xr.DataArray:
    """Validate and transpose Benucci-layout data; returns it with dims :data:`DIMS`."""
    if not isinstance(data, xr.DataArray):
        raise AdaptationInputError(f"data is {type(data).__name__}; expected an xarray.DataArray")
    missing = [d for d in DIMS if d not in data.dims]
    if missing or len(data.dims) != 4:
        raise AdaptationInputError(f"data has dims {data.dims}; expected {DIMS}")
    data = data.transpose(*DIMS)
    ens = [str(e) for e in data.ensemble.values]
    if ens != ["uniform", "biased"]:
        raise AdaptationInputError(f"ensemble coordinate is {ens}; expected ['uniform', 'biased']")
    if "adaptor_probability" not in data.coords:
        raise AdaptationInputError("data lacks the 'adaptor_probability' coordinate on 'session'")
    if not np.all(np.isfinite(data.values)):
        raise AdaptationInputError("data contain non-finite responses")
    return data


def normalize_benucci(R: torch.Tensor) -> torch.Tensor:
    """Benucci normalisation of ``R [..., N, K, 2]`` by the uniform-ensemble min and amplitude."""
    lo = R[..., 0].min(-1, keepdim=True).values
    amp = R[..., 0].max(-1, keepdim=True).values - lo
    return (R - lo[..., None]) / amp[..., None]


def _ring_kernel_torch(pref, kernel_width, period, dtype):
    d = pref[:, None] - pref[None, :]
    d = (d + period / 2) % period - period / 2
    k = torch.as_tensor(np.exp(-(d**2) / (2 * kernel_width**2)), dtype=dtype)
    return k / torch.linalg.eigvalsh(k).abs().max()


def predict_core(
    log_width: torch.Tensor,
    rec_raw: torch.Tensor,
    alpha_raw: torch.Tensor,
    log_gains: torch.Tensor | None,
    *,
    pref: np.ndarray,
    stim: np.ndarray,
    priors: torch.Tensor,
    variant: str,
    kernel_width: float,
    baseline: float,
    lam: float,
    period: float = 180.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised predictions ``[S, N, K, 2]`` and gains ``[S, 2, N]`` (differentiable).

    ``width = exp(log_width)``, ``recurrence = tanh(rec_raw)`` (|.| < 1: stable by construction),
    ``alpha = sigmoid(alpha_raw)``; ``priors [S, 2, K]``.
    """
    dt = priors.dtype
    width = torch.exp(log_width)
    d = torch.as_tensor(
        (stim[None, :] - pref[:, None] + period / 2) % period - period / 2, dtype=dt
    )
    w = 2 * np.pi * width / period
    F = torch.exp((torch.cos(2 * np.pi * d / period) - 1) / w**2) + baseline
    n = pref.size
    eye = torch.eye(n, dtype=dt)
    rec = torch.zeros((), dtype=dt) if variant == "feedforward" else torch.tanh(rec_raw)
    Wm = rec * _ring_kernel_torch(pref, kernel_width, period, dt)
    M = torch.linalg.inv(eye - Wm)
    if variant == "free_gains":
        g = torch.exp(log_gains).expand(priors.shape[0], 2, n)
    else:
        # alpha enters through a duck-typed objective so that gradients reach it
        a_t = torch.sigmoid(alpha_raw)

        class _Obj:
            def loss(self, g, M_, F_, p_):
                return EfficientCoding.loss(_proxy(a_t, lam), g, M_, F_, p_)  # type: ignore[arg-type]

            def grad_hess_log(self, u, M_, F_, p_):
                return EfficientCoding.grad_hess_log(_proxy(a_t, lam), u, M_, F_, p_)

        u, _ = newton_log_gains(_Obj(), M.detach(), F.detach(), priors, tol=1e-12, max_iter=100)
        u = attach_implicit_gradient(_Obj(), u, M, F, priors)
        g = torch.exp(u)
        if variant == "no_adaptation":
            g = g[:, :1].expand(-1, 2, -1)
    R = torch.einsum("nm,sem,mk->snke", M, g, F)
    return normalize_benucci(R), g


class _proxy:
    """Duck-typed EfficientCoding whose ``alpha`` may be a tensor (for gradients in alpha)."""

    centered = False

    def __init__(self, alpha, lam):
        self.alpha = alpha
        self.lam = lam


def _priors_for(data: xr.DataArray, adapter: float, period: float) -> torch.Tensor:
    stim = data.stimulus.values.astype(float)
    pa = np.asarray(data.adaptor_probability.values, float)
    P = np.stack(
        [
            np.stack(
                [uniform_prior(stim.size), biased_prior(stim, adapter, float(a), period=period)]
            )
            for a in pa
        ]
    )
    return torch.as_tensor(P, dtype=torch.float64)


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
    >>> from neuroana.adaptation.model import GainAdaptationModel
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
            priors=_priors_for(data, self.adapter, 180.0),
            variant=self.variant,
            kernel_width=self.kernel_width,
            baseline=self.baseline,
            lam=self.lam,
        )

    def fit(self, data: xr.DataArray) -> GainAdaptationModel:
        """Fit the free parameters by L-BFGS on the normalised curves of all sessions in ``data``."""
        self._validate()
        data = check_benucci(data)
        kw = self._kw(data)
        y = normalize_benucci(torch.as_tensor(data.values, dtype=torch.float64))
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
                loss = ((pred - y) ** 2).mean()
                loss.backward()
                return loss

            def step(_, opt=opt, closure=closure):
                return {"loss": float(opt.step(closure).detach())}

            res = fit_loop(
                step, max_iter=self.max_iter, tol=self.tol, verbose=self.verbose, desc="gain model"
            )
            with torch.no_grad():
                loss = float(((predict_core(*p, **kw)[0] - y) ** 2).mean())
            if best is None or loss < best[0]:
                best = (loss, [t.detach().clone() for t in p], res)
        self.loss_, self._params, res = best
        self.history_ = res.history
        self.n_iter_ = res.n_iter
        self.tuning_width_ = float(torch.exp(self._params[0]))
        self.recurrence_ = (
            0.0 if self.variant == "feedforward" else float(torch.tanh(self._params[1]))
        )
        self.alpha_ = float(torch.sigmoid(self._params[2]))
        _, g = predict_core(*self._params, **kw)
        self.gains_ = xr.DataArray(
            g.detach().numpy(),
            dims=("session", "ensemble", "neuron"),
            coords={
                "session": data.session.values,
                "ensemble": data.ensemble.values,
                "neuron": data.neuron.values,
            },
            name="gain",
        )
        return self

    def predict(self, data: xr.DataArray) -> xr.DataArray:
        """Normalised model curves for the sessions (adaptor probabilities) and grids of ``data``."""
        if not hasattr(self, "_params"):
            raise AdaptationInputError("this GainAdaptationModel is not fitted yet; call fit first")
        data = check_benucci(data)
        with torch.no_grad():
            pred, _ = predict_core(*self._params, **self._kw(data))
        return xr.DataArray(pred.numpy(), dims=DIMS, coords=data.coords, name="response")

    def score(self, data: xr.DataArray) -> float:
        """R^2 of the normalised biased-ensemble (adapted) curves."""
        return float(r2_scores(self.predict(data), data)["r2_adapted"])


def r2_scores(pred: xr.DataArray, data: xr.DataArray) -> dict[str, float]:
    """R^2 of adapted curves and of the adaptation change, both after the Benucci normalisation."""
    y = normalize_benucci(torch.as_tensor(check_benucci(data).values)).numpy()
    yh = pred.transpose(*DIMS).values

    def r2(a, b):
        return float(1 - ((a - b) ** 2).sum() / ((a - a.mean()) ** 2).sum())

    return {
        "r2_adapted": r2(y[..., 1], yh[..., 1]),
        "r2_change": r2(y[..., 1] - y[..., 0], yh[..., 1] - yh[..., 0]),
    }


def leave_one_session_out(estimator: GainAdaptationModel, data: xr.DataArray) -> xr.Dataset:
    """Fit on all sessions but one, score on the held-out one; returns per-session held-out R^2.

    Examples
    --------
    >>> from neuroana.datasets.adaptation_sim import make_benucci_like
    >>> from neuroana.adaptation.model import GainAdaptationModel, leave_one_session_out
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
