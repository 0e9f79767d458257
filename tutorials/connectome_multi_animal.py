# %% [markdown]
# # Dynamic functional connectome of several animals, by neuron label and episode
#
# Four animals imaged at 3 Hz for 1500 s (`../shared/cases/connectome_multi_animal`, made by an
# independent simulator with planted truth). The files look like real recordings: raw
# fluorescence with per-ROI baselines and photobleaching, a slow fluctuation shared by all
# neurons, ROI tables in random row order whose ids mean nothing across animals, the identity in
# a `neuron_label` column, neurons missing in some animals, and an `epochs` table with three
# stimulus episodes. One animal (`fish-b`) has no shared drive during `odour`.
#
# Steps: read every file **by label**, fit `DynamicConnectome` with its defaults and the epochs
# table, look at the rank choice, the component group and the communities of every episode, and
# the animals' loadings; score against the planted truth (the tutorial reads `truth.json` to
# score, the package never does); then the same through `neuroana run` with the example YAML.

# %%
import json
import os
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np
import yaml
from sklearn.metrics import normalized_mutual_info_score

from neuroana.connectome import DynamicConnectome
from neuroana.io import read_intervals, read_roi_traces
from neuroana.viz.connectome import plot_episodes, plot_factors

case = Path(os.environ.get("NEUROANA_SHARED", "../shared")) / "cases/connectome_multi_animal"
paths = sorted(case.glob("fish-*_ophys.nwb"))
traces = {p.name.split("_")[0]: read_roi_traces(p, roi_label="neuron_label") for p in paths}
epochs = read_intervals(paths[0], "epochs")
for name, tr in traces.items():
    print(
        name,
        dict(tr.sizes),
        "first rows:",
        tr["roi"].values[:3],
        "table ids:",
        tr["roi_id"].values[:3],
    )
epochs

# %% [markdown]
# The same neuron has a different row and a different table id in every file; `roi_label`
# puts the `neuron_label` column on the `roi` coordinate, and the estimator aligns the animals by
# it (a neuron absent in an animal is masked there, never zero). Without a label column, several
# files are refused by `neuroana run` (see the end).
#
# ## Fit with the defaults
# Defaults: traces detrended (10-s high-pass, which removes baselines, bleaching and the shared
# slow fluctuation and makes raw F and dF/F give the same affinity), clipped correlation in 30-s
# windows above each window's mean (the noise floor of clipped correlations), rank = the largest
# whose restarts agree, spectral communities with their number chosen by modularity. The only
# argument is the seed (`random_state=None`, the default, draws fresh entropy on every fit).

# %%
t0 = time.perf_counter()
dc = DynamicConnectome(random_state=0).fit(traces, epochs=epochs)
print(f"fitted in {time.perf_counter() - t0:.0f} s; rank {dc.result_.attrs['rank']}")
print(dc.rank_selection_.rule)
dc.rank_selection_.table.to_dataframe().round(3)

# %% [markdown]
# ## Episodes: component groups, communities, animals
# A component belongs to the episode that holds at least half of its time-factor mass
# (`episode_threshold`). The episode's communities come from its group's summed pair factors.
# The loading says how strongly an animal expresses the group's pattern above the noise floor
# (1 = the strongest animal): the factorisation's animal mode refitted to the floor-free
# affinities over the episode's windows (the plain CP animal factor also fits the positive
# noise floor that clipping leaves, so it stays high for an animal without the structure).

# %%
res = dc.result_
for e, name in enumerate(res["episode"].values):
    comps = np.flatnonzero(res["episode_members"].values[e]).tolist()
    share = res["episode_share"].values[e, comps].round(2).tolist()
    load = {
        str(a): round(float(v), 2)
        for a, v in zip(res["animal"].values, res["episode_animal_loading"].values[e], strict=True)
    }
    print(
        f"{name:12s} components {comps} (time share {share}), "
        f"{int(res['episode_n_communities'][e])} communities, loading {load}"
    )

# %% [markdown]
# ## Score against the planted truth
# Per-episode NMI, the number of communities, and the baseline the case's `truth.json` reports
# (per-animal windowed correlation + spectral clustering, given the true number of communities).

# %%
truth = json.loads((case / "truth.json").read_text())
rows = []
for e, ep in enumerate(truth["episodes"]):
    found = res["episode_communities"].values[e]
    labels = [str(r) for r in res["roi"].values]
    nmi = normalized_mutual_info_score([ep["community"][r] for r in labels], found)
    base = truth["sanity_baseline"]["results"][ep["name"]]["mean_per_animal"]
    rows.append(
        (ep["name"], round(nmi, 3), base, int(res["episode_n_communities"][e]), ep["n_communities"])
    )
    print(
        f"{ep['name']:12s} NMI {nmi:.3f} (baseline {base}), communities {rows[-1][3]} (planted {ep['n_communities']})"
    )
assert all(r[1] >= r[2] for r in rows) and np.mean([r[1] for r in rows]) >= 0.9

# %% [markdown]
# ## Figures
# The window factors with the episodes shaded (one component per episode), and every episode's
# group affinity sorted by its communities with the animals' loadings (`fish-b` low in `odour`).

# %%
ep_list = list(zip(epochs["start_time"], epochs["stop_time"], epochs["stimulus"], strict=True))
fig, axes = plot_factors(res, ep_list)

# %%
fig, axes = plot_episodes(res)

# %% [markdown]
# ## The same through `neuroana run`
# `tutorials/configs/connectome_multi_animal.yaml` holds the same run (`data: {roi_label:
# neuron_label, epochs: epochs}`, and only the seed as a parameter, `random_state: 0`, as above).
# We run it with its inputs resolved and the output in a temporary folder, and compare with the
# fit above.

# %%
import xarray as xr

from neuroana.runner import run_config

cfg = {
    "analysis": "connectome",
    "inputs": [str(p.resolve()) for p in paths],
    "data": {"roi_label": "neuron_label", "epochs": "epochs"},
    "params": {"random_state": 0},
    "output": "out",
}
tmp = Path(tempfile.mkdtemp())
(tmp / "run.yaml").write_text(yaml.safe_dump(cfg))
run = run_config(tmp / "run.yaml")
with xr.open_dataset(run.output / "results.nc") as got:
    same = np.array_equal(got["episode_communities"].values, res["episode_communities"].values)
print(
    "same communities as the Python API:",
    same,
    "| episodes:",
    run.summary["scores"]["episodes"]["odour"],
)

# %% [markdown]
# Without `roi_label` the run is refused: several files, and nothing says which rows are the same
# neuron.

# %%
del cfg["data"]["roi_label"]
(tmp / "bad.yaml").write_text(yaml.safe_dump(cfg))
try:
    run_config(tmp / "bad.yaml")
except ValueError as err:  # the connectome reader refuses: files and option named
    print(str(err)[-330:])
