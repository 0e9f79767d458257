"""The scikit-learn estimators of :mod:`neuroana.segmentation`: :class:`ColourClustering` and
:class:`UNetBaseline`.

:class:`ColourClustering` wraps :func:`~neuroana.segmentation.clustering.colour_clustering` (nothing
is learnt). :class:`UNetBaseline` trains :class:`~neuroana.segmentation.unet.UNet3D` on random crops
of FISBe-layout samples through :func:`neuroana.backend.fit_loop` (AdamW, early stopping on the loss
of fixed held-out crops, atomic checkpoints with resume, bf16 autocast on CUDA) and predicts a full
volume by sliding-window inference followed by
:func:`~neuroana.segmentation.agglomerate.agglomerate`.

One fit-loop *iteration* is ``steps_per_iter`` optimiser steps followed by one evaluation of the
held-out crops (``val_loss``). Crops of iteration ``i`` are drawn from a generator seeded by
``(random_state, i)``, so a resumed run draws the same crops as an uninterrupted one. The fitted
network is kept on the CPU (``model_``), so a fitted estimator pickles without CUDA.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from neuroana.backend import fit_loop, make_generators, resolve_device, seeded_default_generator
from neuroana.dims import INSTANCE, X, Y, Z
from neuroana.errors import FisbeInputError
from neuroana.segmentation.agglomerate import agglomerate
from neuroana.segmentation.baselines import PreparedSample, sample_arrays
from neuroana.segmentation.clustering import as_raw, colour_clustering, normalise_raw
from neuroana.segmentation.unet import (
    DEFAULT_OFFSETS,
    UNet3D,
    baseline_loss,
    sliding_window_predict,
    split_output,
)

__all__ = ["ColourClustering", "UNetBaseline"]

_DTYPES = ("float32", "bfloat16")


class ColourClustering(BaseEstimator):
    """Estimator wrapper of :func:`colour_clustering` (nothing is learnt; ``fit`` segments).

    Parameters are those of :func:`colour_clustering`.

    Attributes
    ----------
    instances_ : xarray.DataArray
        ``("instance", "z", "y", "x")`` FISBe-layout prediction of the last ``fit``.
    n_instances_ : int

    Examples
    --------
    >>> from neuroana.datasets.fisbe_synth import make_fisbe_volume
    >>> ds = make_fisbe_volume((24, 48, 48), n_neurons=2, n_fasciculating=0, random_state=0)
    >>> est = ColourClustering(min_size=50).fit(ds.raw)
    >>> est.instances_.dims
    ('instance', 'z', 'y', 'x')
    """

    def __init__(
        self,
        clip: float = 1500.0,
        sigma: float = 1.0,
        fg_threshold: float = 0.08,
        min_component: int = 100,
        min_distance: int = 4,
        colour_threshold: float = 0.25,
        merge_gap: float = 6.0,
        overlap_gain: float = 3.0,
        min_size: int = 300,
    ):
        self.clip = clip
        self.sigma = sigma
        self.fg_threshold = fg_threshold
        self.min_component = min_component
        self.min_distance = min_distance
        self.colour_threshold = colour_threshold
        self.merge_gap = merge_gap
        self.overlap_gain = overlap_gain
        self.min_size = min_size

    def fit(self, raw, y=None) -> ColourClustering:
        inst = colour_clustering(raw, **self.get_params())
        coords = {}
        if isinstance(raw, xr.DataArray):
            coords = {d: raw.coords[d] for d in ("z", "y", "x") if d in raw.coords}
        self.instances_ = xr.DataArray(
            inst,
            dims=(INSTANCE, Z, Y, X),
            coords={**coords, "instance": np.arange(1, inst.shape[0] + 1)},
            name="instances",
        )
        self.n_instances_ = int(inst.shape[0])
        return self

    def fit_predict(self, raw, y=None) -> xr.DataArray:
        return self.fit(raw).instances_


class UNetBaseline(BaseEstimator):
    """3-D U-Net + mutex watershed baseline for FISBe (multi-channel instances, overlaps kept).

    Parameters
    ----------
    crop : (z, y, x)
        Training crop size (clipped to the sample).
    n_fmaps, depth, fmap_inc : int
        U-Net width, levels and width multiplier (:class:`~neuroana.segmentation.unet.UNet3D`).
    offsets : sequence of (dz, dy, dx)
        Affinity offsets (default: 1, 3 and 9 voxels along each axis).
    batch_size : int
    max_iter : int
        Fit-loop iterations (each ``steps_per_iter`` optimiser steps + one validation).
    steps_per_iter : int
    lr, weight_decay : float
        AdamW settings.
    fg_fraction : float
        Probability that a crop is centred on a foreground voxel (else uniform).
    n_val_crops : int
        Held-out crops (from ``val`` samples, else from the training samples with a separate seed)
        for ``val_loss`` and early stopping.
    patience : int
        Early-stopping patience in iterations.
    clip : float
        Raw intensity clip (FISBe: 1500).
    window, overlap : inference window (default: twice the crop) and its overlap fraction.
    fg_threshold, bias, min_size, overlap_search, merge_size, merge_affinity : float or int
        Agglomeration settings (:func:`~neuroana.segmentation.agglomerate.agglomerate`).
        ``bias`` defaults to 0.6: the class-balanced affinity loss leaves briefly trained
        affinities across touching neurons above 0.5. ``merge_size`` > 0 merges small fragments
        into their best-connected neighbour (needed with a briefly trained network, whose
        fragments would otherwise fall under the evaluation's 800-voxel size filter).
    dtype : {"float32", "bfloat16"}
        Working precision: ``"bfloat16"`` runs the network under bf16 autocast on CUDA (on CPU the
        network always runs in float32).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``.
    random_state : int, numpy Generator or None
        Seeds the weight initialisation and the crops (``None``: fresh entropy). Pass an int for
        a checkpoint resume that draws the same crops as an uninterrupted run.
    checkpoint : path, optional
        Atomic checkpoint written every iteration; with ``resume=True`` a fit continues from it.
    resume : bool
    verbose : bool

    Attributes
    ----------
    model_ : UNet3D
        The trained network (best held-out iteration).
    history_ : xarray.Dataset
        ``loss``, ``val_loss``, loss parts, by ``iteration``.
    best_iteration_ : int
    n_iter_ : int
    stop_reason_ : str

    Examples
    --------
    >>> from neuroana.datasets.fisbe_synth import make_fisbe_volume
    >>> ds = make_fisbe_volume((16, 32, 32), n_neurons=2, random_state=0)
    >>> est = UNetBaseline(crop=(16, 16, 16), n_fmaps=4, depth=2, max_iter=2,
    ...                    steps_per_iter=1, n_val_crops=1, verbose=False).fit([ds])
    >>> est.predict(ds.raw).dims
    ('instance', 'z', 'y', 'x')
    """

    def __init__(
        self,
        crop: Sequence[int] = (24, 40, 40),
        n_fmaps: int = 8,
        depth: int = 3,
        fmap_inc: int = 2,
        offsets: Sequence[Sequence[int]] = DEFAULT_OFFSETS,
        batch_size: int = 2,
        max_iter: int = 40,
        steps_per_iter: int = 5,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        fg_fraction: float = 0.8,
        n_val_crops: int = 4,
        patience: int = 10,
        clip: float = 1500.0,
        window: Sequence[int] | None = None,
        overlap: float = 0.25,
        fg_threshold: float = 0.5,
        min_size: int = 100,
        overlap_search: int = 3,
        bias: float = 0.6,
        merge_size: int = 0,
        merge_affinity: float = 0.5,
        dtype: str = "float32",
        device: str = "auto",
        random_state=None,
        checkpoint: str | os.PathLike | None = None,
        resume: bool = False,
        verbose: bool = False,
    ):
        self.crop = crop
        self.n_fmaps = n_fmaps
        self.depth = depth
        self.fmap_inc = fmap_inc
        self.offsets = offsets
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.steps_per_iter = steps_per_iter
        self.lr = lr
        self.weight_decay = weight_decay
        self.fg_fraction = fg_fraction
        self.n_val_crops = n_val_crops
        self.patience = patience
        self.clip = clip
        self.window = window
        self.overlap = overlap
        self.fg_threshold = fg_threshold
        self.min_size = min_size
        self.overlap_search = overlap_search
        self.bias = bias
        self.merge_size = merge_size
        self.merge_affinity = merge_affinity
        self.dtype = dtype
        self.device = device
        self.random_state = random_state
        self.checkpoint = checkpoint
        self.resume = resume
        self.verbose = verbose

    # -- training ---------------------------------------------------------------------------
    def _draw(self, data, rng, n):
        batch = []
        for _ in range(n):
            d = data[int(rng.integers(len(data)))]
            size = tuple(min(c, s) for c, s in zip(self.crop, d.shape, strict=True))
            if len(d.fg_idx) and rng.random() < self.fg_fraction:
                centre = d.fg_idx[int(rng.integers(len(d.fg_idx)))]
                corner = [
                    int(np.clip(c - s // 2, 0, dim - s))
                    for c, s, dim in zip(centre, size, d.shape, strict=True)
                ]
            else:
                corner = [
                    int(rng.integers(0, dim - s + 1)) for s, dim in zip(size, d.shape, strict=True)
                ]
            batch.append(d.crop(corner, size))
        return [torch.stack(t) for t in zip(*batch, strict=True)]

    def _loss(self, model, batch, dev, autocast):
        x, fg, ni, aff, amask, afg = (t.to(dev) for t in batch)
        if autocast:
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16):
                out = model(x)
        else:
            out = model(x)
        return baseline_loss(out, fg, ni, aff, amask, afg)

    def fit(self, samples, y=None, val=None) -> UNetBaseline:
        """Train on FISBe-layout samples.

        Parameters
        ----------
        samples : sequence of xarray.Dataset (``raw``, ``gt``) or (raw, gt) array pairs
        val : sequence, optional
            Held-out samples for ``val_loss`` (default: fixed crops of ``samples``).
        """
        if not isinstance(samples, (list, tuple)):
            raise FisbeInputError(
                f"samples is a {type(samples).__name__}; expected a list of training samples"
            )
        if len(samples) == 0:
            raise FisbeInputError(
                "samples is empty; expected at least one (raw, gt) training sample"
            )
        if len(self.crop) != 3 or min(self.crop) < 2:
            raise ValueError(f"crop={self.crop}; expected three sizes >= 2")
        for name in ("batch_size", "steps_per_iter", "n_val_crops"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}={getattr(self, name)}; expected >= 1")
        dev = resolve_device(self.device)
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype={self.dtype!r}; expected one of {_DTYPES}")
        autocast = self.dtype == "bfloat16" and dev.type == "cuda"
        rs = self.random_state
        # an int seeds directly (as before); a Generator or None gives a drawn seed
        seed = (
            int(rs)
            if isinstance(rs, (int, np.integer))
            else int(make_generators(rs)[0].integers(2**31))
        )
        offsets = [tuple(int(v) for v in o) for o in self.offsets]
        data = [PreparedSample(*sample_arrays(s), self.clip, offsets) for s in samples]
        vdata = (
            [PreparedSample(*sample_arrays(s), self.clip, offsets) for s in val] if val else data
        )
        with seeded_default_generator(seed):  # weight init; crops: own generators
            model = UNet3D(3, len(offsets), self.n_fmaps, self.depth, self.fmap_inc).to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        vrng = np.random.default_rng([seed, 2**31])
        val_batches = [self._draw(vdata, vrng, 1) for _ in range(self.n_val_crops)]

        def step(it):
            rng = np.random.default_rng([seed, it])
            model.train()
            tot = 0.0
            parts = {}
            for _ in range(self.steps_per_iter):
                loss, parts = self._loss(
                    model, self._draw(data, rng, self.batch_size), dev, autocast
                )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                tot += float(loss.detach())
            model.eval()
            with torch.no_grad():
                vl = np.mean([float(self._loss(model, b, dev, autocast)[0]) for b in val_batches])
            return {"loss": tot / self.steps_per_iter, "val_loss": vl, **parts}

        def get_state():
            return {
                "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                "opt": opt.state_dict(),
            }

        def set_state(state):
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["opt"])

        res = fit_loop(
            step,
            max_iter=int(self.max_iter),
            monitor="loss",
            early_stop="val_loss",
            patience=int(self.patience),
            get_state=get_state,
            set_state=set_state,
            checkpoint=self.checkpoint,
            resume=bool(self.resume),
            verbose=bool(self.verbose),
            desc="UNetBaseline",
        )
        if res.best_state is not None:
            model.load_state_dict(res.best_state["model"])
        model.eval()
        self.model_ = model.cpu()  # CPU state: the fitted estimator pickles without CUDA
        self.offsets_ = offsets
        self.history_ = res.history
        self.best_iteration_ = res.best_iteration
        self.n_iter_ = res.n_iter
        self.stop_reason_ = res.stop_reason
        return self

    # -- inference --------------------------------------------------------------------------
    def predict_maps(self, raw) -> dict[str, np.ndarray]:
        """Sliding-window network output over a full volume: ``fg`` (Z,Y,X) probability,
        ``numinst`` (3,Z,Y,X) class probabilities, ``affinities`` (K,Z,Y,X) probabilities."""
        if not hasattr(self, "model_"):
            raise NotFittedError("This UNetBaseline instance is not fitted yet; call 'fit' first")
        raw = as_raw(raw)
        dev = resolve_device(self.device)
        window = self.window if self.window is not None else tuple(2 * c for c in self.crop)
        try:
            out = sliding_window_predict(
                self.model_.to(dev),
                normalise_raw(raw, self.clip),
                window,
                self.overlap,
                device=dev,
                autocast_dtype=(
                    torch.bfloat16 if (self.dtype == "bfloat16" and dev.type == "cuda") else None
                ),
            )
        finally:
            self.model_.cpu()
        o = split_output(torch.from_numpy(out)[None])
        return {
            "fg": torch.sigmoid(o.fg[0, 0]).numpy(),
            "numinst": torch.softmax(o.numinst[0], 0).numpy(),
            "affinities": torch.sigmoid(o.affinities[0]).numpy(),
        }

    def predict(self, raw) -> xr.DataArray:
        """Instances ``("instance", "z", "y", "x")`` (FISBe layout) of a full raw volume."""
        maps = self.predict_maps(raw)
        inst = agglomerate(
            maps["fg"],
            maps["numinst"],
            maps["affinities"],
            self.offsets_,
            fg_threshold=self.fg_threshold,
            min_size=self.min_size,
            overlap_search=self.overlap_search,
            bias=self.bias,
            merge_size=self.merge_size,
            merge_affinity=self.merge_affinity,
        )
        coords = {"instance": np.arange(1, inst.shape[0] + 1)}
        if isinstance(raw, xr.DataArray):
            coords.update({d: raw.coords[d] for d in ("z", "y", "x") if d in raw.coords})
        return xr.DataArray(inst, dims=(INSTANCE, Z, Y, X), coords=coords, name="instances")
