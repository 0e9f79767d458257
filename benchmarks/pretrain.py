"""Benchmark for neuroana.pretrain: the pretrained rate model beside the simple baselines.

    python benchmarks/pretrain.py                       # public case + two simulated networks, CPU
    python benchmarks/pretrain.py --sections case       # one section (case, sim, ablation)
    python benchmarks/pretrain.py --config gpu          # same, on CUDA where available

Everything runs with the package's defaults (``SpikeRateModel()``, ``BehaviourDecoder(model)``),
fits on the first 80 % of each recording and scores the last 20 %:

1. ``case``: ../shared/cases/spiking_networks (made by an independent simulator; truth.json only
   scores). Held-out bits/spike of the model vs the package's coupled GLM (the model's first stage,
   ``first_stage(model)``, equal to ``coupled_glm()`` fitted alike) vs the reference GLM in
   truth.json; connectivity read-outs on held-out windows (``model_connectivity`` of the model and
   of the package GLM, the package's cross-correlogram, truth.json's CCG and GLM); speed decoding
   R² and 1 % / 10 %
   few-shot vs the package's ridge (counts t-4..t+4), truth.json's ridge and the same decoder on an
   untrained model ("scratch").
2. ``sim``: the same on two networks from ``simulate_realistic_network`` with other sizes (a hub
   network and a speed-tuned one), baselines computed by the package.
3. ``ablation``: what each pathway buys (bits/spike on the public hub network).

``run_all.py`` runs ``--config cpu --sections case`` and tabulates it with :func:`parse_rows`.
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
    few_shot,
    first_stage,
)
from neuroana.pretrain.connectivity import score_readout

REPO = Path(__file__).resolve().parents[1]
CASE = REPO.parent / "shared" / "cases" / "spiking_networks"


def split(duration: float):
    return (0.0, 0.8 * duration), (0.8 * duration, duration)


def connectivity(sp, model, glm, train, test, edge_type, hubs, extra=None):
    t = time.perf_counter()
    ds = compare_connectivity(sp, {"model": model, "glm": glm}, *test)
    print(
        f"  read-outs on held-out windows ({time.perf_counter() - t:.0f} s for all three; "
        "model, glm: Wald test with held-out Fisher information; ccg: cross-correlogram)"
    )
    print("    method                       hub_AUROC  exc_AUROC  fwd>rev  hubs_on_top  top_units")
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
    model = SpikeRateModel(random_state=0).fit(sp, *train)
    fit_s = time.perf_counter() - t
    glm = first_stage(model)  # == coupled_glm() fitted on the same data (test_rate_model.py)
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
    scratch = SpikeRateModel(max_epochs=0).fit(sp, *train)
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
        m = SpikeRateModel(pathways=paths, random_state=0).fit(sp, *train)
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
def _blocks(out: str) -> dict:
    """``{header: text}`` of the ``== header`` blocks of the printed output."""
    import re

    parts = re.split(r"^== (.+)$", out, flags=re.M)
    return {parts[k].strip(): parts[k + 1] for k in range(1, len(parts) - 1, 2)}


def parse_rows(out: str) -> list:
    """This script's rows of the ``run_all.py`` summary table, read from its printed output
    (``--sections case``; ``sim`` blocks add rows against the package's own baselines). Anchors
    from truth.json are "(recorded)", the package's own baselines "(same run)"; one torch thread.
    """
    import re

    from _table import NUM, Row, fmt, met, search  # benchmarks/ is on sys.path

    def num(pattern, text, what):
        return float(search(rf"^\s+{pattern}\s+{NUM}", text, what).group(1))

    def row(name, measure, anchor, ours, aval, ratio, target, ok):
        return Row("pretrain", f"{name}: {measure}", anchor, ours, aval, ratio, target, ok, "1")

    blocks = {h: t for h, t in _blocks(out).items() if h.startswith(("case ", "sim "))}
    if not blocks:
        raise LookupError("pretrain: no '== case' or '== sim' section in the script's output")
    rows = []
    for head, text in blocks.items():
        name = head.split(":")[0].split(" (")[0]
        ours = num(r"model \(default\)", text, f"{name} model bits/spike")
        ref = re.search(rf"^\s+reference GLM \(truth.json\)\s+{NUM}", text, re.M)
        anchor, aval = (
            ("coupled GLM, truth.json (recorded)", float(ref.group(1)))
            if ref
            else (
                "package coupled GLM (same run)",
                num("package coupled GLM", text, f"{name} GLM"),
            )
        )
        rows.append(
            row(
                name,
                "held-out bits/spike",
                anchor,
                fmt(ours, "", 4),
                fmt(aval, "", 4),
                f"{ours / aval:.2f}x",
                ">= anchor",
                met(ours >= aval),
            )
        )
        m = re.search(rf"^\s+model\s+{NUM}\s+{NUM}\s+{NUM}\s+(True|False)\s", text, re.M)
        if m:
            hub, exc, fwd, top = float(m.group(1)), float(m.group(2)), float(m.group(3)), m.group(4)
            c = re.search(rf"^\s+truth.json CCG\s+{NUM}\s+{NUM}", text, re.M)
            where = ", truth.json (recorded)"
            if c is None:
                c, where = re.search(rf"^\s+ccg\s+{NUM}\s+{NUM}", text, re.M), " (same run)"
            cc = (float(c.group(1)), float(c.group(2))) if c else (float("nan"),) * 2
            for what, v, a, need in (("hub", hub, cc[0], 0.95), ("excitatory", exc, cc[1], 0.9)):
                rows.append(
                    row(
                        name,
                        f"{what}-edge AUROC, held-out",
                        f"cross-correlogram{where}",
                        fmt(v, "", 3),
                        fmt(a, "", 3),
                        f"{v / a:.2f}x",
                        f">= {need}",
                        met(v >= need),
                    )
                )
            rows.append(
                row(
                    name,
                    "hubs on top, fwd > rev share",
                    "planted truth (recorded)",
                    f"{top}, {fwd:.2f}",
                    "True, 1.00",
                    "-",
                    "True, >= 0.9",
                    met(top == "True" and fwd >= 0.9),
                )
            )
        d = re.search(rf"^\s+model latent \+ counts\s+{NUM}", text, re.M)
        if d:
            r2 = float(d.group(1))
            t = re.search(rf"^\s+truth.json ridge t-4..t\+4\s+{NUM}", text, re.M)
            pr = num(r"package ridge t-4..t\+4", text, f"{name} ridge")
            base = max(pr, float(t.group(1))) if t else pr
            rows.append(
                row(
                    name,
                    "speed R², held-out",
                    "best of ridge t-4..t+4 (same run)"
                    + (", truth.json ridge (recorded)" if t else ""),
                    fmt(r2, "", 4),
                    fmt(base, "", 4),
                    f"{r2 - base:+.4f}",
                    ">= anchor",
                    met(r2 >= base),
                )
            )
            for f in re.finditer(
                rf"^\s+{NUM}\s+\((\d+) labels\)\s+{NUM}\s+{NUM}\s+{NUM}(?:[ \t]+{NUM})?",
                text,
                re.M,
            ):
                share, pre, scr, rid = (float(f.group(k)) for k in (1, 3, 4, 5))
                best = max(scr, rid, float(f.group(6)) if f.group(6) else -np.inf)
                rows.append(
                    row(
                        name,
                        f"few-shot {share:g} R² ({f.group(2)} labels)",
                        "best of ridge, untrained model (same run)"
                        + (", truth.json ridge (recorded)" if f.group(6) else ""),
                        fmt(pre, "", 4),
                        fmt(best, "", 4),
                        f"{pre - best:+.4f}",
                        "> anchor",
                        met(pre > best),
                    )
                )
    return rows


if __name__ == "__main__":
    main()
