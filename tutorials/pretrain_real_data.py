# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Pretraining on spiking recordings we did not generate
#
# `neuroana.pretrain.SpikeRateModel` predicts every unit's spike count in 2-ms bins from the past:
# a spike-history (coupling) pathway, a population-rate input and an attention latent over 20-ms
# population tokens. We fit it on the first 80 % of an outside recording
# (`../shared/cases/spiking_networks`, made by an independent simulator) and score the last 20 %:
#
# 1. held-out log-likelihood in bits per spike over each unit's mean rate, beside the package's
#    coupled Poisson GLM;
# 2. a connectivity read-out in `("target", "source")` orientation: a Wald test of each fitted
#    coupling kernel, with the Fisher information measured on the held-out windows (chi-square
#    p-values; `n_null=` adds a time-shift null of the held-out ablation gain), beside the
#    package's GLM and the cross-correlogram;
# 3. running-speed decoding (R²) from the pretrained latent, and with 1 % of the labels.

# %%
import json
import os
from pathlib import Path

import numpy as np
import torch

from neuroana.io import read_behavior, read_spike_times
from neuroana.pretrain import (
    BehaviourDecoder,
    SpikeRateModel,
    compare_connectivity,
    coupled_glm,
    few_shot,
)
from neuroana.pretrain.connectivity import score_readout

torch.set_num_threads(1)  # a shared CPU: the fits choose their threads, never more than this
SHARED = Path(os.environ.get("NEUROANA_SHARED", "../shared"))
CASE = SHARED / "cases" / "spiking_networks"
SMALL = bool(os.environ.get("NEUROANA_TUTORIAL_SMALL"))  # CI: a shorter budget
TRAIN, TEST = (0.0, 480.0), (480.0, 600.0)
# CI: the models see only the last 120 s of the training part, with a small GLM budget
budget = {"max_epochs": 2, "max_iter": 20, "l2": (100.0,), "n_threads": 1} if SMALL else {}
FIT = (360.0, 480.0) if SMALL else TRAIN
windows = {"max_windows": 15} if SMALL else {}
spikes = read_spike_times(CASE / "hubnet_units.nwb")
print(len(spikes), "units, ids", list(spikes)[:6], "...")

# %% [markdown]
# ## Fit on the first 80 %, score the held-out 20 %
# `fit(spikes, t_start, t_stop)` never reads spikes after `t_stop`; early stopping uses the last 10 %
# of `[t_start, t_stop)`.

# %%
model = SpikeRateModel(random_state=0, **budget).fit(spikes, *FIT)
glm = coupled_glm(random_state=0, **budget).fit(spikes, *FIT)
print(
    f"bits/spike  model {model.score(spikes, *TEST):.4f}   coupled GLM {glm.score(spikes, *TEST):.4f}"
)

# %% [markdown]
# ## Connectivity on held-out windows, three read-outs side by side
# `score.sel(target=b, source=a)` is the evidence for `a -> b`. Here `truth.json` only scores.

# %%
models = {"model": model, "glm": glm}
ds = compare_connectivity(spikes, models, *TEST, random_state=0, **windows)
truth = json.loads((CASE / "truth.json").read_text())["datasets"]["hubnet"]
et = np.array(truth["edge_type_target_source"])
for meth in ds.method.values:
    r = score_readout(ds.score.sel({"method": meth}), et, truth["hub_unit_ids"])
    print(
        f"{meth:6s} hub AUROC {r['hub_auroc']:.3f}  exc AUROC {r['exc_auroc']:.3f}  top {r['top_units']}"
    )

# %% [markdown]
# ## Decoding running speed from the pretrained latent
# The decoder stacks square-root counts at bins t-4..t+4 and the latent averaged over the same
# bins; `BehaviourDecoder()` without a model is the counts-only ridge baseline. `few_shot` labels
# 10 evenly spaced blocks of the training part.

# %%
bpath = CASE / "behaviour_units.nwb"
bspikes, speed = read_spike_times(bpath), read_behavior(bpath, "speed")
bmodel = SpikeRateModel(random_state=0, **budget).fit(bspikes, *FIT)
dec = BehaviourDecoder(bmodel).fit(bspikes, speed, *TRAIN)
ridge = BehaviourDecoder().fit(bspikes, speed, *TRAIN)
print(
    f"R²  pretrained {dec.score(bspikes, speed, *TEST):.3f}   ridge {ridge.score(bspikes, speed, *TEST):.3f}"
)
fs = few_shot(dec, bspikes, speed, TRAIN, TEST, shares=(0.01,))
print(fs.r2.to_pandas())
