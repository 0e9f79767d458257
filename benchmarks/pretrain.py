"""Benchmark for neuroana.pretrain (Neuroformer-style pretraining).

    python benchmarks/pretrain.py --config cpu   # minutes on 2 CPU cores
    python benchmarks/pretrain.py --config gpu   # <= 5 min on one H100/H200 (needs CUDA)
    python benchmarks/pretrain.py --config cpu --sections finetune   # one section (hub, finetune, speed)

Reports, side by side in one run:
1. held-out log-likelihood per window (10-ms count matrix of the current window) of the token model
   vs a per-neuron-rate Poisson baseline vs a Poisson GLM on the same windows (simulated hub network);
2. hub-edge and excitatory-edge AUROC of the attention / ablation read-outs vs cross-correlation and
   the GLM (targets >= 0.95 and >= 0.8; the "meets" column says which read-out reaches both; the
   ablation read-out is the one the targets are claimed for);
3. behaviour decoding from 1 % / 10 % of labels: fine-tuned pretrained model (mode "full", the
   first ``ft_probe`` of its ``ft_iter`` iterations fit the head alone: LP-FT) vs the same
   architecture from scratch (all ``ft_iter`` iterations on everything), same labelled windows, head
   and budget, early stopping on the labelled block's last 20 %
   (:func:`neuroana.pretrain.finetune.few_shot`);
4. (GPU) training tokens/s of the ``base`` model in fp32 vs bf16 vs bf16 + compile, peak memory.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from neuroana.datasets.spiking_sim import simulate_hub_network, simulate_stimulus_population
from neuroana.pretrain import SpikeFormer, events_from_spike_times, window_ends
from neuroana.pretrain.finetune import few_shot
from neuroana.pretrain.readout import (
    ablation_connectivity,
    attention_connectivity,
    bin_spikes,
    crosscorr_connectivity,
    fit_poisson_glm,
    glm_connectivity,
    glm_window_loglik,
    rate_window_loglik,
)
from neuroana.pretrain.tokenize import TokenConfig

CONFIGS = {
    "cpu": dict(
        n_units=30,
        duration=600.0,
        max_iter=50,
        steps=25,
        batch=64,
        size="tiny",
        pop_units=30,
        pop_duration=400.0,
        pre_iter=40,
        ft_iter=15,
        ft_probe=5,
    ),
    "gpu": dict(
        n_units=60,
        duration=1200.0,
        max_iter=60,
        steps=50,
        batch=256,
        size="tiny",
        pop_units=60,
        pop_duration=600.0,
        pre_iter=60,
        ft_iter=15,
        ft_probe=5,
    ),
}


def _splits(duration, cfg: TokenConfig):
    """Contiguous 80/10/10 blocks on the 10-ms grid, guard gap = past + current window."""
    gap = cfg.window_past + cfg.window_cur
    a, b = 0.8 * duration, 0.9 * duration
    return (
        window_ends(0.0, a, cfg),
        window_ends(a + gap, b, cfg),
        window_ends(b + gap, duration - 0.1, cfg),  # behaviour samples end before `duration`
    )


def _auroc(C, pos, neg):
    s = np.asarray(C)
    return roc_auc_score(np.r_[np.ones(pos.sum()), np.zeros(neg.sum())], np.r_[s[pos], s[neg]])


def hub_section(c, device):
    net = simulate_hub_network(c["n_units"], 3, duration=c["duration"], random_state=0)
    ev = events_from_spike_times(net.spike_times, t_start=0.0, t_stop=c["duration"])
    cfg = TokenConfig()
    tr, va, te = _splits(c["duration"], cfg)
    t0 = time.perf_counter()
    m = SpikeFormer(
        c["size"],
        max_iter=c["max_iter"],
        steps_per_iter=c["steps"],
        batch_size=c["batch"],
        lr=2e-3,
        warmup=50,
        dropout=0.1,
        patience=6,
        device=device,
        random_state=0,
    ).fit(ev, train_ends=tr, val_ends=va)
    fit_s = time.perf_counter() - t0
    res = cfg.resolution
    counts = bin_spikes(net.spike_times, 0.0, c["duration"], res)
    k = np.round(te / res).astype(int)
    ll_model = m.log_likelihood(ev, te).values
    n_train = int(round(tr.max() / res))
    rate = counts[:n_train].mean(0)
    ll_rate = rate_window_loglik(rate, counts, k, cfg.n_dt)
    glm = fit_poisson_glm(counts[:n_train], n_lags=5, l2=1e-4)
    ll_glm = glm_window_loglik(glm, counts, k, cfg.n_dt)
    print(
        f"[hub] N={c['n_units']} duration={c['duration']} s, {len(tr)} train windows, "
        f"{m.n_parameters_} params, fit {fit_s:.0f} s ({m.n_iter_} it, {m.stop_reason_})"
    )
    print("held-out log-likelihood per window (nats, same test windows, 10-ms count matrix)")
    print(f"  per-neuron rate  {ll_rate.mean():9.4f}")
    print(
        f"  Poisson GLM      {ll_glm.mean():9.4f}   gain over rate {ll_glm.mean() - ll_rate.mean():+.4f}"
    )
    print(
        f"  token model      {ll_model.mean():9.4f}   gain over rate {ll_model.mean() - ll_rate.mean():+.4f}"
        f"   ({(ll_model.mean() - ll_rate.mean()) / (ll_glm.mean() - ll_rate.mean()):.2f} x GLM gain)"
    )
    W = net.weights.values
    off = ~np.eye(len(W), dtype=bool)
    hub, exc, none = net.hub_edge.values, (W > 0) & off, (W == 0) & off
    sub = te[:: max(1, len(te) // 1500)]
    reads = {
        "attention (last block)": attention_connectivity(m, ev, sub).values,
        "attention (all blocks)": attention_connectivity(m, ev, sub, blocks="all").values,
        "ablation": ablation_connectivity(m, ev, sub).values,
        "cross-correlation": crosscorr_connectivity(
            net.spike_times, t_start=0.0, t_stop=c["duration"]
        ).values,
        "Poisson GLM": glm_connectivity(
            net.spike_times, n_lags=5, t_start=0.0, t_stop=c["duration"]
        ).values,
    }
    print(f"  token model better than the per-neuron rate: {ll_model.mean() > ll_rate.mean()}")
    print(
        f"{'read-out':24s} {'AUROC hub':>10s} {'AUROC exc':>10s}   meets (hub >= 0.95 and exc >= 0.8)"
    )
    for name, C in reads.items():
        ah, ae = _auroc(C, hub, none), _auroc(C, exc, none)
        print(f"  {name:22s} {ah:10.3f} {ae:10.3f}   {'yes' if ah >= 0.95 and ae >= 0.8 else 'no'}")


def finetune_section(c, device):
    pop = simulate_stimulus_population(c["pop_units"], duration=c["pop_duration"], random_state=1)
    ev = events_from_spike_times(pop.spike_times, t_start=0.0, t_stop=c["pop_duration"])
    cfg = TokenConfig()
    tr, va, te = _splits(c["pop_duration"], cfg)
    pre = SpikeFormer(
        c["size"],
        max_iter=c["pre_iter"],
        steps_per_iter=c["steps"],
        batch_size=c["batch"],
        lr=2e-3,
        warmup=50,
        patience=6,
        device=device,
        random_state=0,
    ).fit(ev, train_ends=tr, val_ends=va)
    ds = few_shot(
        pre,
        ev,
        pop.behaviour,
        tr,
        te,
        fractions=(0.01, 0.1),
        seeds=(0, 1, 2),
        mode="full",
        probe_iter=c["ft_probe"],
        max_iter=c["ft_iter"],
        steps_per_iter=10,
        batch_size=32,
        device=device,
    )
    print(
        f"[few-shot] behaviour r on {len(te)} test windows (3 seeds), pretrained on "
        f"{len(tr)} unlabelled training windows ({pre.n_iter_} it, {pre.stop_reason_}); "
        f"mode={ds.attrs['mode']} after {c['ft_probe']} head-only iterations (LP-FT); both decoders: "
        f"same labelled block, same head, same budget ({c['ft_iter']} it), early stopping on the "
        "block's last 20 %"
    )
    print(f"  {'fraction':>8s} {'n fit':>6s} {'n val':>6s} {'fine-tuned':>10s} {'scratch':>8s}")
    for f in ds.fraction.values:
        d = ds.sel(fraction=f)
        rp, rs = d.r_pretrained.values, d.r_scratch.values
        print(
            f"  {f:8.2f} {int(d.n_fit[0]):6d} {int(d.n_val[0]):6d} {rp.mean():10.3f} "
            f"{rs.mean():8.3f}   per seed {np.round(rp, 3).tolist()} vs {np.round(rs, 3).tolist()}"
        )


def speed_section():
    from neuroana.pretrain.nn import ModelConfig, SpikeTransformer, n_parameters, token_logprob

    dev = torch.device("cuda")
    cfg = ModelConfig.from_size(
        "base", n_units=2000, n_dt=5, resolution=0.01, window_cur=0.05, window_past=0.15
    )
    B, Lc, Lp = 128, 100, 700
    g = torch.Generator(device=dev).manual_seed(0)
    batch = {
        "cur_unit": torch.randint(0, 2000, (B, Lc), device=dev, generator=g),
        "cur_bin": torch.sort(torch.randint(0, 5, (B, Lc), device=dev, generator=g), 1).values,
        "cur_len": torch.full((B,), Lc, device=dev),
        "past_unit": torch.randint(0, 2000, (B, Lp), device=dev, generator=g),
        "past_offset": -0.15 * torch.rand(B, Lp, device=dev, generator=g),
    }
    print(f"[speed] {torch.cuda.get_device_name()}: base model, batch {B}, Lc {Lc}, Lp {Lp}")
    rows = []
    for name, bf16, comp in (
        ("fp32", False, False),
        ("bf16", True, False),
        ("bf16+compile", True, True),
    ):
        torch.manual_seed(0)
        model = SpikeTransformer(cfg).to(dev)
        fwd = torch.compile(model) if comp else model
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        torch.cuda.reset_peak_memory_stats()

        def step(fwd=fwd, opt=opt, bf16=bf16):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                lp = token_logprob(fwd(batch), batch, cfg.n_dt)
                loss = -lp.logp.sum() / lp.valid.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        t0 = time.perf_counter()
        for _ in range(3):
            step()
        torch.cuda.synchronize()
        warm = time.perf_counter() - t0
        n = 20
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        torch.cuda.synchronize()
        dt = (time.perf_counter() - t0) / n
        tok = B * (Lc + 1 + Lp) / dt
        rows.append((name, dt, tok, torch.cuda.max_memory_allocated() / 2**30, warm))
        print(
            f"  {name:13s} params {n_parameters(model) / 1e6:.1f} M  {dt * 1e3:7.1f} ms/step  "
            f"{tok / 1e6:6.2f} M tokens/s  peak {rows[-1][3]:.1f} GiB  warm-up {warm:.1f} s  "
            f"speed-up vs fp32 {rows[0][1] / dt:.2f}x"
        )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", choices=sorted(CONFIGS), default="cpu")
    ap.add_argument("--sections", default="hub,finetune,speed")
    a = ap.parse_args()
    if a.config == "gpu" and not torch.cuda.is_available():
        print("no CUDA device: the gpu configuration is skipped")
        return
    device = "cuda" if a.config == "gpu" else "cpu"
    if device == "cpu":
        torch.set_num_threads(1)
    c = CONFIGS[a.config]
    t0 = time.perf_counter()
    secs = a.sections.split(",")
    if "hub" in secs:
        hub_section(c, device)
    if "finetune" in secs:
        finetune_section(c, device)
    if "speed" in secs and device == "cuda":
        speed_section()
    print(f"total {time.perf_counter() - t0:.0f} s")


# ----------------------------------------------------------------------------- run_all.py
def parse_rows(out: str) -> list:
    """This script's rows of the ``run_all.py`` summary table, read from its printed output."""
    import re

    from _table import NUM, Row, fmt, met, search  # benchmarks/ is on sys.path

    rate = float(search(rf"^\s+per-neuron rate\s+{NUM}", out, "rate LL").group(1))
    glm = float(search(rf"^\s+Poisson GLM\s+{NUM}", out, "GLM LL").group(1))
    tok = float(search(rf"^\s+token model\s+{NUM}", out, "token LL").group(1))
    rows = [
        Row(
            "pretrain",
            "held-out LL per window (nats)",
            "per-neuron-rate Poisson",
            fmt(tok, "", 3),
            fmt(rate, "", 3),
            f"{tok - rate:+.3f} nats ({(tok - rate) / (glm - rate):.2f}x GLM gain {glm - rate:+.3f})",
            "> rate baseline",
            met(tok > rate),
        )
    ]
    reads = {}
    for name in ("attention \\(all blocks\\)", "ablation", "cross-correlation", "Poisson GLM"):
        m = re.search(rf"^\s+({name})\s+{NUM}\s+{NUM}\s*$", out, re.M)
        if m:
            reads[m.group(1)] = (float(m.group(2)), float(m.group(3)))
    xc = reads.get("cross-correlation", (float("nan"),) * 2)
    for name in ("attention (all blocks)", "ablation"):
        if name not in reads:
            continue
        for i, (edge, need) in enumerate((("hub", 0.95), ("excitatory", 0.8))):
            v = reads[name][i]
            rows.append(
                Row(
                    "pretrain",
                    f"AUROC {edge} edges, {name}",
                    "cross-correlation",
                    fmt(v, "", 3),
                    fmt(xc[i], "", 3),
                    f"{v / xc[i]:.2f}x",
                    f">= {need}",
                    met(v >= need),
                )
            )
    return rows


if __name__ == "__main__":
    main()
