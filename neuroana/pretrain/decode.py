"""Behaviour decoding from a pretrained :class:`SpikeRateModel` (and the ridge baselines).

:class:`BehaviourDecoder` bins time (``bin`` s), stacks the spike counts at ``lags`` bins around
each bin and, with a pretrained model, its attention latent averaged over the same bins, and fits
a ridge read-out with the penalty chosen by contiguous-block cross-validation. ``pretrained=None``
is the plain ridge decoder on counts (the baseline). The decoded value of a bin is the behaviour's
mean over the bin shifted by ``lag`` seconds (``lag=0``: centred on the bin).
:meth:`BehaviourDecoder.score` is R² (as for scikit-learn regressors); :func:`pearson_r` is
separate. :func:`few_shot` fits on a small share of the labels spread over several blocks of the
training part and compares with the ridge baseline and the same decoder on an untrained model.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from neuroana.errors import PretrainInputError
from neuroana.pretrain.ratemodel import SpikeRateModel, bin_counts, spike_dict

ALPHAS = tuple(float(a) for a in 10.0 ** np.arange(-2, 6.5, 0.5))


def r2_score(y_true, y_pred) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot`` (1 = perfect; 0 = the mean).

    Examples
    --------
    >>> from neuroana.pretrain.decode import r2_score
    >>> r2_score([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]), r2_score([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])
    (1.0, 0.0)
    """
    y, p = np.asarray(y_true, float).ravel(), np.asarray(y_pred, float).ravel()
    return float(1 - ((y - p) ** 2).sum() / max(((y - y.mean()) ** 2).sum(), 1e-300))


def pearson_r(y_true, y_pred) -> float:
    """Pearson correlation of decoded and true values (not R²: blind to offset and scale).

    Examples
    --------
    >>> from neuroana.pretrain.decode import pearson_r
    >>> pearson_r([1.0, 2.0, 3.0], [10.0, 20.0, 30.0])
    1.0
    """
    return float(np.corrcoef(np.ravel(y_true), np.ravel(y_pred))[0, 1])


def behaviour_bins(behaviour: xr.DataArray, t_start: float, t_stop: float, bin: float, lag=0.0):
    """Mean behaviour over ``[t + lag, t + bin + lag)`` for bins ``t`` of ``[t_start, t_stop)``."""
    if not isinstance(behaviour, xr.DataArray) or "time" not in behaviour.dims:
        raise PretrainInputError(
            f"behaviour must be an xarray.DataArray with a 'time' dim, got {type(behaviour).__name__}"
        )
    b = behaviour if behaviour.ndim == 1 else behaviour.isel(feature=0)
    t = np.asarray(b["time"], float)
    v = np.asarray(b, float)
    n = int(round((t_stop - t_start) / bin))
    k = np.floor((t - t_start - lag) / bin + 1e-9).astype(np.int64)
    ok = (k >= 0) & (k < n) & np.isfinite(v)
    s = np.bincount(k[ok], v[ok], minlength=n)
    c = np.bincount(k[ok], minlength=n)
    out = np.full(n, np.nan)
    out[c > 0] = s[c > 0] / c[c > 0]
    return out


def _lagged(F: np.ndarray, lags: tuple) -> np.ndarray:
    lo, hi = lags
    n = F.shape[0]
    cols = []
    for k in range(lo, hi + 1):
        G = np.zeros_like(F)
        if k >= 0:
            G[: n - k] = F[k:]
        else:
            G[-k:] = F[: n + k]
        cols.append(G)
    return np.concatenate(cols, 1)


def _bin_mean(z: np.ndarray, t: np.ndarray, bin: float, n: int) -> np.ndarray:
    """Mean of the rows of ``z`` whose times ``t`` (from the first bin's start) fall in each of
    ``n`` bins of width ``bin``; a bin without a row (``bin`` shorter than the latent's step)
    repeats the last earlier one (never a later one: the features stay causal).

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.pretrain.decode import _bin_mean
    >>> _bin_mean(np.arange(5.0)[:, None], np.arange(5) * 0.02, 0.05, 3).ravel().tolist()
    [1.0, 3.5, 3.5]
    """
    k = np.floor(t / bin + 1e-9).astype(np.int64)
    ok = (k >= 0) & (k < n)
    cnt = np.bincount(k[ok], minlength=n)
    out = np.stack([np.bincount(k[ok], z[ok, j], minlength=n) for j in range(z.shape[1])], 1)
    filled = np.where(cnt > 0, np.arange(n), 0)
    np.maximum.accumulate(filled, out=filled)
    out = out[filled] / np.maximum(cnt[filled], 1)[:, None]
    return out


def _ridge_path(X, y, alphas):
    """Coefficients for every alpha (standardised X, centred y) via one SVD."""
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    Uy = U.T @ y
    return [(Vt.T * (s / (s**2 + a))) @ Uy for a in alphas]


class BehaviourDecoder(BaseEstimator):
    """Ridge read-out of a behaviour from binned counts and a pretrained model's latent.

    Parameters
    ----------
    pretrained : SpikeRateModel, optional
        Fitted model with the attention pathway; ``None`` = counts only (the ridge baseline).
    bin : float
        Decoding bin (s).
    lags : (int, int)
        Feature bins ``lags[0]..lags[1]`` around each bin (``(-4, 4)``: t-4..t+4).
    lag : float
        Decode the behaviour ``lag`` seconds after the bin (0 = the bin's own mean, centred).
    alphas : sequence of float
        Ridge penalties tried (standardised features).
    n_folds : int
        Contiguous cross-validation folds over the labelled bins (or the label blocks, if more).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neuroana.pretrain.decode import BehaviourDecoder
    >>> rng = np.random.default_rng(0)
    >>> t = np.arange(0, 100, 0.01)
    >>> speed = xr.DataArray(np.sin(t / 3) + 1, dims="time", coords={"time": t})
    >>> spikes = {u: np.sort(rng.uniform(0, 100, 3000)) for u in range(3)}
    >>> spikes[9] = t[rng.random(t.size) < 0.2 * speed.values]
    >>> dec = BehaviourDecoder().fit(spikes, speed, 0, 80)
    >>> dec.score(spikes, speed, 80, 100) > 0.5
    True
    """

    def __init__(
        self,
        pretrained: SpikeRateModel | None = None,
        *,
        bin: float = 0.05,
        lags: tuple = (-4, 4),
        lag: float = 0.0,
        alphas=ALPHAS,
        n_folds: int = 5,
    ):
        self.pretrained = pretrained
        self.bin = bin
        self.lags = lags
        self.lag = lag
        self.alphas = alphas
        self.n_folds = n_folds

    def features(self, spikes, t_start: float, t_stop: float) -> np.ndarray:
        """Feature matrix ``(n_bins, n_features)`` on ``[t_start, t_stop)`` (before scaling):
        the square-root counts of every unit at every lag, then (with ``pretrained``) the latent
        averaged over the same lag window.

        The latent is a smooth summary of the past (seconds of context), so its copies at the
        ``lags`` are nearly collinear: one copy per bin keeps the latent from outweighing the
        counts under the ridge's common penalty when labels are few."""
        sp = spike_dict(spikes)
        if self.pretrained is not None and not hasattr(self.pretrained, "net_"):
            raise NotFittedError("the pretrained model is not fitted yet; fit it first")
        n = int(round((t_stop - t_start) / self.bin))
        if n < 1:
            raise PretrainInputError(f"[{t_start}, {t_stop}) holds no {self.bin}-s bin")
        lo, hi = self.lags
        pad = max(-lo, hi, 0)
        c = bin_counts(sp, t_start - pad * self.bin, t_start + (n + pad) * self.bin, self.bin)
        F = [_lagged(np.sqrt(c), self.lags)]
        if self.pretrained is not None:
            a = t_start - pad * self.bin
            z = self.pretrained.transform(sp, a, t_start + (n + pad) * self.bin)
            zb = _bin_mean(np.asarray(z), np.asarray(z["time"], float) - a, self.bin, len(c))
            n_lags = self.lags[1] - self.lags[0] + 1
            F.append(_lagged(zb, self.lags).reshape(len(c), n_lags, -1).mean(1))
        return np.concatenate(F, 1)[pad : pad + n]

    def fit(self, spikes, behaviour, t_start: float, t_stop: float, *, label_mask=None):
        """Fit on ``[t_start, t_stop)``; ``label_mask`` (bool per bin) restricts the labels used
        (features still use all spikes: few-shot)."""
        X = self.features(spikes, t_start, t_stop)
        y = behaviour_bins(behaviour, t_start, t_stop, self.bin, self.lag)
        return self._fit_features(X, y, label_mask)

    def _fit_features(self, X, y, label_mask=None):
        keep = np.isfinite(y)
        if label_mask is not None:
            label_mask = np.asarray(label_mask, bool)
            if label_mask.shape != y.shape:
                raise PretrainInputError(
                    f"label_mask has {label_mask.shape} bins, expected {y.shape}"
                )
            keep &= label_mask
        idx = np.flatnonzero(keep)
        if idx.size < 10:
            raise PretrainInputError(f"only {idx.size} labelled bins; need at least 10")
        X, y = X[idx], y[idx]
        self.mean_, self.scale_ = X.mean(0), np.maximum(X.std(0), 1e-9)
        Z = (X - self.mean_) / self.scale_
        # contiguous folds: runs of consecutive labelled bins, grouped into n_folds parts
        runs = np.cumsum(np.r_[1, np.diff(idx) > 1])
        groups = (
            np.array_split(np.unique(runs), self.n_folds) if runs.max() >= self.n_folds else None
        )
        if groups is None:
            folds = np.array_split(np.arange(len(idx)), self.n_folds)
        else:
            folds = [np.flatnonzero(np.isin(runs, g)) for g in groups]
        alphas = np.asarray(self.alphas, float)
        err = np.zeros(len(alphas))
        for f in folds:
            tr = np.setdiff1d(np.arange(len(idx)), f)
            mu = y[tr].mean()
            for a, w in enumerate(_ridge_path(Z[tr], y[tr] - mu, alphas)):
                err[a] += ((Z[f] @ w + mu - y[f]) ** 2).sum()
        self.alpha_ = float(alphas[err.argmin()])
        self.coef_ = _ridge_path(Z, y - y.mean(), [self.alpha_])[0]
        self.intercept_ = float(y.mean())
        self.cv_error_ = err / len(idx)
        self.n_labels_ = int(len(idx))
        return self

    def _predict_features(self, X):
        if X.shape[1] != len(self.coef_):
            raise PretrainInputError(
                f"{X.shape[1]} features, the decoder was fitted on {len(self.coef_)}: "
                "pass the units it was fitted on"
            )
        return (X - self.mean_) / self.scale_ @ self.coef_ + self.intercept_

    def predict(self, spikes, t_start: float, t_stop: float) -> xr.DataArray:
        """Decoded behaviour per bin (``time`` = bin start)."""
        if not hasattr(self, "coef_"):
            raise NotFittedError("this BehaviourDecoder is not fitted yet; call fit first")
        p = self._predict_features(self.features(spikes, t_start, t_stop))
        t = t_start + np.arange(len(p)) * self.bin
        return xr.DataArray(p, dims="time", coords={"time": t})

    def score(self, spikes, behaviour, t_start: float, t_stop: float) -> float:
        """R² of the decoded behaviour on ``[t_start, t_stop)``."""
        p = np.asarray(self.predict(spikes, t_start, t_stop))
        y = behaviour_bins(behaviour, t_start, t_stop, self.bin, self.lag)
        ok = np.isfinite(y)
        return r2_score(y[ok], p[ok])


def label_blocks(n_bins: int, share: float, n_blocks: int = 10) -> np.ndarray:
    """Boolean mask of ``n_blocks`` evenly spaced contiguous blocks holding ``share`` of the bins.

    Examples
    --------
    >>> from neuroana.pretrain.decode import label_blocks
    >>> m = label_blocks(1000, 0.1, 4)
    >>> int(m.sum()), int((m[1:] & ~m[:-1]).sum() + m[0])
    (100, 4)
    """
    if not 0 < share <= 1:
        raise ValueError(f"share={share} must be in (0, 1]")
    n_lab = max(n_blocks, int(round(share * n_bins)))
    size = n_lab // n_blocks
    starts = np.linspace(0, n_bins - size, n_blocks).round().astype(int)
    m = np.zeros(n_bins, bool)
    for s in starts:
        m[s : s + size] = True
    return m


def few_shot(
    decoder: BehaviourDecoder,
    spikes,
    behaviour,
    train: tuple,
    test: tuple,
    *,
    shares=(0.01, 0.1),
    n_blocks: int = 10,
    scratch: SpikeRateModel | None = None,
) -> xr.Dataset:
    """Held-out R² with a share of the training labels, for the decoder and its baselines.

    For every share, the labels come from ``n_blocks`` evenly spaced contiguous blocks of the
    training bins (:func:`label_blocks`); features use all spikes. Methods: ``pretrained`` (the
    given decoder), ``ridge`` (the same decoder with ``pretrained=None``: counts only) and, with
    ``scratch`` (an *untrained* :class:`SpikeRateModel`, e.g. ``max_epochs=0``), ``scratch`` (the
    same decoder on the untrained model). Returns ``r2`` and ``n_labels`` over ``(share, method)``.
    """
    params = decoder.get_params(deep=False)
    pre = {"pretrained": decoder.pretrained, "ridge": None}
    if scratch is not None:
        pre["scratch"] = scratch
    methods = {k: type(decoder)(**{**params, "pretrained": v}) for k, v in pre.items()}
    ytr = behaviour_bins(behaviour, *train, decoder.bin, decoder.lag)
    yte = behaviour_bins(behaviour, *test, decoder.bin, decoder.lag)
    ok = np.isfinite(yte)
    r2 = np.zeros((len(shares), len(methods)))
    nl = np.zeros_like(r2)
    for j, d in enumerate(methods.values()):
        Xtr, Xte = d.features(spikes, *train), d.features(spikes, *test)  # once per method
        for i, s in enumerate(shares):
            d._fit_features(Xtr, ytr, label_blocks(len(ytr), s, n_blocks))
            r2[i, j] = r2_score(yte[ok], d._predict_features(Xte)[ok])
            nl[i, j] = d.n_labels_
    coords = {"share": list(shares), "method": list(methods)}
    return xr.Dataset(
        {"r2": (("share", "method"), r2), "n_labels": (("share", "method"), nl)}, coords=coords
    )
