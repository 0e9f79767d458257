# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Spike-token pretraining on real head-direction cells
#
# We pretrain a tiny Neuroformer-style model (`neuroana.pretrain`) on the spikes of the pynapple
# test recording A2929-200711 (15 units, sleep `[0, 600)` s and wake `[600, 1200)` s), then decode
# head direction during wake from the pretrained model and compare with a ridge decoder on binned
# counts of the same windows. The split is contiguous with guard gaps: no spike is seen by both the
# training and the test windows.

# %%
import os
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from sklearn.linear_model import RidgeCV

from neuroana.io import read_behavior, read_spike_times
from neuroana.pretrain import SpikeFormer, TokenConfig, events_from_spike_times, window_ends
from neuroana.pretrain.finetune import TokenBehaviourDecoder
from neuroana.pretrain.readout import bin_spikes

torch.set_num_threads(1)  # small model: one thread is fastest on a shared CPU
# the real files live in ../shared/data/nwb (or set NEUROANA_SHARED; `neuroana fetch pynapple_nwb`)
SHARED = Path(os.environ.get("NEUROANA_SHARED", "../shared"))
path = SHARED / "data" / "nwb" / "pynapple_neurosuite_A2929-200711.nwb"
spikes = read_spike_times(path)
events = events_from_spike_times(spikes, t_start=0.0, t_stop=1200.0)
compass = read_behavior(path, "CompassDirection")
hd = compass.sel(feature="ry")  # head direction (rad)
behaviour = xr.DataArray(
    np.c_[np.sin(hd.values), np.cos(hd.values)],
    dims=("time", "feature"),
    coords={"time": hd.time.values, "feature": ["sin", "cos"]},
)
print(
    len(spikes), "units,", events.times.size, "spikes; head direction from", float(hd.time[0]), "s"
)

# %% [markdown]
# ## Splits
# Pretraining uses everything before 1000 s (sleep and the first part of wake, no labels needed).
# Decoding uses the tracked wake period: train 672-950 s, validation 950-1000 s, test 1000-1199 s,
# separated by a guard gap of one whole window (200 ms).

# %%
cfg = TokenConfig()  # 50 ms current window, 150 ms past window, 10 ms resolution
gap = cfg.window_cur + cfg.window_past
pre_train = window_ends(0.0, 900.0, cfg)
pre_val = window_ends(900.0 + gap, 1000.0, cfg)
dec_train = window_ends(672.0, 950.0, cfg)
dec_val = window_ends(950.0 + gap, 1000.0, cfg)
test = window_ends(1000.0 + gap, 1199.0, cfg)

# %%
model = SpikeFormer(
    "tiny",
    max_iter=15,
    steps_per_iter=20,
    batch_size=64,
    lr=2e-3,
    warmup=30,
    device="cpu",
    random_state=0,
).fit(events, train_ends=pre_train, val_ends=pre_val)
print(
    model.n_parameters_,
    "parameters; held-out NLL per token:",
    model.history_["val_loss"].values.round(3),
)

# %% [markdown]
# ## Decoding head direction: fine-tuned model vs ridge on binned counts

# %%
dec = TokenBehaviourDecoder(
    model, mode="full", max_iter=15, steps_per_iter=20, device="cpu", random_state=0
).fit(events, behaviour, dec_train, dec_val)
pred = dec.predict(events, test).values


def window_counts(ends):
    """Counts per unit in each window's whole span (past + current), the ridge decoder's input."""
    c = bin_spikes(spikes, 0.0, 1200.0, 0.01)
    cs = np.vstack([np.zeros(c.shape[1]), np.cumsum(c, 0)])
    k = np.round(ends / 0.01).astype(int)
    return cs[k] - cs[k - int(round(gap / 0.01))]


def targets(ends):
    return np.c_[
        [np.interp(ends, behaviour.time, behaviour.sel(feature=f)) for f in ("sin", "cos")]
    ].T


ridge = RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(
    np.sqrt(window_counts(np.r_[dec_train, dec_val])), targets(np.r_[dec_train, dec_val])
)
pred_ridge = ridge.predict(np.sqrt(window_counts(test)))
y = targets(test)


def angular_error(p):
    d = np.angle(np.exp(1j * (np.arctan2(p[:, 0], p[:, 1]) - np.arctan2(y[:, 0], y[:, 1]))))
    return float(np.degrees(np.median(np.abs(d))))


for name, p in (("pretrained + fine-tuned", pred), ("ridge on counts", pred_ridge)):
    r = [np.corrcoef(p[:, j], y[:, j])[0, 1] for j in range(2)]
    print(
        f"{name:24s} r(sin)={r[0]:.3f} r(cos)={r[1]:.3f} median |error|={angular_error(p):.1f} deg"
    )
