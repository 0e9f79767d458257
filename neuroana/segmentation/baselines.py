"""U-Net baseline configurations and training-sample preparation for :class:`UNetBaseline`.

The estimator itself is :class:`neuroana.segmentation.UNetBaseline` (in :mod:`.estimator`).
Configurations: :data:`CPU_SMOKE` (small crops, minutes on a laptop) and :data:`GPU` (larger
crops, wider network, bf16); pass them as ``UNetBaseline(**CPU_SMOKE)``.
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from neuroana.dims import INSTANCE, X, Y, Z
from neuroana.errors import FisbeInputError
from neuroana.segmentation.clustering import as_raw, normalise_raw
from neuroana.segmentation.unet import make_targets

__all__ = ["CPU_SMOKE", "GPU", "PreparedSample", "sample_arrays"]

# CPU: ~200 optimiser steps on 24x48x48 crops (about 3-8 minutes on 2 shared cores). With the
# class-balanced affinity loss, briefly trained affinities between touching neurons stay high, so
# the agglomeration bias is raised to 0.6; small fragments are merged into their best-connected
# neighbour so that they are not lost to the evaluation's 800-voxel size filter.
CPU_SMOKE = dict(
    crop=(24, 48, 48),
    n_fmaps=6,
    depth=3,
    batch_size=1,
    max_iter=40,
    steps_per_iter=5,
    lr=3e-3,
    n_val_crops=2,
    patience=100,
    bias=0.6,
    merge_size=800,
    merge_affinity=0.5,
)
GPU = dict(
    crop=(64, 128, 128),
    n_fmaps=24,
    depth=4,
    batch_size=4,
    max_iter=120,
    steps_per_iter=25,
    dtype="bfloat16",
)


def sample_arrays(sample) -> tuple[np.ndarray, np.ndarray]:
    """``(raw (channel, z, y, x), gt (instance, z, y, x))`` of a Dataset or an array pair.

    Raises
    ------
    FisbeInputError
        Missing variables, a bad raw volume (see :func:`~.clustering.as_raw`), or ground truth that
        is not an integer label array on the same (z, y, x) grid.
    """
    if isinstance(sample, xr.Dataset):
        if "raw" not in sample or "gt" not in sample:
            raise FisbeInputError(
                f"training sample has variables {list(sample.data_vars)}; expected 'raw' and 'gt'"
            )
        raw, gt = sample["raw"], sample["gt"].transpose(INSTANCE, Z, Y, X).values
    else:
        try:
            raw, gt = sample
        except (TypeError, ValueError):
            raise FisbeInputError(
                f"training sample is a {type(sample).__name__}; expected a Dataset with 'raw' and "
                "'gt' or a (raw, gt) pair"
            ) from None
        gt = np.asarray(gt)
    raw = as_raw(raw)
    if gt.ndim != 4 or raw.shape[1:] != gt.shape[1:]:
        raise FisbeInputError(
            f"raw {raw.shape} and gt {gt.shape}; expected (channel, Z, Y, X) and (instance, Z, Y, X)"
            " with the same (Z, Y, X)"
        )
    if gt.dtype.kind not in "biu":
        raise FisbeInputError(f"gt has dtype {gt.dtype}; expected integer instance labels")
    return raw, gt


class PreparedSample:
    """Normalised raw and targets of one sample, as tensors; crops by corner."""

    def __init__(self, raw, gt, clip, offsets):
        t = make_targets(gt, offsets)
        self.offsets = offsets
        self.x = torch.from_numpy(normalise_raw(raw, clip))
        self.fg = torch.from_numpy(t.fg)
        self.ni = torch.from_numpy(t.numinst)
        self.aff = torch.from_numpy(t.affinities)
        self.amask = torch.from_numpy(t.aff_mask)
        self.afg = torch.from_numpy(t.aff_fg)
        self.fg_idx = np.argwhere(t.fg > 0)
        self.shape = t.fg.shape

    def crop(self, corner, size):
        sl = tuple(slice(c, c + s) for c, s in zip(corner, size, strict=True))
        full = (slice(None),) + sl
        # affinities of edges leaving the crop are masked (the crop's own boundary)
        amask = self.amask[full].clone()
        for k, o in enumerate(self.offsets):
            for ax, d in enumerate(o):
                if d > 0:
                    idx = [slice(None)] * 3
                    idx[ax] = slice(max(size[ax] - d, 0), None)
                    amask[(k,) + tuple(idx)] = 0
                elif d < 0:
                    idx = [slice(None)] * 3
                    idx[ax] = slice(0, -d)
                    amask[(k,) + tuple(idx)] = 0
        return self.x[full], self.fg[sl], self.ni[sl], self.aff[full], amask, self.afg[full]
