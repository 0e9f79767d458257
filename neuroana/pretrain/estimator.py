"""The scikit-learn estimators of :mod:`neuroana.pretrain`.

- :class:`SpikeFormer`: Neuroformer-style generative pretraining on spike tokens (the training core
  is :mod:`neuroana.pretrain.train`, the network :mod:`neuroana.pretrain.nn`);
- :class:`TokenBehaviourDecoder`: behaviour decoding from a pretrained (or fresh) token model;
- :class:`~neuroana.pretrain.ratemodel.SpikeRateModel` and
  :class:`~neuroana.pretrain.decode.BehaviourDecoder` (the rate model the analysis registry runs,
  and its ridge read-out) are defined beside their cores and re-exported here, so every estimator
  of the package is importable from this module.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch
import xarray as xr
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from neuroana.backend import make_generators, resolve_device, seeded_default_generator
from neuroana.errors import PretrainInputError
from neuroana.pretrain.dataset import (
    as_events,
    as_streams,
    build_windows,
    session_unit_index,
    to_batch,
)
from neuroana.pretrain.decode import BehaviourDecoder
from neuroana.pretrain.modality import behaviour_targets, modality_from_dataarray
from neuroana.pretrain.nn import ModelConfig, SpikeTransformer, n_parameters, token_logprob
from neuroana.pretrain.ratemodel import SpikeRateModel
from neuroana.pretrain.splits import split_windows
from neuroana.pretrain.tokenize import TokenConfig, UnitVocab
from neuroana.pretrain.train import (
    DTYPES,
    TrainConfig,
    best_val_loss,
    set_trainable,
    train_model,
)

__all__ = ["BehaviourDecoder", "SpikeFormer", "SpikeRateModel", "TokenBehaviourDecoder"]

#: fine-tuning modes of :class:`TokenBehaviourDecoder`
MODES = ("probe", "last_k", "full")


class SpikeFormer(BaseEstimator):
    """Neuroformer-style generative pretraining on spike tokens.

    Spikes become (unit, time-bin) tokens of a current window, predicted autoregressively from a past
    window and optional stimulus streams; early stopping on held-out token NLL is always on.

    Parameters
    ----------
    size : {"tiny", "base", "large"}
        Model size (``base`` is ~19 M parameters).
    window_cur, window_past, resolution : float
        Seconds (paper defaults 0.05, 0.15, 0.01).
    max_tokens_cur, max_tokens_past : int
        Stream capacities; ``overflow`` says what happens beyond.
    overflow : {"drop_oldest", "drop_random", "error"}
    max_iter, steps_per_iter, batch_size, lr, weight_decay, warmup, grad_clip, patience
        Optimisation (one iteration = ``steps_per_iter`` AdamW steps + a held-out evaluation).
    dropout : float
    contrastive_weight, behaviour_weight : float
        Weights of the symmetric InfoNCE (neural vs stimulus) and of the behaviour regression loss.
    poisson_head : bool
        Add a Poisson count head (read from the start token).
    split_fractions : tuple
        (train, val, test) time fractions when ``fit`` is not given window ends.
    dtype : {"float32", "bfloat16"}
        Working precision of training: ``"bfloat16"`` trains (and computes the held-out loss)
        under bf16 autocast on CUDA; on the CPU, and at inference, the model runs in float32.
    compile : bool
        Opt-in ``torch.compile``.
    device : str
    random_state : int or None
    checkpoint : path or None; resume : bool
    verbose : bool
    session : str
        Session name used in the unit vocabulary keys.

    Attributes
    ----------
    model_ : SpikeTransformer
    vocab_ : UnitVocab
    token_config_ : TokenConfig
    history_ : xarray.Dataset
    split_ : Split or None
    n_parameters_ : int

    Examples
    --------
    >>> from neuroana.datasets.spiking_sim import simulate_chain
    >>> from neuroana.pretrain import SpikeFormer
    >>> sim = simulate_chain(duration=60.0, random_state=0)
    >>> m = SpikeFormer(max_iter=2, steps_per_iter=2, random_state=0).fit(sim.spike_times)
    >>> m.history_.sizes["iteration"]
    2
    """

    def __init__(
        self,
        size: str = "tiny",
        *,
        window_cur: float = 0.05,
        window_past: float = 0.15,
        resolution: float = 0.01,
        max_tokens_cur: int = 64,
        max_tokens_past: int = 192,
        overflow: str = "drop_oldest",
        max_iter: int = 50,
        steps_per_iter: int = 20,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 0.05,
        warmup: int = 50,
        grad_clip: float = 1.0,
        patience: int = 5,
        dropout: float = 0.1,
        contrastive_weight: float = 0.1,
        behaviour_weight: float = 0.0,
        poisson_head: bool = False,
        split_fractions: tuple = (0.8, 0.1, 0.1),
        dtype: str = "float32",
        compile: bool = False,
        device: str = "auto",
        random_state: int | None = None,
        checkpoint=None,
        resume: bool = False,
        verbose: bool = False,
        session: str = "session0",
    ):
        self.size = size
        self.window_cur = window_cur
        self.window_past = window_past
        self.resolution = resolution
        self.max_tokens_cur = max_tokens_cur
        self.max_tokens_past = max_tokens_past
        self.overflow = overflow
        self.max_iter = max_iter
        self.steps_per_iter = steps_per_iter
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup = warmup
        self.grad_clip = grad_clip
        self.patience = patience
        self.dropout = dropout
        self.contrastive_weight = contrastive_weight
        self.behaviour_weight = behaviour_weight
        self.poisson_head = poisson_head
        self.split_fractions = split_fractions
        self.dtype = dtype
        self.compile = compile
        self.device = device
        self.random_state = random_state
        self.checkpoint = checkpoint
        self.resume = resume
        self.verbose = verbose
        self.session = session

    # ------------------------------------------------------------------ helpers
    def _train_config(self, seed: int, **kw) -> TrainConfig:
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype={self.dtype!r}; expected one of {DTYPES}")
        for name in ("max_iter", "steps_per_iter", "batch_size", "patience"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        return replace(
            TrainConfig(
                batch_size=self.batch_size,
                max_iter=self.max_iter,
                steps_per_iter=self.steps_per_iter,
                lr=self.lr,
                weight_decay=self.weight_decay,
                warmup=self.warmup,
                grad_clip=self.grad_clip,
                patience=self.patience,
                dtype=self.dtype,
                compile=self.compile,
                contrastive_weight=self.contrastive_weight,
                behaviour_weight=self.behaviour_weight,
                poisson_weight=1.0 if self.poisson_head else 0.0,
                seed=seed,
            ),
            **kw,
        )

    def _windows(self, spikes, t_end, stimulus=None, behaviour=None, *, grow=False, rng=None):
        ev = as_events(spikes, session=self.session)
        idx = session_unit_index(ev, self.vocab_, grow)
        streams = as_streams(stimulus)
        names = [s.name for s in streams]
        if hasattr(self, "modality_names_") and names != self.modality_names_:
            raise ValueError(
                f"stimulus streams {names} differ from those seen in fit {self.modality_names_}"
            )
        beh = None if behaviour is None else modality_from_dataarray(behaviour, "behaviour")
        return build_windows(
            ev, np.asarray(t_end, float), self.token_config_, idx, streams, beh, rng
        )

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        spikes,
        *,
        stimulus=None,
        behaviour=None,
        train_ends=None,
        val_ends=None,
        callbacks=(),
    ) -> SpikeFormer:
        """Pretrain on ``spikes`` (dict unit -> times, binned DataArray or SpikeEvents).

        Parameters
        ----------
        spikes : mapping, xarray.DataArray or SpikeEvents
        stimulus : dict name -> DataArray(time[, feature]), optional
            Extra token streams at their own rates (contrastive target when weighted).
        behaviour : DataArray(time[, feature]), optional
            Regression target (with ``behaviour_weight > 0``); NaN raises.
        train_ends, val_ends : array, optional
            Window ends; by default time is split by :func:`split_windows` with guard gaps.
        callbacks : sequence
            Passed to the fit loop.

        Returns
        -------
        self
        """
        device = resolve_device(self.device)
        rng, _ = make_generators(self.random_state)
        seed = int(rng.integers(0, 2**31))
        tc = self._train_config(seed)
        ev = self._start(spikes)
        if train_ends is None or val_ends is None:
            self.split_ = split_windows(
                ev.t_start,
                ev.t_stop,
                self.token_config_,
                fractions=self.split_fractions,
                random_state=seed,
            )
            train_ends, val_ends = self.split_.train, self.split_.val
        else:
            self.split_ = None
        tr, va = self._build(ev, stimulus, behaviour, train_ends, val_ends, seed, rng)
        self.n_parameters_ = n_parameters(self.model_)
        self.n_dropped_ = int((tr.arrays["cur_len"] >= self.max_tokens_cur).sum())
        res = train_model(
            self.model_,
            tr,
            va,
            tc,
            device,
            checkpoint=self.checkpoint,
            resume=self.resume,
            verbose=self.verbose,
            callbacks=callbacks,
        )
        self.model_.eval()
        self.history_ = res.history
        self.n_iter_ = res.n_iter
        self.stop_reason_ = res.stop_reason
        self.best_iteration_ = res.best_iteration
        self.device_ = device
        return self

    def _build(self, ev, stimulus, behaviour, train_ends, val_ends, seed, rng):
        """Vocabulary, modality names, window arrays and a freshly initialised model."""
        streams = as_streams(stimulus)
        self.modality_names_ = [s.name for s in streams]
        tr = self._windows(ev, train_ends, stimulus, behaviour, grow=True, rng=rng)
        va = (
            self._windows(ev, val_ends, stimulus, behaviour, rng=rng)
            if val_ends is not None
            else None
        )
        beh_dim = tr.arrays["behaviour"].shape[1] if "behaviour" in tr.arrays else 0
        cfg = ModelConfig.from_size(
            self.size,
            n_units=len(self.vocab_),
            n_dt=self.token_config_.n_dt,
            resolution=self.resolution,
            window_cur=self.window_cur,
            window_past=self.window_past,
            dropout=self.dropout,
            modality_dims=tuple((s.name, s.values.shape[1]) for s in streams),
            behaviour_dim=beh_dim,
            poisson_head=self.poisson_head,
        )
        with seeded_default_generator(seed):  # weight initialisation
            self.model_ = SpikeTransformer(cfg)
        return tr, va

    def _start(self, spikes):
        """Token geometry, an empty vocabulary and the session's units: the events of ``spikes``."""
        self.token_config_ = TokenConfig(
            self.window_cur,
            self.window_past,
            self.resolution,
            self.max_tokens_cur,
            self.max_tokens_past,
            self.overflow,
        )
        ev = as_events(spikes, session=self.session)
        self.vocab_ = UnitVocab()
        self.session_units_ = tuple(ev.unit_ids)
        return ev

    def _init_untrained(self, spikes, behaviour, train_ends, device, seed):
        """Set up vocabulary and an untrained model (for training from scratch elsewhere)."""
        ev = self._start(spikes)
        self._build(ev, None, behaviour, train_ends, None, seed, np.random.default_rng(seed))
        self.model_.to(device)
        self.device_ = device
        return self

    def _check(self):
        if not hasattr(self, "model_"):
            raise NotFittedError("this SpikeFormer is not fitted yet; call fit first")

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def _apply(self, spikes, t_end, stimulus, fn: Callable, batch_size=256, past_keep=None):
        self._check()
        w = self._windows(spikes, t_end, stimulus)
        self.model_.eval()
        outs = []
        for i in range(0, len(w), batch_size):
            idx = np.arange(i, min(i + batch_size, len(w)))
            b = to_batch(w, idx, self.device_)
            outs.append(fn(self.model_(b), b))
        return w, outs

    def log_likelihood(self, spikes, t_end, *, stimulus=None) -> xr.DataArray:
        """Log-likelihood (nats) of each window's current tokens incl. the end token.

        With the canonical token order this is the log-probability of the window's count matrix at
        ``resolution``, comparable with a Poisson GLM on the same bins.

        Returns
        -------
        xarray.DataArray, dims ("window",), coordinate ``t_end``

        Raises
        ------
        UnknownUnitError
            When ``spikes`` holds units the model has not seen.
        """
        n_dt = self.token_config_.n_dt if hasattr(self, "token_config_") else 0
        w, outs = self._apply(
            spikes, t_end, stimulus, lambda o, b: token_logprob(o, b, n_dt).logp.sum(1).cpu()
        )
        ll = torch.cat(outs).numpy().astype(float)
        return xr.DataArray(
            ll,
            dims=("window",),
            coords={"t_end": ("window", w.arrays["t_end"])},
            name="log_likelihood",
        )

    def transform(self, spikes, t_end, *, stimulus=None) -> xr.DataArray:
        """Pooled final states of each window, ``DataArray(("window", "feature"))``."""
        w, outs = self._apply(spikes, t_end, stimulus, lambda o, b: o.pooled.float().cpu())
        z = torch.cat(outs).numpy()
        return xr.DataArray(
            z,
            dims=("window", "feature"),
            coords={"t_end": ("window", w.arrays["t_end"])},
            name="embedding",
        )


class TokenBehaviourDecoder(BaseEstimator):
    """Decode behaviour at each window end from a (pretrained or fresh) spike-token model.

    Parameters
    ----------
    pretrained : SpikeFormer or None
        A fitted model to start from; None trains from scratch (same architecture as ``template``).
    mode : {"probe", "last_k", "full"}
        Train only the new regression head, the head and the last ``k`` blocks, or everything.
        Unit embeddings of units new to the vocabulary are always trained.
    k : int
        Blocks unfrozen in ``last_k`` mode.
    template : SpikeFormer, optional
        Unfitted settings for the from-scratch model (default: ``SpikeFormer()``).
    max_iter, steps_per_iter, batch_size, lr, patience : optimisation
    probe_iter : int
        Of the ``max_iter`` iterations, how many fit only the new head on the frozen pretrained
        backbone before ``mode``'s parameters are unfrozen (linear probe, then fine-tune, "LP-FT":
        the backbone is not pushed around by a random head's gradients). The total budget stays
        ``max_iter``; the better of the two phases on the validation windows is kept. Ignored when
        training from scratch or in ``probe`` mode.
    dtype : {"float32", "bfloat16"}
        Working precision (``"bfloat16"``: bf16 autocast on CUDA; the CPU runs float32).
    device, random_state, verbose

    Examples
    --------
    >>> from neuroana.datasets.spiking_sim import simulate_stimulus_population
    >>> from neuroana.pretrain import TokenBehaviourDecoder
    >>> from neuroana.pretrain import TokenConfig, events_from_spike_times, split_windows
    >>> pop = simulate_stimulus_population(8, duration=30.0, random_state=0)
    >>> ev = events_from_spike_times(pop.spike_times, t_start=0.0, t_stop=30.0)
    >>> s = split_windows(0.0, 29.9, TokenConfig())
    >>> dec = TokenBehaviourDecoder(max_iter=1, steps_per_iter=2, random_state=0)
    >>> dec = dec.fit(ev, pop.behaviour, s.train, s.val)
    >>> dec.predict(ev, s.test).dims
    ('window', 'feature')
    """

    def __init__(
        self,
        pretrained: SpikeFormer | None = None,
        *,
        mode: str = "full",
        k: int = 1,
        template: SpikeFormer | None = None,
        max_iter: int = 30,
        steps_per_iter: int = 10,
        batch_size: int = 64,
        lr: float = 1e-3,
        patience: int = 5,
        probe_iter: int = 0,
        dtype: str = "float32",
        device: str = "auto",
        random_state: int | None = None,
        verbose: bool = False,
    ):
        self.pretrained = pretrained
        self.mode = mode
        self.k = k
        self.template = template
        self.max_iter = max_iter
        self.steps_per_iter = steps_per_iter
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.probe_iter = probe_iter
        self.dtype = dtype
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, spikes, behaviour, train_ends, val_ends) -> TokenBehaviourDecoder:
        """Fit on the windows ending at ``train_ends`` (early stopping on ``val_ends``).

        Raises
        ------
        ValueError
            On an unknown ``mode`` or ``dtype``.
        PretrainInputError
            On empty window sets; :class:`~neuroana.errors.TokenizeError` (a subclass) on bad
            spikes or behaviour (NaN, inf, windows outside the data).
        """
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r}; expected one of {MODES}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype={self.dtype!r}; expected one of {DTYPES}")
        if np.size(train_ends) == 0 or np.size(val_ends) == 0:
            raise PretrainInputError(
                "train_ends and val_ends must each hold at least one window end"
            )
        device = resolve_device(self.device)
        rng, _ = make_generators(self.random_state)
        seed = int(rng.integers(0, 2**31))
        if self.pretrained is not None:
            self.pretrained._check()
            base = copy.copy(self.pretrained)
            base.model_ = copy.deepcopy(self.pretrained.model_).to(device)
            base.vocab_ = copy.deepcopy(self.pretrained.vocab_)
            base.device_ = device
            from_scratch = False
        else:
            base = copy.deepcopy(self.template) if self.template is not None else SpikeFormer()
            base.set_params(
                max_iter=1,
                steps_per_iter=1,
                device=str(device),
                verbose=False,
                random_state=seed,
                checkpoint=None,
            )
            from_scratch = True
        n_before = len(base.vocab_) if not from_scratch else 0
        if from_scratch:
            base._init_untrained(spikes, behaviour, train_ends, device, seed)
        ev = as_events(spikes, session=base.session)
        base.vocab_.extend(ev.keys)
        model = base.model_
        model.grow_units(len(base.vocab_) - model.n_units)
        tr = base._windows(spikes, train_ends, behaviour=behaviour, grow=False, rng=rng)
        va = base._windows(spikes, val_ends, behaviour=behaviour, grow=False, rng=rng)
        dim = tr.arrays["behaviour"].shape[1]
        d = model.cfg.d_model
        with seeded_default_generator(seed):
            model.behaviour_head = torch.nn.Linear(d, dim).to(device)
        tc = TrainConfig(
            batch_size=self.batch_size,
            max_iter=self.max_iter,
            steps_per_iter=self.steps_per_iter,
            lr=self.lr,
            warmup=10,
            patience=self.patience,
            objective="behaviour",
            dtype=self.dtype,
            seed=seed,
        )
        n_probe = int(self.probe_iter)
        if n_probe < 0 or n_probe >= self.max_iter:
            raise ValueError(
                f"probe_iter={self.probe_iter!r}; expected 0 <= probe_iter < max_iter={self.max_iter}"
            )
        if from_scratch or self.mode == "probe":
            n_probe = 0
        results = []
        if n_probe:  # LP-FT: fit the head on the frozen backbone, then fine-tune from there
            set_trainable(model, "probe", 1, grow_units=len(base.vocab_) > n_before)
            trainable = [p for p in model.parameters() if p.requires_grad]
            tc1 = replace(tc, max_iter=n_probe, seed=seed + 1)
            results.append(train_model(model, tr, va, tc1, device, params=trainable))
            tc = replace(tc, max_iter=self.max_iter - n_probe)
        mode = "full" if from_scratch else self.mode
        set_trainable(model, mode, self.k, grow_units=len(base.vocab_) > n_before)
        trainable = [p for p in model.parameters() if p.requires_grad]
        probe_state = copy.deepcopy(model.state_dict()) if n_probe else None
        res = train_model(model, tr, va, tc, device, params=trainable, verbose=self.verbose)
        results.append(res)
        if n_probe and best_val_loss(results[0]) < best_val_loss(
            res
        ):  # fine-tuning never beat the probe
            model.load_state_dict(probe_state)
        history = xr.concat([r.history for r in results], dim="iteration")
        history["iteration"] = np.arange(history.sizes["iteration"])
        self.n_probe_iter_ = results[0].n_iter if n_probe else 0
        model.eval()
        self.model_ = model
        self.base_ = base
        self.history_ = history
        self.n_iter_ = sum(r.n_iter for r in results)
        return self

    @torch.no_grad()
    def predict(self, spikes, t_end) -> xr.DataArray:
        """Predicted behaviour at each window end, ``DataArray(("window", "feature"))``."""
        if not hasattr(self, "model_"):
            raise NotFittedError("this TokenBehaviourDecoder is not fitted yet; call fit first")
        w = self.base_._windows(spikes, t_end)
        out = []
        for i in range(0, len(w), 256):
            b = to_batch(w, np.arange(i, min(i + 256, len(w))), self.base_.device_)
            out.append(self.model_(b).behaviour.float().cpu())
        y = torch.cat(out).numpy()
        return xr.DataArray(
            y,
            dims=("window", "feature"),
            coords={"t_end": ("window", w.arrays["t_end"])},
            name="behaviour",
        )

    def score(self, spikes, behaviour, t_end) -> float:
        """R² of predicted vs true behaviour (mean over features); Pearson r: :func:`pearson_r`."""
        from neuroana.pretrain.decode import r2_score

        y = behaviour_targets(modality_from_dataarray(behaviour, "behaviour"), np.asarray(t_end))
        p = self.predict(spikes, t_end).values
        return float(np.mean([r2_score(y[:, j], p[:, j]) for j in range(y.shape[1])]))
