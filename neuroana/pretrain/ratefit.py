"""The two fitting stages of :class:`~neuroana.pretrain.ratemodel.SpikeRateModel`.

1. :func:`fit_glm_stage`: the convex part (per-unit rate, spike-history coupling, population rate)
   by full-batch L-BFGS over blocks of bins, with an L2 penalty on the coupling kernels; for a
   sequence of penalties (strongest first, each warm-started from the last) the one with the best
   validation likelihood is kept. This is the package's coupled Poisson GLM.
2. :func:`fit_attention_stage`: the attention latent, trained by Adam on top of the frozen first
   stage (its log-rates are cached, so an epoch costs only the attention), early-stopped on the
   validation bins; the zero-initialised read-out means the first stage itself is the fallback.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from neuroana.backend import fit_loop


def pop_features(net, X: torch.Tensor) -> torch.Tensor:
    """Population-rate features ``(n_coarse, n_windows)`` of a whole recording ``X (T, N)``; row
    ``m`` uses coarse tokens ``< m`` (as :class:`RateNet` does inside a chunk)."""
    pop = net.tokens(X[None])[0].sum(-1)
    cs = torch.nn.functional.pad(pop.cumsum(0), (1, 0))
    m = torch.arange(len(pop), device=pop.device)
    return torch.stack([torch.log1p(cs[m] - cs[(m - w).clamp_min(0)]) for w in net.pop_windows], 1)


def _eta_glm(net, H, P, rows: slice, c: int) -> torch.Tensor:
    a, b = rows.start, rows.stop
    N = net.n_units
    eta = net.bias.expand(b - a, N)
    if "coupling" in net.pathways:
        eta = eta + H[a:b].reshape(b - a, -1) @ net.coupling.reshape(N, -1).T
    if "poprate" in net.pathways:
        eta = eta + net.pop(P[torch.arange(a, b, device=P.device) // c])
    return eta


def fit_glm_stage(
    net, H, P, Y, train: slice, val: slice, l2s, *, max_iter=200, block=32768, verbose=True
):
    """Fit bias / coupling / population weights of ``net`` in place; returns a history dict.

    ``H (T, N, K)`` history features (float32), ``P`` population features per coarse bin, ``Y (T,
    N)`` counts; ``train`` / ``val`` row ranges; ``l2s`` penalties tried strongest first.
    """
    c = net.coarse
    params = [net.bias]
    if "coupling" in net.pathways:
        params.append(net.coupling)
    if "poprate" in net.pathways:
        params.append(net.pop.weight)
    n_tr = train.stop - train.start
    blocks = [slice(a, min(train.stop, a + block)) for a in range(train.start, train.stop, block)]

    def nll(rows):
        eta = _eta_glm(net, H, P, rows, c)
        return (eta.exp() - Y[rows] * eta).sum()

    def val_nll():
        with torch.no_grad():
            vb = [slice(a, min(val.stop, a + block)) for a in range(val.start, val.stop, block)]
            return float(sum(nll(r) for r in vb)) / max(1, val.stop - val.start)

    hist = {"l2": [], "val_nll": [], "n_iter": []}
    best = None
    for l2 in l2s:
        opt = torch.optim.LBFGS(
            params,
            lr=1.0,
            max_iter=20,
            history_size=20,
            line_search_fn="strong_wolfe",
            tolerance_change=1e-10,
            tolerance_grad=1e-9,
        )

        def closure(l2=l2, opt=opt):
            opt.zero_grad()
            tot = 0.0
            for r in blocks:
                loss = nll(r) / n_tr
                loss.backward()
                tot += float(loss.detach())
            if "coupling" in net.pathways:
                pen = l2 * (net.coupling**2).sum() / n_tr
                pen.backward()
                tot += float(pen.detach())
            return torch.tensor(tot)

        def step(it, opt=opt, closure=closure):
            return {"loss": float(opt.step(closure))}

        res = fit_loop(
            step,
            max_iter=max(1, max_iter // 20),
            tol=1e-6,
            monitor="loss",
            min_iter=2,
            verbose=verbose,
            desc=f"SpikeRateModel GLM stage (l2={l2:g})",
        )
        v = val_nll() if val.stop > val.start else -float(res.history["loss"].values[-1])
        hist["l2"].append(float(l2))
        hist["val_nll"].append(v)
        hist["n_iter"].append(int(res.n_iter))
        if best is None or v < best[0]:
            best = (v, float(l2), [p.detach().clone() for p in params])
    with torch.no_grad():
        for p, q in zip(params, best[2], strict=True):
            p.copy_(q)
    hist["l2_chosen"] = best[1]
    return hist


def fit_attention_stage(
    net,
    X,
    eta0,
    Y,
    train_starts,
    val_starts,
    ctx,
    n_chunk,
    *,
    lr,
    batch_size,
    max_epochs,
    patience,
    rng,
    verbose=True,
):
    """Train the attention pathway on top of cached first-stage log-rates ``eta0 (T, N)``."""
    L = ctx + n_chunk
    c, m0 = net.coarse, net.n_context
    params = [
        p
        for n, p in net.named_parameters()
        if n.split(".")[0] in ("embed", "block", "ln_z", "readout")
    ]
    opt = torch.optim.Adam(params, lr=lr)

    def nll(idx):
        xb = torch.stack([X[s : s + L] for s in idx])
        e0 = torch.stack([eta0[s + ctx : s + L] for s in idx])
        yb = torch.stack([Y[s + ctx : s + L] for s in idx])
        z = net.latent(xb)[:, m0 - 1 : -1]
        eta = e0 + net.readout(z).repeat_interleave(c, dim=1)
        return (eta.exp() - yb * eta).sum(-1).mean()

    def val_nll():
        with torch.no_grad():
            return sum(
                float(nll(val_starts[k : k + 32])) * len(val_starts[k : k + 32])
                for k in range(0, len(val_starts), 32)
            ) / max(1, len(val_starts))

    def step(it):
        f = 0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * min(1.0, it / max(1, max_epochs - 1))))
        for g in opt.param_groups:
            g["lr"] = lr * f
        order = rng.permutation(train_starts)
        tot = 0.0
        for k in range(0, len(order), batch_size):
            idx = order[k : k + batch_size]
            loss = nll(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(idx)
        out = {"loss": tot / len(order)}
        if len(val_starts):
            out["val_nll"] = val_nll()
        return out

    def state():
        return {k: v.detach().clone() for k, v in net.state_dict().items()}

    v0 = val_nll() if len(val_starts) else None
    s0 = state()
    res = fit_loop(
        step,
        max_iter=max_epochs,
        monitor="loss",
        early_stop="val_nll" if len(val_starts) else None,
        patience=patience,
        get_state=state,
        set_state=net.load_state_dict,
        verbose=verbose,
        desc="SpikeRateModel attention stage",
    )
    if res.best_state is not None:
        net.load_state_dict(res.best_state)
    if v0 is not None and float(np.nanmin(res.history["val_nll"].values)) >= v0:
        net.load_state_dict(s0)  # attention did not help on validation: keep the first stage
    return res, v0


def cached_eta(net, H, P, rows: slice, block: int = 65536) -> torch.Tensor:
    """First-stage log-rates for ``rows`` (no grad)."""
    out = torch.empty(rows.stop - rows.start, net.n_units, device=net.bias.device)
    with torch.no_grad():
        for a in tqdm(range(rows.start, rows.stop, block), disable=True):
            b = min(rows.stop, a + block)
            out[a - rows.start : b - rows.start] = _eta_glm(net, H, P, slice(a, b), net.coarse)
    return out
