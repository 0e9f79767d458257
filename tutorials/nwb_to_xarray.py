# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # NWB to xarray
#
# `neuroana.io` reads NWB files into labelled xarray objects: spikes as `("time", "unit")` counts,
# calcium traces as `("time", "roi")`, masks as `("roi", "y", "x")`, behaviour as
# `("time", "feature")`, interval tables as pandas DataFrames. Files are opened read-only and closed
# after each call.
#
# This tutorial uses two real files from the pynapple test suite (head-direction/CA1 spikes and a
# suite2p two-photon session). Set `NEUROANA_SHARED` to the folder holding `data/nwb`, or fetch
# the files with `neuroana fetch pynapple_nwb`.

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import neuroana.io as nio

SHARED = Path(os.environ.get("NEUROANA_SHARED", "../shared"))
HD = SHARED / "data" / "nwb" / "pynapple_neurosuite_A2929-200711.nwb"
S2P = SHARED / "data" / "nwb" / "pynapple_suite2p_2022_08_08.nwb"

# %% [markdown]
# ## What is in a file

# %%
print(nio.list_contents(HD).to_string(index=False))

# %% [markdown]
# ## Epochs and spikes
#
# `read_intervals` gives any TimeIntervals table. `read_spike_counts` bins spikes in left-closed
# bins `[start + k*bin, start + (k+1)*bin)`; `interval=("epochs", "wake")` restricts to the row
# tagged `wake`.

# %%
epochs = nio.read_intervals(HD, "epochs")
epochs

# %%
counts = nio.read_spike_counts(HD, 0.025, interval=("epochs", "wake"))
print(counts.dims, counts.shape, counts.attrs["start"], counts.attrs["stop"])
rates = counts.mean("time") / counts.attrs["bin_size"]
rates.to_series().round(2)

# %% [markdown]
# Unit metadata (`location`) is read with the spike times: the first seven units are in the
# anterodorsal thalamus (head-direction cells), the others in CA1.

# %%
spikes = nio.read_spike_times(HD)
print({u: t.size for u, t in spikes.items()})

# %% [markdown]
# ## Behaviour and a head-direction tuning curve
#
# `read_behavior` returns `("time", "feature")`; a container such as `CompassDirection` stacks its
# series as features. Head direction is the `ry` angle here.

# %%
hd = nio.read_behavior(HD, "CompassDirection")
angle = np.mod(hd.sel(feature="ry"), 2 * np.pi)
# head direction at each 25 ms bin centre (nearest tracking sample), inside the tracked span
t = counts.time.values
inside = (t >= hd.time.values[0]) & (t <= hd.time.values[-1])
a = angle.interp(time=t[inside], method="nearest").values
edges = np.linspace(0, 2 * np.pi, 37)
idx = np.digitize(a, edges) - 1
occupancy = np.bincount(idx, minlength=36)[:36] * 0.025
fig, ax = plt.subplots(subplot_kw={"projection": "polar"}, figsize=(4, 4))
for u in range(3):
    c = np.bincount(idx, weights=counts.values[inside, u], minlength=36)[:36]
    ax.plot(edges[:-1], c / np.maximum(occupancy, 1e-9), label=f"unit {counts.unit.values[u]}")
ax.legend(fontsize=7)
ax.set_title("head-direction tuning (Hz)")

# %% [markdown]
# ## Calcium imaging: orientation is checked
#
# The suite2p file stores fluorescence ROI-first (219 x 2000), against the NWB rule. The reader
# checks the stored shape against the ROI table and returns `(time, roi)`, saying what it did in
# `attrs`.

# %%
traces = nio.read_roi_traces(S2P, "Fluorescence")
print(traces.dims, traces.shape, traces.attrs.get("stored_orientation"))
masks = nio.read_roi_masks(S2P)
print(masks.dims, masks.shape)

# %%
active = traces.std("time") > 0
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
top = traces.sel(roi=traces.roi[active.values][:5])
for r in top.roi.values:
    axes[0].plot(top.time, top.sel(roi=r), lw=0.6, label=f"ROI {r}")
axes[0].set(xlabel="time (s)", title="fluorescence")
axes[1].imshow(masks.max("roi"), cmap="gray")
axes[1].set_title("ROI masks (max over ROIs)")

# %% [markdown]
# ## Everything at once, lazily
#
# `open_nwb` gives an `xarray.DataTree` of the file; data are read when used.

# %%
tree = nio.open_nwb(HD)
print(tree)
