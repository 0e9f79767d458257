"""Benchmark for neuroana.pretrain: the pretrained rate model beside the simple baselines.

    python benchmarks/pretrain.py                       # public case + two simulated networks, CPU
    python benchmarks/pretrain.py --sections case       # one section (case, sim, ablation)
    python benchmarks/pretrain.py --config gpu          # same, on CUDA where available

Everything runs with the package's defaults (``SpikeRateModel()``, ``BehaviourDecoder(model)``),
fits on the first 80 % of each recording and scores the last 20 %:

1. ``case``: ../shared/cases/spiking_networks (made by an independent simulator; truth.json only
   scores). Held-out bits/spike of the model vs the package's coupled GLM (``coupled_glm()``) vs
   the reference GLM in truth.json; connectivity read-outs on held-out windows (model ablation,
   package GLM, cross-correlogram, truth.json's CCG and GLM); speed decoding R² and 1 % / 10 %
   few-shot vs the package's ridge (counts t-4..t+4), truth.json's ridge and the same decoder on an
   untrained model ("scratch").
2. ``sim``: the same on two networks from ``simulate_realistic_network`` with other sizes (a hub
   network and a speed-tuned one), baselines computed by the package.
3. ``ablation``: what each pathway buys (bits/spike on the public hub network).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from neuroana.pretrain import (
    BehaviourDecoder,
    SpikeRateModel,
    compare_connectivity,
    coupled_glm,
    few_shot,
)
from neuroana.pretrain.connectivity import score_readout

REPO = Path(__file__).resolve().parents[1]
CASE = REPO.parent / "shared" / "cases" / "spiking_networks"


def split(duration: float):
    return (0.0, 0.8 * duration), (0.8 * duration, duration)


def connectivity(sp, model, glm, train, test, edge_type, hubs, extra=None):
    ds = compare_connectivity(sp, {"model": model, "glm": glm}, *test, verbose=False)
    print("  read-outs on held-out windows  hub_AUROC  exc_AUROC  fwd>rev  hubs_on_top  top_units")
    for meth in ds.method.values:
        r = score_readout(ds.score.sel({"method": meth}), edge_type, hubs)
        print(
            f"    {meth:<28s} {r.get('hub_auroc', np.nan):9.4f}  {r['exc_auroc']:9.4f}  "
            f"{r.get('forward_gt_reverse', np.nan):7.3f}  {str(r['hubs_on_top']):>11s}  {r['top_units']}"
        )
    for name, r in (extra or {}).items():
        print(
            f"    {name:<28s} {r.get('hub_edges_auroc', np.nan):9.4f}  "
            f"{r['excitatory_edges_auroc']:9.4f}  {r.get('hub_edges_forward_gt_reverse_fraction', np.nan):7.3f}"
            f"  {'':>11s}  {r.get('top3_units_by_outgoing_score', '')}"
        )


def likelihood(sp, train, test, ref=None):
    t = time.perf_counter()
    model = SpikeRateModel(verbose=False).fit(sp, *train)
    fit_s = time.perf_counter() - t
    glm = coupled_glm(verbose=False).fit(sp, *train)
    print(
        f"  held-out bits/spike over a per-unit rate (model fit {fit_s:.0f} s, {model.n_epochs_} epochs)"
    )
    print(f"    model (default)              {model.score(sp, *test):.4f}")
    print(f"    package coupled GLM          {glm.score(sp, *test):.4f}")
    if ref is not None:
        print(f"    reference GLM (truth.json)   {ref:.4f}")
    return model, glm


def decoding(sp, speed, model, train, test, ridge_ref=None):
    dec = BehaviourDecoder(model).fit(sp, speed, *train)
    ridge = BehaviourDecoder().fit(sp, speed, *train)
    print("  speed decoding, held-out R²")
    print(f"    model latent + counts        {dec.score(sp, speed, *test):.4f}")
    print(f"    package ridge t-4..t+4       {ridge.score(sp, speed, *test):.4f}")
    if ridge_ref is not None:
        print(f"    truth.json ridge t-4..t+4    {ridge_ref['test_r2']:.4f}")
    scratch = SpikeRateModel(max_epochs=0, verbose=False).fit(sp, *train)
    fs = few_shot(dec, sp, speed, train, test, scratch=scratch)
    print(
        "  few-shot (10 blocks), held-out R²: share  pretrained  scratch  ridge"
        + ("  truth_ridge" if ridge_ref else "")
    )
    for s in fs.share.values:
        r = fs.r2.sel(share=s)
        ref = f"  {ridge_ref['few_shot_same_alpha'][str(s)]['test_r2']:.4f}" if ridge_ref else ""
        print(
            f"    {s:<5g} ({int(fs.n_labels.sel(share=s)[0])} labels)   {float(r.sel({'method': 'pretrained'})):.4f}"
            f"  {float(r.sel({'method': 'scratch'})):.4f}  {float(r.sel({'method': 'ridge'})):.4f}{ref}"
        )


def section_case():
    from neuroana.io import read_behavior, read_spike_times

    truth = json.loads((CASE / "truth.json").read_text())["datasets"]
    train, test = split(600.0)
    for name in ("hubnet", "behaviour"):
        t = truth[name]
        f = CASE / t["file"]
        sp = read_spike_times(f)
        print(f"\n== case {name}: {len(sp)} units, {f.name}")
        model, glm = likelihood(
            sp, train, test, t["reference_glm"]["held_out_bits_per_spike_vs_constant_rate"]
        )
        extra = {"truth.json reference GLM": t["reference_glm"]}
        if "baseline_ccg" in t:
            extra["truth.json CCG"] = t["baseline_ccg"]["held_out_last_20pct"]
        connectivity(
            sp,
            model,
            glm,
            train,
            test,
            np.array(t["edge_type_target_source"]),
            t.get("hub_unit_ids", []),
            extra,
        )
        if name == "behaviour":
            speed = read_behavior(f, "speed")
            decoding(sp, speed, model, train, test, t["baseline_ridge"]["results"]["bins_t-4..t+4"])


def section_sim():
    from neuroana.datasets.spiking_sim import simulate_realistic_network

    nets = {
        "sim hub network (40 units, 3 hubs, 400 s)": dict(
            n_units=40, n_hubs=3, duration=400.0, hub_out_degree=(12, 16), random_state=11
        ),
        "sim tuned network (30 units, 1 hub, 400 s)": dict(
            n_units=30,
            n_hubs=1,
            duration=400.0,
            hub_out_degree=(10, 12),
            tuned=True,
            random_state=12,
        ),
    }
    for name, kw in nets.items():
        t0 = time.perf_counter()
        net = simulate_realistic_network(**kw)
        print(f"\n== {name} (simulated in {time.perf_counter() - t0:.0f} s)")
        train, test = split(net.duration)
        sp = net.spike_times
        model, glm = likelihood(sp, train, test)
        connectivity(sp, model, glm, train, test, net.edge_type.values, net.hubs)
        if net.behaviour is not None:
            decoding(sp, net.behaviour, model, train, test)


def section_ablation():
    from neuroana.io import read_spike_times

    sp = read_spike_times(CASE / "hubnet_units.nwb")
    train, test = split(600.0)
    print("\n== ablation on the public hub network: held-out bits/spike by pathway")
    for paths in [
        ("coupling",),
        ("coupling", "poprate"),
        ("poprate", "attention"),
        ("coupling", "attention"),
        ("coupling", "poprate", "attention"),
    ]:
        t = time.perf_counter()
        m = SpikeRateModel(pathways=paths, verbose=False).fit(sp, *train)
        print(
            f"    {' + '.join(paths):<34s} {m.score(sp, *test):.4f}   "
            f"({time.perf_counter() - t:.0f} s, {m.n_epochs_} epochs)"
        )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", choices=("cpu", "gpu"), default="cpu")
    ap.add_argument("--sections", default="case,sim,ablation")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.config == "gpu" and not torch.cuda.is_available():
        raise SystemExit("--config gpu needs CUDA")
    t = time.perf_counter()
    for s in args.sections.split(","):
        {"case": section_case, "sim": section_sim, "ablation": section_ablation}[s.strip()]()
    print(f"\ntotal {time.perf_counter() - t:.0f} s (1 torch thread)")


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
