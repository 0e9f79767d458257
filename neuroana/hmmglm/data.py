"""Spike-count input handling for the HMM-GLM: validation, padding of unequal trials, features."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import xarray as xr

from neuroana.dims import TIME, TRIAL, UNIT, as_dataarray
from neuroana.hmmglm.emissions import history_features
from neuroana.hmmglm.errors import HMMGLMInputError


class SpikeBatch(NamedTuple):
    """Padded spikes ready for the cores.

    ``Y`` (B, T, N) counts, ``X`` (B, T, P) history features with a constant column, ``lengths``
    (B,) int64, ``lgam`` (B, T, N) ``lgamma(Y + 1)``, ``unit`` coordinate values (or None),
    ``trial`` coordinate values (or None).
    """

    Y: torch.Tensor
    X: torch.Tensor
    lengths: torch.Tensor
    lgam: torch.Tensor
    unit: np.ndarray | None
    trial: np.ndarray | None


def _as_dataarray(data, dims, name):
    try:
        return as_dataarray(data, dims, name=name)
    except ValueError as err:
        raise HMMGLMInputError(str(err)) from None


def _trial_arrays(spikes) -> tuple[list[np.ndarray], np.ndarray | None, np.ndarray | None]:
    if isinstance(spikes, (list, tuple)):
        if len(spikes) == 0:
            raise HMMGLMInputError("spikes is an empty list; expected at least one trial")
        out, unit = [], None
        for i, tr in enumerate(spikes):
            da = _as_dataarray(tr, (TIME, UNIT), f"spikes[{i}]")
            if unit is None and UNIT in da.coords:
                unit = np.asarray(da[UNIT].values)
            out.append(np.asarray(da.values))
        return out, unit, None
    da = _as_dataarray(spikes, (TRIAL, TIME, UNIT), "spikes")
    unit = np.asarray(da[UNIT].values) if UNIT in da.coords else None
    trial = np.asarray(da[TRIAL].values) if TRIAL in da.coords else None
    arr = np.asarray(da.values)
    if arr.shape[0] == 0:
        raise HMMGLMInputError(f"spikes of shape {arr.shape} has no trials; expected at least one")
    return [arr[i] for i in range(arr.shape[0])], unit, trial


def prepare_spikes(
    spikes, basis: np.ndarray, device: torch.device, dtype: torch.dtype
) -> SpikeBatch:
    """Validate counts and build the padded batch.

    Raises
    ------
    HMMGLMInputError
        On NaN/inf, negative or non-integer counts, a trial shorter than the history window, trials
        with different numbers of units, or an empty input.
    """
    trials, unit, trial = _trial_arrays(spikes)
    window = basis.shape[1]
    n_units = {tr.shape[1] for tr in trials}
    if len(n_units) != 1:
        raise HMMGLMInputError(f"trials have different numbers of units {sorted(n_units)}")
    for i, tr in enumerate(trials):
        if tr.dtype.kind not in "biuf":
            raise HMMGLMInputError(
                f"spikes trial {i} has dtype {tr.dtype}; expected integer (or integral float) counts"
            )
        a = np.asarray(tr, dtype=float) if tr.dtype.kind != "f" else tr
        if not np.isfinite(a).all():
            raise HMMGLMInputError(f"spikes trial {i} contains NaN or inf; expected finite counts")
        if (a < 0).any():
            raise HMMGLMInputError(
                f"spikes trial {i} has negative counts (min {a.min()}); expected counts >= 0"
            )
        if (a != np.round(a)).any():
            bad = a[a != np.round(a)][0]
            raise HMMGLMInputError(
                f"spikes trial {i} has non-integer count {bad}; expected integer spike counts"
            )
        if a.shape[0] <= window:
            raise HMMGLMInputError(
                f"trial {i} has {a.shape[0]} time bins, not more than the history window of "
                f"{window} bins; expected longer trials (or a shorter history basis)"
            )
    lengths = np.array([tr.shape[0] for tr in trials])
    B, T, N = len(trials), int(lengths.max()), next(iter(n_units))
    if N < 1:
        raise HMMGLMInputError("spikes has no units")
    Y = np.zeros((B, T, N))
    for i, tr in enumerate(trials):
        Y[i, : tr.shape[0]] = tr
    Yt = torch.as_tensor(Y, dtype=dtype, device=device)
    X = history_features(Yt, torch.as_tensor(basis, dtype=dtype, device=device))
    return SpikeBatch(
        Yt, X, torch.as_tensor(lengths, device=device), torch.lgamma(Yt + 1), unit, trial
    )


def padded_dataarray(values: np.ndarray, batch: SpikeBatch, dims, fill, name, extra_coords=None):
    """Wrap a (B, T, ...) result as a DataArray, filling padded bins with ``fill``."""
    values = np.array(values)
    T = values.shape[1]
    mask = np.arange(T)[None, :] >= batch.lengths.cpu().numpy()[:, None]
    values[mask] = fill
    coords = dict(extra_coords or {})
    if batch.trial is not None:
        coords[TRIAL] = batch.trial
    return xr.DataArray(values, dims=dims, coords=coords, name=name)
