# %% [markdown]
# # FISBe: evaluating 3-D neuron instance segmentations with the benchmark's metrics
#
# FISBe (Mais, Hirsch et al., CVPR 2024; Zenodo doi:10.5281/zenodo.10875063, CC BY 4.0) holds
# 101 multicolour light-microscopy volumes of *Drosophila* neurons. Each sample is a zarr v2
# directory with `volumes/raw` (3, Z, Y, X) uint16 and `volumes/gt_instances` (N, Z, Y, X) uint8:
# **one neuron per channel**, so two neurons can share voxels where they cross or run together.
#
# This tutorial uses a synthetic FISBe-like volume (the real data is a large download; every step
# below works the same on a real sample read with `read_fisbe`). We
#
# 1. make a volume, write it in the FISBe layout and read it back;
# 2. score a prediction with planted errors and read off every metric of the benchmark;
# 3. look at the matcher's decision for every instance;
# 4. run the colour-clustering baseline, score it, and aggregate over several volumes as the
#    benchmark does;
# 5. evaluate files on disk with the command line `neuroana fisbe evaluate`.
#
# The metrics are numerically identical to the official evaluation (`evalinstseg` with its
# `--app flylight` settings); the test suite checks this against a bank of reference outputs.

# %%
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd

from neuroana.datasets.fisbe_synth import make_fisbe_volume, perturb_prediction
from neuroana.io.fisbe import read_fisbe, write_fisbe
from neuroana.segmentation import aggregate, evaluate_instances, instance_decisions, key_metrics
from neuroana.segmentation.clustering import colour_clustering
from neuroana.segmentation.metrics import MIN_SIZE
from neuroana.viz.segmentation import plot_fisbe_projection

SMALL = os.environ.get("NEUROANA_TUTORIAL_SMALL") == "1"  # CI runs a smaller version
SHAPE = (40, 80, 80)
N_VOLUMES = 3 if SMALL else 8
work = Path(tempfile.mkdtemp(prefix="fisbe_tutorial_"))

# %% [markdown]
# ## 1. A synthetic FISBe-like volume, written and read back
#
# `make_fisbe_volume` grows branching tubular neurons (persistent random walks), lets one neuron
# follow another over part of its length (a *fasciculating* pair that shares voxels) and renders
# a three-colour raw image (a random colour per neuron, PSF blur, uneven illumination,
# Poisson + Gaussian noise).

# %%
ds = make_fisbe_volume(SHAPE, n_neurons=4, n_fasciculating=1, radius=3.0, random_state=8)
gt = ds.gt.values
sizes = (gt > 0).sum(axis=(1, 2, 3))
print(ds)
print("voxels per GT neuron:", sizes.tolist())
print("voxels shared by two or more neurons:", int(((gt > 0).sum(0) >= 2).sum()))

# %% [markdown]
# `write_fisbe` writes the official layout (zarr v2, `volumes/raw`, `volumes/gt_instances`)
# atomically: into a temporary directory first, then renamed. `read_fisbe` opens a sample lazily
# (dask) with named dims and micrometre coordinates (0.44 um isotropic unless the file says
# otherwise). Real FISBe files carry no xarray metadata, so `xr.open_zarr` cannot read them;
# `read_fisbe` can.

# %%
sample = work / "synthetic_sample.zarr"
write_fisbe(sample, raw=ds.raw.values, gt=gt)
back = read_fisbe(sample)
print(back)
print("raw identical:", np.array_equal(back.raw.values, ds.raw.values))
print("gt identical:", np.array_equal(back.gt.values, gt))
print("voxel size (um):", back.attrs["voxel_size_um"], "from", back.attrs["voxel_size_source"])

# %% [markdown]
# ## 2. Scoring a prediction with planted errors
#
# `perturb_prediction` makes a prediction with known mistakes: GT channel 0 is cut in two by a
# plane (a **false split**), channels 1 and 2 are given one id (a **false merge**), the last
# channel is left out (a **false negative**), another is dilated by one voxel, and a random tube
# is added (a **false positive**). We put the largest neuron first, so both halves of the split
# are big enough to survive the evaluation's size filter (below).

# %%
order = np.argsort(-sizes, kind="stable")
gt_sorted = np.stack([(gt[i] > 0) * np.uint8(k + 1) for k, i in enumerate(order)])
pred = perturb_prediction(gt_sorted, random_state=0)
print("voxels per predicted instance:", (pred > 0).sum(axis=(1, 2, 3)).tolist())
print("size filter: predicted instances with <=", MIN_SIZE, "voxels are dropped")
result = evaluate_instances(gt_sorted, pred)
k = key_metrics(result)
pd.Series({n: k[n] for n in ("S", "avF1", "C", "clDice_TP", "tp", "FS", "FM", "nGT", "nPred")})

# %% [markdown]
# What each number means (all computed exactly as the official code does):
#
# - **Size filter.** Before anything else, every *predicted* instance with at most
#   `MIN_SIZE = 800` voxels is deleted (ground truth is never filtered). An over-fragmented
#   prediction therefore scores 0. `nPred` counts what is left.
# - **clDice.** Instances are compared by their skeletons: *clPrecision* = fraction of the
#   prediction's skeleton inside the GT instance, *clRecall* = fraction of the GT skeleton inside
#   the prediction; clDice is their harmonic mean. Thin tubes make voxel IoU meaningless, hence
#   skeletons.
# - **avF1.** For each localisation threshold t in 0.1, 0.2, ..., 0.9, predictions and GT
#   instances are matched one-to-one, greedily by decreasing clDice, keeping pairs with clDice > t;
#   F1 = 2 TP / (2 TP + FP + FN). avF1 is the mean over the nine thresholds.
# - **C** (average GT coverage). For each GT neuron, the fraction of its skeleton covered by the
#   predictions assigned to it (each prediction goes to the GT it overlaps most); C is the mean
#   over GT neurons. Splits do not hurt C, merges and misses do.
# - **clDice_TP.** Mean clDice of the true positives at t = 0.5: how well the found neurons are
#   traced.
# - **tp.** Fraction of GT neurons found at t = 0.5 (TP / nGT).
# - **FS** (false splits). Many-to-many matching on clRecall: a GT neuron covered by k predictions
#   (clRecall > 0.05 each) counts k - 1.
# - **FM** (false merges). A prediction that covers k GT neurons (clRecall > 0.1 each) counts
#   k - 1.
# - **S** = (avF1 + C) / 2, the benchmark's headline score.
#
# The per-threshold counts behind avF1:

# %%
per_th = pd.DataFrame(
    {"TP": k["TP"], "FP": k["FP"], "FN": k["FN"], "F1": k["F1_per_threshold"]},
    index=pd.Index(k["thresholds"], name="threshold"),
)
print(per_th)
print("avF1 = mean F1 =", float(np.mean(k["F1_per_threshold"])), "vs", k["avF1"])
print("S = (avF1 + C) / 2 =", (k["avF1"] + k["C"]) / 2, "vs", k["S"])
print("coverage of each GT neuron:", np.round(result["general"]["gt_skel_coverage"], 3).tolist())

# %% [markdown]
# ## 3. What the matcher decided for each instance
#
# `instance_decisions` runs the same evaluation and keeps, for every instance, why it was counted:
# true positive at t = 0.5, false negative, false positive, part of a false split, or a false
# merge. Its counts equal the result's. (The napari view colours these instances.)

# %%
dec = instance_decisions(gt_sorted, pred)
print("counts:", dec.counts())
print("ids:", dec.ids())
print("false splits {gt id: [pred ids]}:", dec.splits)
print("false merges {pred id: [gt ids]}:", dec.merges)
print("GT -> matched prediction (0 = missed):", dec.gt_match.tolist())

# %% [markdown]
# Read against the planted errors (the cell below prints the same from the decisions):
#
# - GT 1 was cut in two. One half is matched to it (a TP); the other half cannot be matched
#   one-to-one any more, so at t = 0.5 it is a **false positive**, and the two halves together
#   are one **false split** (FS = 1). Coverage of GT 1 is still high: both halves count.
# - GT 2 and GT 3 share one predicted id: a **false merge** (FM = 1). The merged instance is
#   matched to one of them; the other is a **false negative** with coverage 0.
# - The last GT neuron was left out: a **false negative**.
# - The random tube has fewer than 800 voxels at this volume size, so the size filter removed it
#   before matching: it is *not* a false positive (`nPred` excludes it).

# %%
for g, p in enumerate(dec.gt_match, start=1):
    print(f"GT {g}: " + (f"matched to prediction {p}" if p else "missed (false negative)"))
for p, gs in dec.merges.items():
    print(f"prediction {p} merges GT {gs}")
for g, ps in dec.splits.items():
    print(f"GT {g} is split over predictions {ps}")
print(f"{pred.shape[0]} predicted instances, {k['nPred']} left after the size filter")

# %%
fig, axes = plot_fisbe_projection(ds.raw.values, gt_sorted, pred)
fig

# %% [markdown]
# ## 4. The colour-clustering baseline (non-learnt)
#
# After Duan et al. 2021, as used in the paper: denoise, threshold, supervoxels by watershed on the
# distance transform, a graph of touching supervoxels weighted by colour distance, agglomerative
# clustering, and a clean-up that merges nearby same-colour clusters. Supervoxels whose colour is
# the sum of two neighbouring clusters' colours go to both (overlaps survive).

# %%
cc = colour_clustering(ds.raw.values)
kc = key_metrics(evaluate_instances(gt, cc))
print(f"{cc.shape[0]} instances")
pd.Series({n: kc[n] for n in ("S", "avF1", "C", "clDice_TP", "tp", "FS", "FM")})

# %%
fig, axes = plot_fisbe_projection(ds.raw.values, gt, cc)
fig

# %% [markdown]
# ### Aggregating over volumes, as the benchmark does
#
# The benchmark does not average per-volume S: `aggregate` pools the per-threshold TP/FP/FN over
# the volumes of a split for avF1, averages coverage over all GT neurons, and sums FS and FM. It
# reports `completely`, `partly` and `combined` (the mean of the two splits); with only
# completely labelled volumes, combined equals completely.

# %%
results = []
for seed in range(20, 20 + N_VOLUMES):
    v = make_fisbe_volume(SHAPE, n_neurons=4, n_fasciculating=1, radius=3.0, random_state=seed)
    results.append(evaluate_instances(v.gt.values, colour_clustering(v.raw.values)))
agg = aggregate(results, names=[f"synthetic_{s}" for s in range(20, 20 + N_VOLUMES)])
summary = agg["summary"]["combined"]
per_volume = pd.DataFrame([key_metrics(r) for r in results])[["S", "avF1", "C", "FS", "FM"]]
print(per_volume.round(3))
pd.Series({n: summary[n] for n in ("S", "avF1", "C", "clDice_TP", "tp", "FS", "FM", "nGT")})

# %% [markdown]
# For reference, the paper's combined test-set scores on real FISBe (project-page leaderboard):
# PatchPerPix S 0.35, Duan et al. colour clustering S 0.30, FFN S 0.25. Synthetic volumes with
# well-separated colours are far easier, so these numbers are not comparable.
#
# A learnt baseline, `neuroana.segmentation.UNetBaseline` (3-D U-Net predicting foreground, an
# overlap count and affinities, then mutex watershed), trains on FISBe-layout samples; see
# `benchmarks/fisbe_baselines.py` for a CPU configuration and its scores.
#
# ## 5. Evaluating files on disk
#
# Predictions are stored like ground truth: a zarr with one instance per channel, under
# `volumes/pred_instances` (`write_fisbe(path, pred=...)`). The command line evaluates a
# prediction file against a GT file and writes every metric as JSON (add `--split-file` with the
# official split list to decide completely/partly labelling from the sample name):

# %%
pred_path = work / "synthetic_sample_pred.zarr"
write_fisbe(pred_path, pred=cc)
out = work / "results.json"
cmd = [
    sys.executable,
    "-c",
    "import sys; from neuroana.cli import main; sys.exit(main())",
    "fisbe",
    "evaluate",
    "--gt",
    str(sample),
    "--pred",
    str(pred_path),
    "--out",
    str(out),
]
print("$ neuroana fisbe evaluate --gt", sample.name, "--pred", pred_path.name, "--out", out.name)
proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
print("exit code:", proc.returncode, proc.stderr[-2000:])
saved = json.loads(out.read_text())
print({n: saved["summary"][n] for n in ("S", "avF1", "C", "clDice_TP", "tp", "FS", "FM")})
print("same as in memory:", saved["summary"]["S"] == kc["S"])

# %% [markdown]
# (`neuroana` is the installed console script; here it is run through the current Python so the
# notebook uses the same environment.)
#
# ## Looking at it in napari
#
# With napari installed, the `neuroana` plugin opens FISBe samples and shows the evaluation
# (nothing here starts napari):
#
# - **File > Open** on a `*.zarr` FISBe directory uses the plugin's reader: the raw image becomes
#   three additive colour layers (red, green, blue, contrast 0-1500), each GT neuron its own
#   Labels layer (overlapping neurons need separate layers), a prediction its own layers; all at
#   0.44 um voxels. From Python: `napari.Viewer().open(str(sample), plugin="neuroana")`.
# - **Plugins > FISBe evaluation** (widget `neuroana.fisbe_widget`): pick the GT layers and a
#   prediction, press *Evaluate*; it shows the scores and adds skeletons and the matcher's
#   TP / FN / FP / false-split / false-merge instances in fixed colours
#   (`neuroana.viz.napari._fisbe.show_evaluation(viewer, gt, pred)` does the same from code).
# - **File > Open Sample > Synthetic FISBe volume** loads a volume like the one above.

# %%
print("files of this tutorial in", work)
