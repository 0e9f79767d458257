"""Benchmark: episode communities of ``DynamicConnectome`` (defaults) vs a per-animal baseline.

For every episode of every recording set: the NMI of neuroana's communities (estimator defaults,
number of communities chosen by the method) and of the per-animal baseline (windowed correlation
+ spectral clustering given the TRUE number of communities, mean over the animals that take part;
:func:`neuroana.connectome.baseline.per_animal_communities`), the number of communities found vs
planted, and the loading of the animal without that episode's structure. Sets: the outside case
``../shared/cases/connectome_multi_animal`` (skipped when absent; its ``truth.json`` is read here to
score, never by the package) and three sets of :func:`make_calcium_recordings` with other sizes,
sampling rates, episode counts and numbers of animals.

Run: ``python benchmarks/connectome_episodes.py`` (``--quick``: the outside case and set A only).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "connectome"))

from connectome_scoring import baseline_nmi, episode_nmi  # noqa: E402

from neuroana.connectome import DynamicConnectome  # noqa: E402
from neuroana.datasets.connectome_sim import make_calcium_recordings  # noqa: E402

SHARED = Path(os.environ.get("NEUROANA_SHARED", HERE.parent.parent / "shared"))
CASE = SHARED / "cases" / "connectome_multi_animal"

SETS = {
    "gen A (36 n, 3 animals, 3 ep, 3 Hz)": dict(
        n_neurons=36,
        n_animals=3,
        episode_durations=(480.0, 360.0, 480.0),
        n_communities=(3, 4, 2),
        fs=3.0,
        loading=(0.3, 0.6),
        non_participating=(1, 1),
        random_state=0,
    ),
    "gen B (30 n, 5 animals, 2 ep, 4 Hz)": dict(
        n_neurons=30,
        n_animals=5,
        episode_durations=(420.0, 420.0),
        n_communities=(4, 2),
        fs=4.0,
        loading=(0.3, 0.6),
        non_participating=(0, 2),
        random_state=1,
    ),
    "gen C (48 n, 2 animals, 4 ep, 2 Hz)": dict(
        n_neurons=48,
        n_animals=2,
        episode_durations=(360.0, 360.0, 360.0, 360.0),
        n_communities=(3, 5, 2, 4),
        fs=2.0,
        loading=(0.3, 0.6),
        non_participating=(2, 0),
        random_state=2,
    ),
}


def _public_case():
    from neuroana.io import read_intervals, read_roi_traces

    truth = json.loads((CASE / "truth.json").read_text())
    names = sorted(truth["animals"])
    traces = {
        a: read_roi_traces(CASE / truth["animals"][a]["file"], roi_label="neuron_label")
        for a in names
    }
    epochs = read_intervals(CASE / truth["animals"][names[0]]["file"], "epochs")
    eps = truth["episodes"]
    return dict(
        traces=traces,
        epochs=epochs,
        truth=[e["community"] for e in eps],
        k=[e["n_communities"] for e in eps],
        participating=[e["participating_animals"] for e in eps],
        absent=[e["non_participating_animals"] for e in eps],
        names=[e["name"] for e in eps],
        reported=[truth["sanity_baseline"]["results"][e["name"]]["mean_per_animal"] for e in eps],
    )


def _generated(cfg):
    sim = make_calcium_recordings(**cfg)
    labels = sim.communities["roi"].values
    animals = list(sim.traces)
    part = [[a for a, p in zip(animals, row, strict=True) if p] for row in sim.participation.values]
    return dict(
        traces=sim.traces,
        epochs=sim.epochs,
        truth=[dict(zip(labels, row.tolist(), strict=True)) for row in sim.communities.values],
        k=list(cfg["n_communities"]),
        participating=part,
        absent=[[a for a in animals if a not in p] for p in part],
        names=list(sim.epochs["stimulus"]),
        reported=None,
    )


def run_set(name: str, d: dict) -> None:
    t0 = time.perf_counter()
    dc = DynamicConnectome(random_state=0).fit(d["traces"], epochs=d["epochs"])
    fit_s = time.perf_counter() - t0
    res = dc.result_
    ours = episode_nmi(res, d["truth"])
    base = baseline_nmi(d["traces"], d["epochs"], d["truth"], d["k"], d["participating"])
    print(
        f"\n{name}: rank {res.attrs['rank']} (stability {dc.rank_selection_.table['stability'].values.round(3).tolist()}), fit {fit_s:.0f} s"
    )
    print(
        f"  {'episode':14s} {'neuroana':>8s} {'baseline':>8s} {'reported':>8s} {'k found/planted':>16s}  absent animal loading"
    )
    for e, ep in enumerate(d["names"]):
        rep = "" if d["reported"] is None else f"{d['reported'][e]:.3f}"
        k = int(res["episode_n_communities"].values[e])
        absent = ", ".join(
            f"{a}={float(res['episode_animal_loading'].sel(animal=a).values[e]):.2f}"
            for a in d["absent"][e]
        )
        print(
            f"  {ep:14s} {ours[e]:8.3f} {base[e]:8.3f} {rep:>8s} {k:>9d}/{d['k'][e]:<6d}  {absent}"
        )
    print(f"  {'mean':14s} {np.mean(ours):8.3f} {np.mean(base):8.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    print(
        "DynamicConnectome(random_state=0) (defaults, seeded); NMI on the neurons it placed; "
        "baseline = per-animal "
        "windowed correlation (60 s) + spectral clustering with the true k"
    )
    if (CASE / "truth.json").is_file():
        run_set("outside case connectome_multi_animal (4 animals, 3 Hz)", _public_case())
    else:
        print(f"(outside case not found in {CASE}: skipped)")
    for k, (name, cfg) in enumerate(SETS.items()):
        if args.quick and k > 0:
            break
        run_set(name, _generated(cfg))


if __name__ == "__main__":
    main()
