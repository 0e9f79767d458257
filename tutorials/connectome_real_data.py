# %% [markdown]
# # Dynamic functional connectome of a real suite2p recording
#
# The whole `neuroana.connectome` pipeline (Dyballa et al., ICLR 2024) on one animal: the suite2p
# calcium traces of the pynapple test file `pynapple_suite2p_2022_08_08.nwb` (219 ROIs, 10 Hz,
# 200 s). Steps: read the traces, drop constant ROIs, differential affinities per 20-s window,
# non-negative tensor factorisation with the rank chosen by `select_rank`, communities per
# component, and the three figures.
#
# With one animal the tensor is `(pair, window, animal=1)`: the animal mode is trivial, and each
# component is a pattern of pair affinities with its time course.

# %%
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np

from neuroana.connectome import DynamicConnectome
from neuroana.io import read_roi_traces
from neuroana.viz.connectome import plot_community_graph, plot_factors, plot_sorted_affinity

SMALL = os.environ.get("NEUROANA_TUTORIAL_SMALL") == "1"
path = (
    Path(os.environ.get("NEUROANA_SHARED", "../shared"))
    / "data/nwb/pynapple_suite2p_2022_08_08.nwb"
)
traces = read_roi_traces(path)
print(traces.sizes, "stored as", traces.attrs.get("stored_orientation"))

# %% [markdown]
# ## Constant traces
# 47 of the 219 ROIs are all zeros in this file (suite2p wrote no signal for them). An affinity
# needs a varying trace, so `compute_affinity` refuses constant traces with an error naming the
# ROI. We drop them here, explicitly, and say how many. In the quick (CI) run we also keep only
# the most variable ROIs to bound the run time.

# %%
std = traces.std("time").values
constant = std <= 1e-12 * max(1.0, float(np.abs(traces).max()))
print(f"dropping {int(constant.sum())} constant ROIs of {traces.sizes['roi']}")
traces = traces.isel(roi=np.flatnonzero(~constant))
if SMALL:
    keep = np.sort(np.argsort(traces.std("time").values)[::-1][:30])
    traces = traces.isel(roi=keep)
print("ROIs used:", traces.sizes["roi"])

# %% [markdown]
# ## Fit
# Windows of 20 s with a 10-s hop give 19 windows over the 200 s. The differential affinity is
# the within-window correlation of the tanh-compressed robust derivatives (kernel scale 2 robust
# s.d.; see `neuroana.connectome.affinity`, which also says when it helps over the default
# correlation affinity): unrelated ROIs have affinity near 0, ROIs that rise and fall together
# near 1. The rank is chosen by the stated rule of `select_rank` (the largest rank whose restarts
# agree: median factor match score >= 0.95), communities by spectral clustering with their number
# chosen by modularity. For several animals and an epochs table see
# `connectome_multi_animal.py`.

# %%
t0 = time.perf_counter()
dc = DynamicConnectome(
    window=20.0,
    step=10.0,
    affinity="differential",
    scale=2.0,
    n_components="auto",
    ranks=(1, 2, 3) if SMALL else (1, 2, 3, 4, 5, 6),
    n_restarts=3 if SMALL else 8,
    max_iter=150 if SMALL else 500,
    n_runs=2 if SMALL else 5,
    device="auto",
    random_state=0,
).fit(traces)
res = dc.result_
print(f"fit in {time.perf_counter() - t0:.1f} s; rank chosen: {res.attrs['rank']}")
print(dc.rank_selection_.table.to_dataframe().round(3))
print("rule:", dc.rank_selection_.rule)
print("communities per component:", res["n_communities"].values.tolist())

# %% [markdown]
# ## Figures
# This file has no stimulus or epoch table (no NWB `intervals`), so we shade the four 50-s
# quarters of the recording as analysis epochs; with a stimulus table, pass its start/stop times.

# %%
epochs = [(50.0 * k, 50.0 * (k + 1), f"quarter {k + 1}") for k in range(4)]
fig, axes = plot_factors(res, epochs)

# %%
fig, axes = plot_sorted_affinity(res)

# %%
strongest = int(np.argmax(res["weights"].values)) if "weights" in res else 0
fig, ax = plot_community_graph(res, strongest, top_fraction=0.05)

# %% [markdown]
# Which windows each component covers (its window factor above 30% of its maximum):

# %%
for r in range(res.sizes["component"]):
    cov = res["covers_window"].values[:, r]
    t = res["time"].values[cov]
    print(f"component {r}: {cov.sum()} windows, centres {t.min():.0f}-{t.max():.0f} s")
