"""Pairwise affinities between calcium traces per time window -> a ``(pair, window, animal)`` tensor.

Before either affinity, every trace is **detrended** (``detrend`` seconds, default 10 s): the
Gaussian-smoothed trace (sigma ``detrend``) is subtracted. This removes per-ROI baselines,
photobleaching and slow fluctuations shared by all neurons (which otherwise add the same positive
correlation to every pair of a window and hide the communities), and it makes the affinity the
same on raw fluorescence and on dF/F: within one window a Pearson correlation does not change when
a trace is scaled or shifted, and what remains of a slowly varying baseline ``F0(t)`` after the
high-pass is a gain that is constant on the scale of a window. Set ``detrend=0`` to switch it off.

Two affinities, both vectorised over pairs in torch and computed in chunks of pairs:

``"differential"``
    Our reconstruction of the paper's *differential affinity*. The paper's exact formula could not be
    read (its methods section and the notebook holding the affinity code were not reachable; see
    ``../shared/research/dynamic_connectome.md``), so this is a documented choice, not a copy.
    Each trace is smoothed (Gaussian, ``smooth`` samples) and differentiated; the derivative is
    divided by its robust scale (MAD over the whole recording), giving ``z_i(t)``. A saturating
    non-linearity with the **explicit kernel scale** ``scale`` (robust-z units) maps it to a soft
    rise/fall indicator ``phi_i(t) = tanh(z_i(t) / scale)``: changes much smaller than ``scale`` count
    in proportion, changes much larger count as one "rise" or "fall", so one huge transient cannot
    dominate a window. The window affinity is the Pearson correlation of ``phi_i`` and ``phi_j``
    within the window, clipped at 0: ``A_ij(w) = max(0, corr_w(phi_i, phi_j))``. Because it is
    centred within the window, two independent neurons have expected affinity 0 (there is **no
    baseline** for unrelated pairs, unlike an un-centred kernel average), and neurons that rise and
    fall together have affinity near 1 whatever their amplitudes or slow baselines.
``"correlation"`` (the default of :class:`~neuroana.connectome.DynamicConnectome`)
    Pearson correlation within each window, negative values clipped to 0 (NTF needs a non-negative
    tensor).

After either affinity, ``baseline="mean"`` (the default of
:class:`~neuroana.connectome.DynamicConnectome`) subtracts from every ``(window, animal)`` slice its
mean over the observed pairs and clips at 0 again. A clipped correlation of two *independent*
neurons is not 0 but about 0.4 noise standard deviations, and with 30-s windows of calcium traces
at a few Hz that floor is as large as the community signal (measured on
``../shared/cases/connectome_multi_animal``: 0.10 between communities vs 0.17 within). Left in,
the floor differs between animals and windows, and the factorisation spends components on it
(animal-specific "background" components that mix episodes, so restarts disagree about the rank);
removed, the slices keep only the pairs above their window's level, and restarts agree on the
episode components.

When the differential affinity helps: when single large transients (artefacts, bursts of one
neuron) dominate a window's variance, the Pearson correlation of the traces is pulled towards 0
for every pair with that neuron, while the saturating ``tanh`` of the differential affinity counts
the transient as one rise and keeps the shared rises and falls of coupled neurons
(``tests/connectome/test_affinity.py`` shows it). When neurons share slow, graded drive (calcium
indicators with long decays sampled at a few Hz), the derivative throws much of the shared signal
away and the correlation affinity separates communities better.

Neurons missing in an animal (all-NaN traces) give NaN affinities: a mask, never zeros.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import xarray as xr
from scipy.ndimage import gaussian_filter1d

from neuroana.backend import resolve_device
from neuroana.errors import ConnectomeInputError


def _require_numeric(dtype: np.dtype, what: str) -> None:
    if not (np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)):
        raise ConnectomeInputError(f"{what} have dtype {dtype}; expected numeric traces")


def stack_animals(traces) -> xr.DataArray:
    """Return traces as one ``("time", "roi", "animal")`` DataArray (NaN where a neuron is absent).

    Accepts a ``("time", "roi")`` DataArray (one animal), a ``("time", "roi", "animal")`` DataArray,
    or a list / dict of ``("time", "roi")`` DataArrays with the same time axis (ROIs are aligned by
    their ``roi`` coordinate; a ROI missing in an animal becomes all-NaN there). A plain 2-d or 3-d
    array is read in the order ``(time, roi[, animal])``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neuroana.connectome.affinity import stack_animals
    >>> a = xr.DataArray(np.ones((5, 2)), dims=("time", "roi"), coords={"roi": ["A", "B"]})
    >>> b = xr.DataArray(np.ones((5, 1)), dims=("time", "roi"), coords={"roi": ["B"]})
    >>> stack_animals([a, b]).sel(roi="A").isnull().values.tolist()
    [[False, True], [False, True], [False, True], [False, True], [False, True]]
    """
    if isinstance(traces, Mapping):
        names, items = list(traces.keys()), list(traces.values())
    elif isinstance(traces, Sequence) and not isinstance(traces, str | bytes):
        names, items = list(range(len(traces))), list(traces)
    else:
        if not isinstance(traces, xr.DataArray):
            arr = np.asarray(traces)
            _require_numeric(arr.dtype, "traces")
            arr = arr.astype(float)
            dims = ("time", "roi", "animal")[: arr.ndim]
            if arr.ndim not in (2, 3):
                raise ConnectomeInputError(
                    f"traces have shape {arr.shape}; expected (time, roi) or (time, roi, animal)"
                )
            traces = xr.DataArray(arr, dims=dims)
        _require_numeric(traces.dtype, "traces")
        if set(traces.dims) == {"time", "roi"}:
            return traces.transpose("time", "roi").expand_dims(animal=[0], axis=2).astype(float)
        if set(traces.dims) == {"time", "roi", "animal"}:
            return traces.transpose("time", "roi", "animal").astype(float)
        raise ConnectomeInputError(
            f"traces have dims {tuple(traces.dims)}; expected ('time', 'roi') or "
            "('time', 'roi', 'animal')"
        )
    if not items:
        raise ConnectomeInputError("traces: got no animals; expected at least one")
    arrays = []
    for name, t in zip(names, items, strict=True):
        if not isinstance(t, xr.DataArray) or set(t.dims) != {"time", "roi"}:
            raise ConnectomeInputError(
                f"animal {name!r}: expected a ('time', 'roi') DataArray, got {type(t).__name__}"
                + (f" with dims {tuple(t.dims)}" if isinstance(t, xr.DataArray) else "")
            )
        t = t.transpose("time", "roi")
        if "roi" not in t.coords:
            t = t.assign_coords(roi=np.arange(t.sizes["roi"]))
        labels = t["roi"].values.tolist()
        if len(set(labels)) != len(labels):
            dup = sorted({str(r) for r in labels if labels.count(r) > 1})[:5]
            raise ConnectomeInputError(
                f"animal {name!r}: roi label(s) {dup} occur more than once; expected one trace per "
                "neuron label within an animal"
            )
        _require_numeric(t.dtype, f"animal {name!r}")
        arrays.append(t.astype(float))
    if len(arrays) > 1:
        sets = [set(a["roi"].values.tolist()) for a in arrays]
        for k, (name, own) in enumerate(zip(names, sets, strict=True)):
            others = set().union(*(o for j, o in enumerate(sets) if j != k))
            if not own & others:
                raise ConnectomeInputError(
                    f"animal {name!r} shares no roi label with the other animals (its labels: "
                    f"{sorted(map(str, own))[:5]}...); expected neuron identities common across "
                    "animals (read the traces with roi_label= the identity column)"
                )
    n_time = {a.sizes["time"] for a in arrays}
    if len(n_time) != 1:
        raise ConnectomeInputError(
            f"animals have different numbers of time points {sorted(n_time)}; expected one time axis"
        )
    if all("time" in a.coords for a in arrays) and arrays[0]["time"].dtype.kind in "iuf":
        t0 = arrays[0]["time"].values.astype(float)
        tol = 0.5 * float(np.median(np.diff(t0))) if t0.size > 1 else 0.0
        for name, a in zip(names[1:], arrays[1:], strict=True):
            dt = np.abs(a["time"].values.astype(float) - t0)
            if dt.max() > tol:
                raise ConnectomeInputError(
                    f"animal {name!r} has time stamps up to {dt.max():.4g} s away from those of "
                    f"animal {names[0]!r}; expected one shared time axis (resample or align first)"
                )
    rois = list(dict.fromkeys(r for a in arrays for r in a["roi"].values.tolist()))
    try:  # a fixed order, whatever the animals' row orders
        rois = sorted(rois)
    except TypeError:
        pass
    out = np.full((arrays[0].sizes["time"], len(rois), len(arrays)), np.nan)
    index = {r: k for k, r in enumerate(rois)}
    for a_idx, a in enumerate(arrays):
        cols = [index[r] for r in a["roi"].values.tolist()]
        out[:, cols, a_idx] = a.values
    coords = {"roi": rois, "animal": names}
    if "time" in arrays[0].coords:
        coords["time"] = arrays[0]["time"].values
    return xr.DataArray(out, dims=("time", "roi", "animal"), coords=coords)


def _validate_traces(x: np.ndarray, rois) -> np.ndarray:
    """Return the (roi, animal) 'present' mask; raise on partial NaNs and constant traces."""
    if x.shape[0] < 2:
        raise ConnectomeInputError(
            f"traces have {x.shape[0]} time sample(s); expected a recording of several windows"
        )
    nan = np.isnan(x)
    present = ~nan.all(axis=0)
    partial = nan.any(axis=0) & present
    if partial.any():
        r, a = np.argwhere(partial)[0]
        raise ConnectomeInputError(
            f"trace of roi {rois[r]!r} (animal index {a}) has {int(nan[:, r, a].sum())} NaN samples; "
            "expected finite traces (a neuron absent in an animal must be NaN for the whole "
            "recording; interpolate or drop short gaps first)"
        )
    if not np.isfinite(x[:, present]).all():
        raise ConnectomeInputError("traces contain infinite values; expected finite numbers")
    std = np.where(present, np.nanstd(np.where(nan, 0.0, x), axis=0), 1.0)
    const = present & (std <= 1e-12 * np.maximum(1.0, np.nanmax(np.abs(x))))
    if const.any():
        r, a = np.argwhere(const)[0]
        raise ConnectomeInputError(
            f"trace of roi {rois[r]!r} (animal index {a}) is constant; an affinity needs a varying "
            "trace (drop the ROI or mark it absent with NaN)"
        )
    return present


def _window_starts(n_time: int, window: int, step: int) -> np.ndarray:
    if window < 2:
        raise ConnectomeInputError(f"window={window} samples; expected at least 2")
    if step < 1:
        raise ConnectomeInputError(f"step={step} samples; expected at least 1")
    if window > n_time:
        raise ConnectomeInputError(
            f"window={window} samples is longer than the recording ({n_time} samples)"
        )
    return np.arange(0, n_time - window + 1, step)


def _smooth_derivative(x: torch.Tensor, smooth: float) -> torch.Tensor:
    """Gaussian smoothing (sigma ``smooth`` samples) then central differences; x: (T, N)."""
    if smooth > 0:
        half = int(np.ceil(3 * smooth))
        t = torch.arange(-half, half + 1, dtype=x.dtype, device=x.device)
        k = torch.exp(-0.5 * (t / smooth) ** 2)
        k = (k / k.sum()).view(1, 1, -1)
        xp = torch.nn.functional.pad(x.T.unsqueeze(1), (half, half), mode="replicate")
        x = torch.nn.functional.conv1d(xp, k).squeeze(1).T
    d = torch.empty_like(x)
    d[1:-1] = 0.5 * (x[2:] - x[:-2])
    d[0] = x[1] - x[0]
    d[-1] = x[-1] - x[-2]
    return d


def _window_unit_features(feat: torch.Tensor, starts: np.ndarray, window: int) -> torch.Tensor:
    """Centre and unit-normalise every neuron's feature within every window: (W, L, N).

    A neuron that is flat within a window gets an all-zero column (its affinities there are 0).
    """
    idx = torch.as_tensor(starts, device=feat.device).view(-1, 1) + torch.arange(
        window, device=feat.device
    )
    z = feat[idx]  # (W, L, N)
    z = z - z.mean(1, keepdim=True)
    norm = torch.sqrt((z * z).sum(1, keepdim=True))
    return torch.where(norm > 1e-12, z / norm.clamp_min(1e-30), torch.zeros_like(z))


def _pair_values(z: torch.Tensor, ii: torch.Tensor, jj: torch.Tensor) -> torch.Tensor:
    """Clipped Pearson correlation of the pairs (ii, jj) in every window: (P_chunk, W)."""
    return (z[:, :, ii] * z[:, :, jj]).sum(1).clamp_min(0.0).T


def compute_affinity(
    traces,
    *,
    window: float,
    step: float | None = None,
    method: str = "differential",
    scale: float = 2.0,
    smooth: float = 1.0,
    detrend: float = 10.0,
    baseline: str = "none",
    fs: float | None = None,
    chunk_pairs: int = 4096,
    device: str = "auto",
) -> xr.DataArray:
    """Pairwise affinities per time window for one or more animals.

    Parameters
    ----------
    traces : DataArray, array or list/dict of DataArrays
        ``("time", "roi")`` or ``("time", "roi", "animal")``; see :func:`stack_animals`. A neuron
        absent in an animal is all-NaN there.
    window, step : float
        Window length and hop, in seconds when ``fs`` (or a numeric ``time`` coordinate) gives the
        sampling rate, else in samples. ``step`` defaults to ``window / 2``.
    method : {"differential", "correlation"}
        See the module docstring.
    scale : float
        Kernel scale of the differential affinity: the derivative change (in robust standard
        deviations of the neuron's derivative) at which ``tanh`` starts to saturate.
    smooth : float
        Gaussian smoothing (samples) before differentiating (differential only; 0 disables).
    baseline : {"none", "mean"}
        ``"mean"``: subtract each ``(window, animal)`` slice's mean over observed pairs, clip at 0
        (see the module docstring).
    detrend : float
        High-pass before the affinity: the trace smoothed by a Gaussian of this s.d. (seconds with
        a sampling rate, else samples) is subtracted (see the module docstring; 0 disables).
    fs : float, optional
        Sampling rate in Hz; inferred from the ``time`` coordinate when omitted.
    chunk_pairs : int
        Pairs computed at once (bounds the temporary at ``chunk_pairs * window * n_windows``
        floats, on top of the ``window * n_windows * n_roi`` normalised features).
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.

    Returns
    -------
    xarray.DataArray
        ``("pair", "window", "animal")`` with coords ``roi_i``, ``roi_j`` (on ``pair``),
        ``window_start``, ``window_stop`` and ``time`` (window centre, on ``window``). NaN where a
        neuron of the pair is absent in that animal.

    Raises
    ------
    ConnectomeInputError
        NaN samples inside a trace, constant traces, a window longer than the recording, an unknown
        method, a non-positive scale.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neuroana.connectome import compute_affinity
    >>> rng = np.random.default_rng(0)
    >>> x = xr.DataArray(rng.normal(size=(200, 4)), dims=("time", "roi"),
    ...                  coords={"time": np.arange(200) / 4.0})
    >>> a = compute_affinity(x, window=10.0, method="correlation", device="cpu")
    >>> a.dims, a.sizes["pair"]
    (('pair', 'window', 'animal'), 6)
    """
    if method not in ("differential", "correlation"):
        raise ConnectomeInputError(f"method={method!r}; expected 'differential' or 'correlation'")
    if not np.isfinite(scale) or scale <= 0:
        raise ConnectomeInputError(f"scale={scale!r}; expected a positive kernel scale")
    if baseline not in ("none", "mean"):
        raise ConnectomeInputError(f"baseline={baseline!r}; expected 'none' or 'mean'")
    if not np.isfinite(detrend) or detrend < 0:
        raise ConnectomeInputError(f"detrend={detrend!r}; expected a time scale >= 0")
    da = stack_animals(traces)
    if fs is None and "time" in da.coords and np.issubdtype(da["time"].dtype, np.number):
        dt = np.diff(da["time"].values.astype(float))
        if dt.size and np.all(dt > 0):
            fs = 1.0 / float(np.median(dt))
    factor = fs if fs is not None else 1.0
    win = int(round(window * factor))
    hop = int(round((step if step is not None else window / 2) * factor))
    x = da.values
    rois = da["roi"].values if "roi" in da.coords else np.arange(da.sizes["roi"])
    present = _validate_traces(x, list(rois))
    n_time, n_roi, n_animal = x.shape
    if n_roi < 2:
        raise ConnectomeInputError(f"traces have {n_roi} ROI; expected at least 2")
    starts = _window_starts(n_time, win, hop)
    dev = resolve_device(device)
    ii, jj = np.triu_indices(n_roi, k=1)
    out = np.full((ii.size, starts.size, n_animal), np.nan)
    for a in range(n_animal):
        xa = np.nan_to_num(x[:, :, a])
        if detrend > 0:
            xa = xa - gaussian_filter1d(xa, detrend * factor, axis=0, mode="nearest")
        xa = torch.as_tensor(xa, dtype=torch.float32, device=dev)
        if method == "differential":
            d = _smooth_derivative(xa, smooth)
            mad = (d - d.median(0).values).abs().median(0).values / 0.6745
            fallback = d.std(0).clamp_min(1e-12)
            feat = torch.tanh(d / torch.where(mad > 1e-12, mad, fallback) / scale)
        else:
            feat = xa
        z = _window_unit_features(feat, starts, win)
        for s in range(0, ii.size, chunk_pairs):
            ci = torch.as_tensor(ii[s : s + chunk_pairs], device=dev)
            cj = torch.as_tensor(jj[s : s + chunk_pairs], device=dev)
            vals = _pair_values(z, ci, cj)
            out[s : s + chunk_pairs, :, a] = vals.double().cpu().numpy()
        out[~(present[ii, a] & present[jj, a]), :, a] = np.nan
    time = da["time"].values if "time" in da.coords else np.arange(n_time) / factor
    t = np.asarray(time, dtype=float)
    coords = {
        "roi_i": ("pair", np.asarray(rois)[ii]),
        "roi_j": ("pair", np.asarray(rois)[jj]),
        "window_start": ("window", t[starts]),
        "window_stop": ("window", t[starts + win - 1]),
        "time": ("window", 0.5 * (t[starts] + t[starts + win - 1])),
    }
    if "animal" in da.coords:
        coords["animal"] = da["animal"].values
    res = xr.DataArray(out, dims=("pair", "window", "animal"), coords=coords, name="affinity")
    if baseline == "mean":
        res = np.maximum(subtract_floor(res), 0.0)
    res.attrs.update(
        method=method,
        scale=float(scale),
        detrend=float(detrend),
        baseline=baseline,
        window_samples=win,
        step_samples=hop,
    )
    return res


def subtract_floor(affinity: xr.DataArray) -> xr.DataArray:
    """Subtract from every ``(window, animal)`` slice its mean over the observed pairs (signed).

    The mean is the *noise floor* of clipped correlations (see the module docstring); the result
    is negative for pairs below their window's level and NaN where unobserved. ``baseline="mean"``
    is this, clipped at 0.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neuroana.connectome.affinity import subtract_floor
    >>> a = xr.DataArray(np.array([[[0.1]], [[0.3]], [[np.nan]]]), dims=("pair", "window", "animal"))
    >>> subtract_floor(a).values.ravel().round(2).tolist()
    [-0.1, 0.1, nan]
    """
    out = affinity - affinity.mean("pair", skipna=True)
    out.attrs = dict(affinity.attrs)
    return out


def pair_to_matrix(values, n_roi: int | None = None) -> np.ndarray:
    """Symmetric ``(n_roi, n_roi)`` matrix (zero diagonal) from a pair vector in ``triu`` order.

    Examples
    --------
    >>> from neuroana.connectome.affinity import pair_to_matrix
    >>> pair_to_matrix([1.0, 2.0, 3.0]).tolist()
    [[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 3.0, 0.0]]
    """
    v = np.asarray(values, dtype=float)
    if n_roi is None:
        n_roi = int(round((1 + np.sqrt(1 + 8 * v.size)) / 2))
    if n_roi * (n_roi - 1) // 2 != v.size:
        raise ConnectomeInputError(
            f"{v.size} pair values do not fill the upper triangle of a {n_roi}x{n_roi} matrix"
        )
    m = np.zeros((n_roi, n_roi))
    ii, jj = np.triu_indices(n_roi, k=1)
    m[ii, jj] = v
    m[jj, ii] = v
    return m
