"""Self-supervised pretraining of a per-unit rate model on binned spikes: :class:`SpikeRateModel`.

The model predicts every unit's spike count in every fine bin from the past only (spike history
through a coupled-GLM pathway, the population rate, and an attention latent over coarse population
tokens; :mod:`neuroana.pretrain.ratenet`). It is trained by Poisson likelihood, so its fit is read
in bits per spike over a per-unit rate (:func:`bits_per_spike`), its coupling kernels give a
``("target", "source")`` connectivity read-out (:mod:`neuroana.pretrain.connectivity`), and its
latent feeds behaviour decoders (:mod:`neuroana.pretrain.decode`).

Splits never touch data outside ``[t_start, t_stop)`` given to :meth:`SpikeRateModel.fit`: early
stopping uses the last ``val_fraction`` of *that* interval, so a held-out tail stays untouched when
the user fits on ``t_stop = 0.8 * duration``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import xarray as xr
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from neuroana.backend import resolve_device, seeded_default_generator
from neuroana.backend.threads import fit_threads, limit_threads
from neuroana.errors import PretrainInputError
from neuroana.pretrain.ratefit import (
    cached_eta,
    fit_attention_stage,
    fit_glm_stage,
    pop_features,
)
from neuroana.pretrain.ratenet import PATHWAYS, RateNet

#: work per step (multiply-adds) below which a fit runs on one thread
MIN_WORK = 5e7

LN2 = float(np.log(2.0))


# ------------------------------------------------------------------------------ binning
def spike_dict(spikes) -> dict:
    """``{unit id: sorted float array}`` from a mapping of spike times.

    Raises :class:`~neuroana.errors.PretrainInputError` naming the problem: not a mapping, no
    units, times that are not numbers, NaN or infinite times.
    """
    if not isinstance(spikes, Mapping):
        raise PretrainInputError(
            f"spikes must be a mapping {{unit id: spike times (s)}}, got {type(spikes).__name__}"
        )
    if not spikes:
        raise PretrainInputError("spikes holds no units")
    out = {}
    for u, t in spikes.items():
        raw = np.asarray(t)
        if raw.ndim > 1:
            raise PretrainInputError(
                f"unit {u!r}: spike times have shape {raw.shape}; expected a 1-D array of times (s)"
            )
        if raw.dtype.kind not in "iufO":  # strings, bytes, booleans, datetimes
            raise PretrainInputError(
                f"unit {u!r}: spike times have dtype {raw.dtype}; expected numbers (seconds)"
            )
        try:
            a = np.sort(raw.astype(float).ravel())
        except (TypeError, ValueError) as e:
            raise PretrainInputError(f"unit {u!r}: spike times are not numbers ({e})") from None
        if not np.all(np.isfinite(a)):
            raise PretrainInputError(f"unit {u!r}: spike times contain NaN or inf")
        out[u] = a
    return out


def bin_counts(spikes: Mapping, t_start: float, t_stop: float, dt: float) -> np.ndarray:
    """Counts ``(n_bins, n_units)`` (float32) on ``t_start + k * dt``, by the package's one binning
    rule (:func:`neuroana.preprocess.bin_spike_times`: left-closed bins, whole bins only); times
    before ``t_start`` are dropped (use a negative ``t_start`` to get zero-padded context).

    Examples
    --------
    >>> from neuroana.pretrain.ratemodel import bin_counts
    >>> bin_counts({7: [0.0015, 0.0031], 9: [0.0049]}, 0.0, 0.006, 0.002).T.tolist()
    [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    from neuroana.preprocess import bin_spike_times

    counts = bin_spike_times(spikes, dt, start=t_start, stop=t_stop).values
    return np.ascontiguousarray(counts, dtype=np.float32)


def poisson_loglik(counts, rates) -> np.ndarray:
    """Poisson log-likelihood (nats) per unit, summed over bins; ``rates`` = expected counts/bin."""
    from scipy.special import gammaln

    c = np.asarray(counts, dtype=np.float64)
    lam = np.maximum(np.asarray(rates, dtype=np.float64), 1e-12)
    return (c * np.log(lam) - lam - gammaln(c + 1)).sum(0)


def bits_per_spike(counts, rates, null_rates=None) -> np.ndarray:
    """Log-likelihood gain per spike (bits) of ``rates`` over a per-unit constant rate, per unit.

    The metric of the Neural Latents Benchmark: ``(LL(rates) - LL(null)) / (n_spikes * ln 2)``,
    where ``null`` is each unit's mean count per bin over the evaluated bins (``null_rates`` to give
    another). ``counts`` and ``rates`` are ``(n_bins, n_units)``, ``rates`` in expected counts per bin.
    The population value is ``sum(gain) / sum(spikes)``: use :func:`population_bits_per_spike`.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.pretrain.ratemodel import bits_per_spike
    >>> rng = np.random.default_rng(0)
    >>> lam = np.repeat([[0.05], [0.5]], 500, axis=0)
    >>> y = rng.poisson(lam)
    >>> bool(bits_per_spike(y, lam)[0] > 0.2), float(bits_per_spike(y, np.full_like(lam, y.mean()))[0])
    (True, 0.0)
    """
    c = np.asarray(counts, dtype=np.float64)
    if c.shape != np.shape(rates):
        raise ValueError(f"counts {c.shape} and rates {np.shape(rates)} differ in shape")
    null = c.mean(0, keepdims=True) if null_rates is None else np.asarray(null_rates)[None]
    gain = poisson_loglik(c, rates) - poisson_loglik(c, np.broadcast_to(null, c.shape))
    return gain / np.maximum(c.sum(0), 1) / LN2


def population_bits_per_spike(counts, rates) -> float:
    """Summed gain over all units divided by all spikes (bits/spike) — the headline number."""
    c = np.asarray(counts, dtype=np.float64)
    return float((bits_per_spike(c, rates) * c.sum(0)).sum() / max(c.sum(), 1))


# ------------------------------------------------------------------------------ estimator
class SpikeRateModel(BaseEstimator):
    """Pretrained rate model of a spiking population (coupling + population rate + attention).

    Parameters
    ----------
    dt : float
        Fine bin (s) of the predicted counts.
    history : float
        Length (s) of the spike-history (coupling) kernels; covers synaptic delays up to ~20 ms.
    n_basis : int
        Raised-cosine lag bases of the kernels.
    coarse : float
        Width (s) of the coarse population tokens of the attention pathway (and of the latent).
    context : float
        How far back (s) the attention and population-rate pathways look.
    d_latent, n_heads : int
        Size of the attention latent.
    pathways : tuple of str
        Subset of ``("coupling", "poprate", "attention")``. ``("coupling", "poprate")`` is a coupled
        Poisson GLM with a population-rate input (:func:`coupled_glm`).
    chunk : float
        Seconds of loss bins per training window (each has ``context`` seconds of context before).
    l2 : float or sequence of float
        L2 penalty on the coupling kernels (a Gaussian prior precision over the whole training
        set). A sequence is a path, strongest first and warm-started; the penalty with the best
        validation likelihood is kept (``l2_``).
    max_iter : int
        L-BFGS iterations per penalty of the first (GLM) stage (:mod:`neuroana.pretrain.ratefit`).
    batch_size, lr, max_epochs, patience : Adam settings of the attention stage (windows per
        step, learning rate with cosine decay, epochs, early-stopping patience on validation).
    val_fraction : float
        Last fraction of the fitted interval used for early stopping (never data after ``t_stop``).
    held_out_units : sequence, optional
        Units never used as inputs (only predicted): co-smoothing (:func:`co_smoothing`).
    n_threads : int, optional
        Upper bound on torch threads (see :mod:`neuroana.backend.threads`).
    device : str
        ``"auto"`` (default: CUDA when present), ``"cpu"`` or ``"cuda"``: the GPU configuration
        for larger data (same numbers, batches moved to the device).
    random_state : int, optional
        Seed of the initialisation and batch order (``None``: a fresh seed each fit).
    verbose : bool
        Progress bar (default off).

    Attributes
    ----------
    units_ : list
        Unit ids, in the order of every ``unit`` / ``target`` / ``source`` axis.
    net_ : RateNet
    history_ : xarray.Dataset
        First stage: ``glm_val_nll`` and ``glm_n_iter`` per penalty; attention stage: per-epoch
        ``loss`` and ``val_nll``, and ``glm_stage_val_nll`` (validation before it).
    l2_ : float
        The penalty chosen on validation.
    n_fit_bins_ : int
        Fine bins the first stage was fitted on (the interval less its validation part); the
        connectivity read-out scales its Fisher information to it.

    Notes
    -----
    Fitting is two-staged (:mod:`neuroana.pretrain.ratefit`): the convex GLM part by full-batch
    L-BFGS (each iteration about ``3 * n_bins * N**2 * n_basis`` multiply-adds; a path of 3
    penalties, warm-started, at most ``max_iter`` iterations each), then the attention pathway by
    Adam on cached first-stage log-rates (cheap: ``n_bins / coarse`` tokens of width ``d_latent``
    per epoch). A 48-unit, 480-s recording at 2 ms (the public hub network): 153 s on one CPU
    thread of a loaded 2-core machine. On a busy machine pass ``n_threads=1``: with two threads
    the many small L-BFGS vector operations wait for the second core (a 120-s fit took 271 s
    there, with two threads and a load average near 10).

    Examples
    --------
    >>> from neuroana.datasets.spiking_sim import simulate_chain
    >>> from neuroana.pretrain import SpikeRateModel
    >>> net = simulate_chain(duration=40.0, random_state=0)
    >>> m = SpikeRateModel(max_epochs=3, verbose=False).fit(net.spike_times, t_stop=30.0)
    >>> bool(m.score(net.spike_times, 30.0, 40.0) > 0)
    True
    """

    def __init__(
        self,
        *,
        dt: float = 0.002,
        history: float = 0.04,
        n_basis: int = 6,
        coarse: float = 0.02,
        context: float = 2.0,
        d_latent: int = 16,
        n_heads: int = 4,
        pathways: tuple = PATHWAYS,
        chunk: float = 2.0,
        batch_size: int = 8,
        lr: float = 3e-3,
        l2=(300.0, 100.0, 30.0),
        max_iter: int = 100,
        max_epochs: int = 20,
        patience: int = 4,
        val_fraction: float = 0.1,
        held_out_units=None,
        n_threads: int | None = None,
        device: str = "auto",
        random_state: int | None = None,
        verbose: bool = False,
    ):
        self.dt = dt
        self.history = history
        self.n_basis = n_basis
        self.coarse = coarse
        self.context = context
        self.d_latent = d_latent
        self.n_heads = n_heads
        self.pathways = pathways
        self.chunk = chunk
        self.batch_size = batch_size
        self.lr = lr
        self.l2 = l2
        self.max_iter = max_iter
        self.max_epochs = max_epochs
        self.patience = patience
        self.val_fraction = val_fraction
        self.held_out_units = held_out_units
        self.n_threads = n_threads
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -------------------------------------------------------------- geometry
    def _grid(self):
        c = int(round(self.coarse / self.dt))
        if c < 1 or abs(c * self.dt - self.coarse) > 1e-9:
            raise ValueError(f"coarse={self.coarse} must be a whole number of dt={self.dt} bins")
        n_ctx = int(round(self.context / self.coarse))
        n_chunk = max(1, int(round(self.chunk / self.coarse))) * c
        return c, n_ctx, n_chunk

    def _make_net(self, n_units: int) -> RateNet:
        c, n_ctx, _ = self._grid()
        n_lags = max(self.n_basis, int(round(self.history / self.dt)))
        wins = tuple(min(n_ctx, max(1, int(round(s / self.coarse)))) for s in (0.1, 0.5, 2.0))
        return RateNet(
            n_units,
            n_lags=n_lags,
            n_basis=self.n_basis,
            coarse=c,
            n_context=n_ctx,
            pop_windows=tuple(sorted(set(wins))),
            d_latent=self.d_latent,
            n_heads=self.n_heads,
            pathways=tuple(self.pathways),
        )

    def _counts(self, spikes, t_start: float, t_stop: float):
        """Counts from ``t_start - context`` to ``t_stop`` (rounded up to whole chunks) and the
        loss-bin range; held-out input units zeroed in a separate input copy."""
        c, n_ctx, n_chunk = self._grid()
        ctx = n_ctx * c
        n_loss = int(round((t_stop - t_start) / self.dt))
        n_loss_pad = -(-n_loss // n_chunk) * n_chunk
        y = bin_counts(spikes, t_start - ctx * self.dt, t_start + n_loss_pad * self.dt, self.dt)
        x = y.copy()
        if self.held_out_units is not None:
            idx = [self.units_.index(u) for u in self.held_out_units]
            x[:, idx] = 0
        return x, y, ctx, n_loss, n_chunk

    def _check_units(self, spikes) -> dict:
        sp = spike_dict(spikes)
        if list(sp) != self.units_:
            raise PretrainInputError(
                f"units {list(sp)[:8]}... differ from the fitted units {self.units_[:8]}...; "
                "pass the same units in the same order"
            )
        return sp

    # -------------------------------------------------------------- fit
    def fit(self, spikes, t_start: float | None = None, t_stop: float | None = None):
        """Pretrain on ``spikes`` (``{unit: times}``) inside ``[t_start, t_stop)`` only.

        ``t_start`` defaults to the first spike, ``t_stop`` to just after the last one. The last
        ``val_fraction`` of the interval is the early-stopping set; nothing after ``t_stop`` is read.
        Random draws (initialisation, batches) follow ``random_state`` (``None``: a fresh seed);
        torch's process-wide generator is left as it was.
        """
        seed = self.random_state
        if seed is None:
            seed = int(np.random.default_rng().integers(2**31 - 1))
        with seeded_default_generator(seed):
            return self._fit(spikes, t_start, t_stop, int(seed))

    def _fit(self, spikes, t_start, t_stop, seed: int):
        sp = spike_dict(spikes)
        self.units_ = list(sp)
        allt = np.concatenate(list(sp.values()))
        if allt.size == 0:
            raise PretrainInputError("spikes holds no spike times")
        t0 = float(allt.min()) if t_start is None else float(t_start)
        t1 = float(allt.max()) + self.dt if t_stop is None else float(t_stop)
        if self.held_out_units is not None:
            miss = [u for u in self.held_out_units if u not in sp]
            if miss:
                raise PretrainInputError(f"held_out_units {miss} are not among the units")
        if not 0 <= self.val_fraction < 1:
            raise PretrainInputError(f"val_fraction={self.val_fraction} must be in [0, 1)")
        sp = {u: t[(t < t1)] for u, t in sp.items()}  # nothing after t_stop is ever read
        x, y, ctx, n_loss, n_chunk = self._counts(sp, t0, t1)
        n_chunks = n_loss // n_chunk
        if n_chunks < 2:
            raise PretrainInputError(
                f"the interval [{t0}, {t1}) holds fewer than 2 training chunks of {self.chunk} s"
            )
        n_val = int(round(self.val_fraction * n_chunks))
        starts = np.arange(n_chunks) * n_chunk  # loss-bin offsets; chunk input = [s, s+ctx+n_chunk)
        tr, va = starts[: n_chunks - n_val], starts[n_chunks - n_val :]
        rng = np.random.default_rng(seed)
        N = len(self.units_)
        dev = resolve_device(self.device)
        net = self._make_net(N)
        rate = y[ctx : ctx + tr[-1] + n_chunk].mean(0)
        with torch.no_grad():
            net.bias.copy_(torch.log(torch.as_tensor(np.maximum(rate, 1e-4))))
        self.net_ = net.to(dev)
        self.device_ = dev
        X, Y = torch.from_numpy(x).to(dev), torch.from_numpy(y).to(dev)
        use_h = "coupling" in net.pathways
        with torch.no_grad():
            H = net.history_all(X) if use_h else None
            P = pop_features(net, X)
        work = self.batch_size * n_chunk * N * N * self.n_basis * 3
        n_thr = fit_threads(work, MIN_WORK, requested=self.n_threads)
        train = slice(ctx, ctx + len(tr) * n_chunk)
        val = slice(train.stop, train.stop + len(va) * n_chunk)
        l2s = sorted(np.atleast_1d(np.asarray(self.l2, float)).tolist(), reverse=True)
        if self.max_epochs == 0:  # an untrained model (the "from scratch" control)
            net.cpu().eval()
            self.history_, self.n_epochs_ = xr.Dataset(), 0
            self.fit_interval_, self.n_threads_, self.l2_ = (t0, t1), n_thr, None
            self.n_fit_bins_ = train.stop - train.start
            return self
        with limit_threads(n_thr):
            glm = fit_glm_stage(
                net, H, P, Y, train, val, l2s, max_iter=self.max_iter, verbose=self.verbose
            )
            hist = xr.Dataset(
                {"glm_val_nll": ("l2", glm["val_nll"]), "glm_n_iter": ("l2", glm["n_iter"])},
                coords={"l2": glm["l2"]},
            )
            n_ep = 0
            if "attention" in net.pathways:
                eta0 = torch.zeros(len(Y), N, device=dev)
                eta0[ctx:] = cached_eta(net, H, P, slice(ctx, len(Y)))
                res, v0 = fit_attention_stage(
                    net,
                    X,
                    eta0,
                    Y,
                    tr,
                    va,
                    ctx,
                    n_chunk,
                    lr=self.lr,
                    batch_size=self.batch_size,
                    max_epochs=self.max_epochs,
                    patience=self.patience,
                    rng=rng,
                    verbose=self.verbose,
                )
                n_ep = res.n_iter
                hist = hist.merge(res.history.rename(iteration="epoch"))
                hist["glm_stage_val_nll"] = v0
        net.cpu().eval()  # inference and read-outs run on the CPU copy
        self.history_ = hist
        self.n_epochs_ = n_ep
        self.l2_ = glm["l2_chosen"]
        self.n_fit_bins_ = train.stop - train.start
        self.fit_interval_ = (t0, t1)
        self.n_threads_ = n_thr
        return self

    # -------------------------------------------------------------- inference
    def _chunks(self, spikes, t_start, t_stop):
        if not hasattr(self, "net_"):
            raise NotFittedError("this SpikeRateModel is not fitted yet; call fit first")
        sp = self._check_units(spikes)
        if not t_stop > t_start:
            raise PretrainInputError(f"empty interval [{t_start}, {t_stop})")
        x, y, ctx, n_loss, n_chunk = self._counts(sp, float(t_start), float(t_stop))
        starts = np.arange(0, len(y) - ctx, n_chunk)
        return torch.from_numpy(x), y, ctx, n_loss, n_chunk, starts

    def _forward(self, spikes, t_start, t_stop, *, want_z=False, batch_size=16):
        X, y, ctx, n_loss, n_chunk, starts = self._chunks(spikes, t_start, t_stop)
        L = ctx + n_chunk
        etas, zs = [], []
        with torch.no_grad(), limit_threads(fit_threads(None, MIN_WORK, requested=self.n_threads)):
            for k in range(0, len(starts), batch_size):
                xb = torch.stack([X[s : s + L] for s in starts[k : k + batch_size]])
                eta, z = self.net_(xb)
                etas.append(eta.reshape(-1, eta.shape[-1]))
                if want_z:
                    zs.append(z.reshape(-1, z.shape[-1]))
        eta = torch.cat(etas)[:n_loss].numpy()
        z = torch.cat(zs).numpy() if want_z else None
        return eta, y[ctx : ctx + n_loss], z

    def predict_rate(self, spikes, t_start: float, t_stop: float) -> xr.DataArray:
        """Expected counts per fine bin ``(time, unit)`` on ``[t_start, t_stop)`` (past-only)."""
        eta, _, _ = self._forward(spikes, t_start, t_stop)
        t = t_start + np.arange(len(eta)) * self.dt
        return xr.DataArray(
            np.exp(eta),
            dims=("time", "unit"),
            coords={"time": t, "unit": self.units_},
            name="expected_count",
            attrs={"dt": self.dt},
        )

    def bits_per_spike(self, spikes, t_start: float, t_stop: float) -> xr.DataArray:
        """Per-unit bits/spike over each unit's mean rate on ``[t_start, t_stop)``."""
        eta, y, _ = self._forward(spikes, t_start, t_stop)
        b = bits_per_spike(y, np.exp(eta))
        da = xr.DataArray(b, dims=("unit",), coords={"unit": self.units_}, name="bits_per_spike")
        da.attrs["population"] = population_bits_per_spike(y, np.exp(eta))
        return da

    def score(self, spikes, t_start: float, t_stop: float) -> float:
        """Population bits/spike on ``[t_start, t_stop)`` (higher is better)."""
        return float(self.bits_per_spike(spikes, t_start, t_stop).attrs["population"])

    def transform(self, spikes, t_start: float, t_stop: float) -> xr.DataArray:
        """Attention latent ``(time, feature)`` per coarse bin; the value at a bin's start time
        summarises the population up to that time (past-only)."""
        if not hasattr(self, "net_"):
            raise NotFittedError("this SpikeRateModel is not fitted yet; call fit first")
        if "attention" not in self.net_.pathways:
            raise ValueError("transform needs the attention pathway")
        _, _, z = self._forward(spikes, t_start, t_stop, want_z=True)
        n = int(round((t_stop - t_start) / self.coarse))
        t = t_start + np.arange(n) * self.coarse
        return xr.DataArray(
            z[:n],
            dims=("time", "feature"),
            coords={"time": t},
            name="latent",
            attrs={"bin": self.coarse},
        )


def coupled_glm(**kw) -> SpikeRateModel:
    """The package's coupled Poisson GLM: spike-history coupling plus a population-rate input.

    A :class:`SpikeRateModel` without the attention pathway: only the L-BFGS stage (same splits,
    penalty path chosen on validation, read-outs).

    Examples
    --------
    >>> from neuroana.pretrain.ratemodel import coupled_glm
    >>> coupled_glm().pathways
    ('coupling', 'poprate')
    """
    return SpikeRateModel(**{"pathways": ("coupling", "poprate"), **kw})


def first_stage(model: SpikeRateModel) -> SpikeRateModel:
    """The coupled GLM inside a fitted :class:`SpikeRateModel`: a copy without the attention
    pathway.

    The first fitting stage of the model *is* :func:`coupled_glm` with the same parameters fitted
    on the same interval (the attention stage starts from it and leaves it unchanged), so this
    gives the package's GLM baseline without a second fit.

    Examples
    --------
    >>> from neuroana.datasets.spiking_sim import simulate_chain
    >>> from neuroana.pretrain.ratemodel import SpikeRateModel, first_stage
    >>> net = simulate_chain(duration=40.0, random_state=0)
    >>> m = SpikeRateModel(max_epochs=2, random_state=0).fit(net.spike_times, t_stop=30.0)
    >>> first_stage(m).net_.pathways
    ('coupling', 'poprate')
    """
    import copy

    if not hasattr(model, "net_"):
        raise NotFittedError("this SpikeRateModel is not fitted yet; call fit first")
    keep = tuple(p for p in model.net_.pathways if p != "attention")
    glm = copy.deepcopy(model).set_params(pathways=keep)
    glm.net_.pathways = keep
    return glm


def co_smoothing(model: SpikeRateModel, spikes, held_out_units, train, test) -> xr.DataArray:
    """Held-in / held-out neuron co-smoothing: fit a clone of ``model`` whose inputs exclude
    ``held_out_units`` on ``train = (t0, t1)``, return per-unit bits/spike on ``test`` (attrs:
    ``held_out`` and ``held_in`` population values).

    The held-out units' own spikes never enter the model, so their predicted rates come from the
    held-in population only (the Neural Latents Benchmark protocol).
    """
    from sklearn.base import clone

    m = clone(model).set_params(held_out_units=list(held_out_units))
    m.fit(spikes, *train)
    eta, y, _ = m._forward(spikes, *test)
    lam = np.exp(eta)
    ho = np.isin(np.arange(len(m.units_)), [m.units_.index(u) for u in held_out_units])
    b = bits_per_spike(y, lam)
    da = xr.DataArray(b, dims=("unit",), coords={"unit": m.units_}, name="co_smoothing_bits")
    da.attrs["held_out"] = population_bits_per_spike(y[:, ho], lam[:, ho])
    da.attrs["held_in"] = population_bits_per_spike(y[:, ~ho], lam[:, ~ho])
    return da
