"""Training core of the spike-token model: AdamW, warm-up + cosine, clipping, bf16 autocast on
CUDA, opt-in compile, DDP, through the shared fit loop (the estimators are in
:mod:`neuroana.pretrain.estimator`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from neuroana.backend import FitResult, fit_loop, seeded_default_generator
from neuroana.pretrain.dataset import WindowArrays, to_batch
from neuroana.pretrain.nn import SpikeTransformer, contrastive_loss, token_logprob
from neuroana.pretrain.tokenize import TokenizeError

#: working precisions of the token model (``dtype``): bfloat16 autocast runs on CUDA only
DTYPES = ("float32", "bfloat16")


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
    dtype: str = "float32"  # or "bfloat16" (autocast on CUDA; the CPU always runs float32)
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
    ``(seed, s)`` and dropout runs under torch's default generator seeded the same way (and restored
    afterwards), so a resumed run repeats an
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

    use_bf16 = tc.dtype == "bfloat16" and device.type == "cuda"
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
        with seeded_default_generator(tc.seed * 1_000_003 + s, device):  # dropout
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


def set_trainable(model: SpikeTransformer, mode: str, k: int, *, grow_units: bool) -> None:
    """Freeze ``model`` except what ``mode`` trains (the behaviour head always; new units' embeddings).

    ``mode``: ``"probe"`` (the head only), ``"last_k"`` (the head, the last ``k`` blocks and the
    final norm) or ``"full"`` (everything).
    """
    model.requires_grad_(mode == "full")
    model.behaviour_head.requires_grad_(True)
    if mode == "last_k":
        for blk in list(model.blocks)[-max(1, int(k)) :]:
            blk.requires_grad_(True)
        model.ln_f.requires_grad_(True)
    if grow_units:
        model.unit_emb.requires_grad_(True)


def best_val_loss(res: FitResult) -> float:
    """The lowest held-out loss of a training run."""
    return float(np.nanmin(res.history["val_loss"].values))
