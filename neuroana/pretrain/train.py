"""Training core (AdamW, warm-up + cosine, clipping, bf16, compile, DDP) and the public estimator."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr
from sklearn.base import BaseEstimator

from neuroana.backend import FitResult, fit_loop, make_generators, resolve_device
from neuroana.pretrain.dataset import (
    WindowArrays,
    as_events,
    as_streams,
    build_windows,
    session_unit_index,
    to_batch,
)
from neuroana.pretrain.nn import (
    ModelConfig,
    SpikeTransformer,
    contrastive_loss,
    n_parameters,
    token_logprob,
)
from neuroana.pretrain.tokenize import (
    TokenConfig,
    TokenizeError,
    UnitVocab,
    modality_from_dataarray,
    split_windows,
)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of :func:`train_model`."""

    batch_size: int = 64
    max_iter: int = 50
    steps_per_iter: int = 20
    lr: float = 3e-4
    weight_decay: float = 0.05
    warmup: int = 50
    grad_clip: float = 1.0
    patience: int = 5
    precision: str = "auto"  # "auto" (bf16 on CUDA), "fp32", "bf16"
    compile: bool = False
    objective: str = "pretrain"  # or "behaviour"
    contrastive_weight: float = 0.0
    behaviour_weight: float = 0.0
    poisson_weight: float = 0.0
    seed: int = 0
    eval_batches: int = 8


def _lr_factor(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    prog = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * prog))


def _world():
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return dist, dist.get_rank(), dist.get_world_size()
    return None, 0, 1


def _allreduce(values: list[float], dist, device) -> list[float]:
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if dist is not None:
        dist.all_reduce(t)
    return t.tolist()


def batch_losses(model_fn, model, batch, tc: TrainConfig, past_keep=None):
    """Summed losses of one (local) batch: ``(loss_sum, n_units_of_loss, metrics)``."""
    out = model_fn(batch, past_keep=past_keep)
    n_dt = model.cfg.n_dt
    if tc.objective == "behaviour":
        err = (out.behaviour.float() - batch["behaviour"]) ** 2
        s = err.sum()
        return s, float(err.numel()), {"mse_sum": float(s.detach())}
    lp = token_logprob(out, batch, n_dt)
    nll = -lp.logp.sum()
    n = float(lp.valid.sum())
    loss = nll
    m = {"nll_sum": float(nll.detach())}
    B = batch["cur_len"].shape[0]
    if out.contrastive is not None and tc.contrastive_weight > 0 and B > 1:
        c = contrastive_loss(*out.contrastive)
        loss = loss + tc.contrastive_weight * c * n / B
        m["clip_sum"] = float(c.detach()) * B
    if out.behaviour is not None and tc.behaviour_weight > 0 and "behaviour" in batch:
        e = ((out.behaviour.float() - batch["behaviour"]) ** 2).mean(1).sum()
        loss = loss + tc.behaviour_weight * e * n / B
    if out.poisson_lograte is not None and tc.poisson_weight > 0:
        counts = _count_matrix(batch, n_dt, model.cfg.n_units)
        pl = F.poisson_nll_loss(out.poisson_lograte.float(), counts, log_input=True, full=True)
        loss = loss + tc.poisson_weight * pl * n
    return loss, n, m


def _count_matrix(batch, n_dt, n_units):
    cu, cb = batch["cur_unit"], batch["cur_bin"]
    B = cu.shape[0]
    c = torch.zeros(B, n_dt * n_units, device=cu.device)
    ok = cu >= 0
    c.scatter_add_(1, (cb * n_units + cu.clamp_min(0)) * ok, ok.float())
    return c.view(B, n_dt, n_units)


def train_model(
    model: SpikeTransformer,
    train: WindowArrays,
    val: WindowArrays,
    tc: TrainConfig,
    device: torch.device,
    *,
    params: list | None = None,
    checkpoint=None,
    resume: bool = False,
    verbose: bool = False,
    callbacks=(),
) -> FitResult:
    """Fit ``model`` with AdamW through :func:`neuroana.backend.fit_loop`.

    One fit-loop iteration is ``steps_per_iter`` optimiser steps followed by a held-out evaluation;
    early stopping on ``val_loss`` (token NLL per token, or behaviour MSE) is always on and the best
    weights are restored at the end. Batches of step ``s`` are drawn from a generator seeded by
    ``(seed, s)`` and dropout runs under a forked RNG seeded the same way, so a resumed run repeats an
    uninterrupted one exactly. Under ``torch.distributed`` (``torchrun``) the model is wrapped in DDP,
    each rank takes its share of the same global batch, and losses are normalised by the global token
    count, so the trajectory equals one process with the same global batch.
    """
    if len(train) == 0 or len(val) == 0:
        raise TokenizeError(
            f"need training and validation windows, got {len(train)} and {len(val)}"
        )
    dist, rank, world = _world()
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad] if params is None else params
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": tc.weight_decay},
            {"params": no_decay, "weight_decay": 0},
        ],
        lr=tc.lr,
        betas=(0.9, 0.95),
    )
    net = model
    if dist is not None:
        net = torch.nn.parallel.DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True,
        )
    fwd = torch.compile(net) if tc.compile else net

    def model_fn(batch, past_keep=None):
        return fwd(batch, past_keep=past_keep)

    use_bf16 = tc.precision == "bf16" or (tc.precision == "auto" and device.type == "cuda")
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16)
    total = tc.max_iter * tc.steps_per_iter
    state = {"step": 0}
    n_val = len(val)
    val_rng = np.random.default_rng([tc.seed, 10**6])
    val_idx = np.sort(val_rng.permutation(n_val)[: tc.eval_batches * tc.batch_size])

    def one_step(s: int) -> dict:
        rng = np.random.default_rng([tc.seed, s])
        gidx = rng.choice(len(train), size=min(tc.batch_size, len(train)), replace=False)
        idx = gidx[rank::world]
        batch = to_batch(train, idx, device)
        for g in opt.param_groups:
            g["lr"] = tc.lr * _lr_factor(s, tc.warmup, total)
        net.train()
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(tc.seed * 1_000_003 + s)
            with amp:
                loss_sum, n, m = batch_losses(model_fn, model, batch, tc)
            n_glob, *rest = _allreduce([n, *m.values()], dist, device)
            opt.zero_grad(set_to_none=True)
            (loss_sum * (world / n_glob)).backward()
        if tc.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, tc.grad_clip)
        opt.step()
        return {k.replace("_sum", ""): v / n_glob for k, v in zip(m, rest, strict=True)}

    @torch.no_grad()
    def evaluate() -> float:
        net.eval()
        sums = [0.0, 0.0]
        local = val_idx[rank::world]
        for i in range(0, len(local), tc.batch_size):
            b = to_batch(val, local[i : i + tc.batch_size], device)
            with amp:
                loss_sum, n, m = batch_losses(model_fn, model, b, tc)
            key = "mse_sum" if tc.objective == "behaviour" else "nll_sum"
            sums[0] += m[key]
            sums[1] += n
        tot, cnt = _allreduce(sums, dist, device)
        return tot / max(cnt, 1.0)

    def step(it: int) -> dict:
        ms = [one_step(state["step"] + j) for j in range(tc.steps_per_iter)]
        state["step"] += tc.steps_per_iter
        out = {k: float(np.mean([m[k] for m in ms])) for k in ms[0]}
        out["loss"] = out.get("mse", out.get("nll"))
        out["val_loss"] = evaluate()
        out["lr"] = opt.param_groups[0]["lr"]
        return out

    def get_state():
        return {"model": model.state_dict(), "opt": opt.state_dict(), "step": state["step"]}

    def set_state(s):
        model.load_state_dict(s["model"])
        opt.load_state_dict(s["opt"])
        state["step"] = int(s["step"])

    res = fit_loop(
        step,
        max_iter=tc.max_iter,
        monitor="loss",
        early_stop="val_loss",
        patience=tc.patience,
        get_state=get_state,
        set_state=set_state,
        checkpoint=checkpoint if rank == 0 else None,
        resume=resume,
        callbacks=callbacks,
        verbose=verbose and rank == 0,
        desc="pretrain" if tc.objective == "pretrain" else "finetune",
    )
    if res.best_state is not None:
        model.load_state_dict(res.best_state["model"])
    return res


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
    precision : {"auto", "fp32", "bf16"}
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
        precision: str = "auto",
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
        self.precision = precision
        self.compile = compile
        self.device = device
        self.random_state = random_state
        self.checkpoint = checkpoint
        self.resume = resume
        self.verbose = verbose
        self.session = session

    # ------------------------------------------------------------------ helpers
    def _train_config(self, seed: int, **kw) -> TrainConfig:
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision={self.precision!r}; expected 'auto', 'fp32' or 'bf16'")
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
                precision=self.precision,
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
        self.token_config_ = TokenConfig(
            self.window_cur,
            self.window_past,
            self.resolution,
            self.max_tokens_cur,
            self.max_tokens_past,
            self.overflow,
        )
        tc = self._train_config(seed)
        ev = as_events(spikes, session=self.session)
        self.vocab_ = UnitVocab()
        self.session_units_ = tuple(ev.unit_ids)
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
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model_ = SpikeTransformer(cfg)
        return tr, va

    def _init_untrained(self, spikes, behaviour, train_ends, device, seed):
        """Set up vocabulary and an untrained model (for training from scratch elsewhere)."""
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
        self._build(ev, None, behaviour, train_ends, None, seed, np.random.default_rng(seed))
        self.model_.to(device)
        self.device_ = device
        return self

    def _check(self):
        if not hasattr(self, "model_"):
            from sklearn.exceptions import NotFittedError

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
