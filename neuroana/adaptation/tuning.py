"""Tuning-curve core of the gain-adaptation model, as pure functions on torch tensors.

Data: a DataArray ``response`` with dims ``("session", "neuron", "stimulus", "ensemble")``; coords
``neuron`` (preferred orientation of each neuron group, degrees), ``stimulus`` (orientation relative
to the adapter at 0, degrees), ``ensemble`` = ``["uniform", "biased"]`` and, on ``session``, the
coordinate ``adaptor_probability``. Curves are compared after the Benucci normalisation: per session
and neuron, subtract the minimum of the uniform-ensemble curve and divide by its amplitude (both
ensembles). The estimator over this core is :class:`~neuroana.adaptation.GainAdaptationModel`.
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from neuroana.adaptation.errors import AdaptationInputError
from neuroana.adaptation.gains import attach_implicit_gradient, newton_log_gains
from neuroana.adaptation.objectives import EfficientCoding
from neuroana.adaptation.priors import biased_prior, uniform_prior
from neuroana.dims import ENSEMBLE, NEURON, SESSION, STIMULUS

__all__ = [
    "DIMS",
    "VARIANTS",
    "check_benucci",
    "normalize_benucci",
    "predict_core",
    "priors_for",
    "r2_scores",
]

DIMS = (SESSION, NEURON, STIMULUS, ENSEMBLE)
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
    if data.dtype.kind not in "iuf":
        raise AdaptationInputError(f"data has dtype {data.dtype}; expected real-valued responses")
    if data.sizes["session"] == 0:
        raise AdaptationInputError("data has no sessions; expected at least one")
    if data.sizes["neuron"] < 2 or data.sizes["stimulus"] < 3:
        raise AdaptationInputError(
            f"data has {data.sizes['neuron']} neuron group(s) and {data.sizes['stimulus']} "
            "stimuli; expected at least 2 neuron groups and 3 stimuli (tuning curves)"
        )
    if not np.all(np.isfinite(data.values)):
        raise AdaptationInputError("data contain non-finite responses")
    uniform = data.isel(ensemble=0)
    flat = (uniform.max("stimulus") - uniform.min("stimulus")) <= 0
    if bool(flat.any()):
        s, n = (int(v[0]) for v in np.nonzero(flat.values))
        raise AdaptationInputError(
            f"the uniform-ensemble curve of session {data.session.values[s]!r}, neuron "
            f"{data.neuron.values[n]!r} is flat; the Benucci normalisation divides by its amplitude"
        )
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


def priors_for(data: xr.DataArray, adapter: float, period: float) -> torch.Tensor:
    """Stimulus priors ``[session, 2, stimulus]`` (uniform, biased at ``adapter``) of ``data``."""
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
