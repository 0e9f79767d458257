"""3-D U-Net for the learnt FISBe baseline: network, training targets, loss, sliding-window inference.

The network predicts, per voxel,

- ``fg``: foreground logit (1 channel),
- ``numinst``: logits of the number of instances at the voxel, classes {0, 1, 2+} (3 channels;
  class 2 marks overlaps of two or more neurons),
- ``affinities``: one logit per offset in :data:`DEFAULT_OFFSETS` ("does voxel ``p`` share an
  instance with voxel ``p + offset``"), short-range (1 voxel) and long-range (3 and 9 voxels).

The U-Net has no normalisation layers (batch statistics or per-volume statistics would make a
window's output depend on the rest of the batch/window) and uses zero "same" padding; inputs of any
size are zero-padded to a multiple of ``2 ** (depth - 1)`` and the output is cropped back, so odd
sizes work.

Everything here is a pure function or a plain ``torch.nn.Module``; the estimator lives in
:mod:`neuroana.segmentation.baselines`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "DEFAULT_OFFSETS",
    "UNet3D",
    "UNetOutput",
    "baseline_loss",
    "make_targets",
    "sliding_window_predict",
]

DEFAULT_OFFSETS: tuple[tuple[int, int, int], ...] = (
    (1, 0, 0),
    (0, 1, 0),
    (0, 0, 1),
    (3, 0, 0),
    (0, 3, 0),
    (0, 0, 3),
    (9, 0, 0),
    (0, 9, 0),
    (0, 0, 9),
)
N_NUMINST = 3


class UNetOutput(NamedTuple):
    """Split network output (logits): ``fg`` (B,1,...), ``numinst`` (B,3,...), ``affinities``
    (B,K,...)."""

    fg: torch.Tensor
    numinst: torch.Tensor
    affinities: torch.Tensor


def split_output(out: torch.Tensor) -> UNetOutput:
    """Split the stacked channel output of :class:`UNet3D` into its heads."""
    return UNetOutput(out[:, :1], out[:, 1 : 1 + N_NUMINST], out[:, 1 + N_NUMINST :])


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(cin, cout, 3, padding=1),
        nn.LeakyReLU(0.1, inplace=True),
        nn.Conv3d(cout, cout, 3, padding=1),
        nn.LeakyReLU(0.1, inplace=True),
    )


class UNet3D(nn.Module):
    """A plain 3-D U-Net (same padding, max-pool down, transposed-conv up, skip concatenation).

    Parameters
    ----------
    in_channels : int
        Input channels (3 for FISBe colour images).
    n_offsets : int
        Affinity channels (one per offset).
    n_fmaps : int
        Feature maps at the top level.
    depth : int
        Number of resolution levels (``depth - 1`` down-samplings by 2).
    fmap_inc : int
        Feature-map multiplier per level.

    Examples
    --------
    >>> import torch
    >>> net = UNet3D(n_fmaps=4, depth=2)
    >>> net(torch.zeros(1, 3, 5, 7, 9)).shape
    torch.Size([1, 13, 5, 7, 9])
    """

    def __init__(
        self,
        in_channels: int = 3,
        n_offsets: int = len(DEFAULT_OFFSETS),
        n_fmaps: int = 8,
        depth: int = 3,
        fmap_inc: int = 2,
    ):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth={depth}; expected >= 1")
        self.depth = depth
        self.out_channels = 1 + N_NUMINST + n_offsets
        widths = [n_fmaps * fmap_inc**i for i in range(depth)]
        self.down = nn.ModuleList()
        cin = in_channels
        for w in widths:
            self.down.append(_block(cin, w))
            cin = w
        self.up = nn.ModuleList()
        self.upconv = nn.ModuleList()
        for lo, hi in zip(widths[:-1][::-1], widths[1:][::-1], strict=True):
            self.upconv.append(nn.ConvTranspose3d(hi, lo, 2, stride=2))
            self.up.append(_block(2 * lo, lo))
        self.head = nn.Conv3d(widths[0], self.out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        m = 2 ** (self.depth - 1)
        pad = [(-s) % m for s in size]
        if any(pad):
            x = F.pad(x, [p for q in pad[::-1] for p in (0, q)])
        skips = []
        for i, blk in enumerate(self.down):
            x = blk(x)
            if i < self.depth - 1:
                skips.append(x)
                x = F.max_pool3d(x, 2)
        for upc, blk in zip(self.upconv, self.up, strict=True):
            x = upc(x)
            x = blk(torch.cat([skips.pop(), x], dim=1))
        x = self.head(x)
        return x[(...,) + tuple(slice(0, s) for s in size)]


class Targets(NamedTuple):
    """Training targets from ground truth: ``fg`` (Z,Y,X) float, ``numinst`` (Z,Y,X) long in
    {0,1,2}, ``affinities`` (K,Z,Y,X) float, ``aff_mask`` (K,Z,Y,X) float (0 where ``p + offset``
    leaves the volume), ``aff_fg`` (K,Z,Y,X) float (1 where ``p`` or ``p + offset`` is
    foreground)."""

    fg: np.ndarray
    numinst: np.ndarray
    affinities: np.ndarray
    aff_mask: np.ndarray
    aff_fg: np.ndarray


def _shift_slices(offset: Sequence[int], shape: Sequence[int]):
    """Slices ``src`` (voxels p) and ``dst`` (voxels p + offset) inside the volume."""
    src, dst = [], []
    for o, s in zip(offset, shape, strict=True):
        if o >= 0:
            src.append(slice(0, max(s - o, 0)))
            dst.append(slice(o, s))
        else:
            src.append(slice(-o, s))
            dst.append(slice(0, max(s + o, 0)))
    return tuple(src), tuple(dst)


def make_targets(gt: np.ndarray, offsets: Sequence[Sequence[int]] = DEFAULT_OFFSETS) -> Targets:
    """Foreground, instance-count class and affinities of a FISBe-layout ground truth.

    The affinity of voxel ``p`` for offset ``o`` is 1 when some instance contains both ``p`` and
    ``p + o`` (so overlap voxels have affinity 1 to both of their instances), else 0.

    Parameters
    ----------
    gt : numpy.ndarray, shape (N, Z, Y, X)
        One instance per channel (any non-zero value is the instance).
    offsets : sequence of (dz, dy, dx)

    Returns
    -------
    Targets

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.zeros((2, 1, 1, 4), np.uint8)
    >>> gt[0, 0, 0, :3] = 1; gt[1, 0, 0, 2:] = 2
    >>> t = make_targets(gt, [(0, 0, 1)])
    >>> t.numinst.ravel().tolist(), t.affinities.ravel().tolist()
    ([1, 1, 2, 1], [1.0, 1.0, 1.0, 0.0])
    """
    gt = np.asarray(gt)
    if gt.ndim != 4:
        raise ValueError(f"gt has shape {gt.shape}; expected (instance, z, y, x)")
    masks = gt != 0
    shape = gt.shape[1:]
    count = masks.sum(0)
    fg = count > 0
    aff = np.zeros((len(offsets),) + shape, np.float32)
    amask = np.zeros_like(aff)
    afg = np.zeros_like(aff)
    for k, o in enumerate(offsets):
        src, dst = _shift_slices(o, shape)
        amask[k][src] = 1.0
        afg[k][src] = fg[src] | fg[dst]
        if len(masks):
            aff[k][src] = np.any(masks[(slice(None),) + src] & masks[(slice(None),) + dst], axis=0)
    return Targets(
        fg=fg.astype(np.float32),
        numinst=np.minimum(count, 2).astype(np.int64),
        affinities=aff,
        aff_mask=amask,
        aff_fg=afg,
    )


def baseline_loss(
    out: torch.Tensor,
    fg: torch.Tensor,
    numinst: torch.Tensor,
    affinities: torch.Tensor,
    aff_mask: torch.Tensor,
    aff_fg: torch.Tensor,
    bg_weight: float = 0.05,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Class-balanced loss of the three heads.

    ``fg``: BCE with the positive class re-weighted by the square root of the
    background/foreground ratio (at most 10x); ``numinst``: cross-entropy with weights inverse
    to the class frequencies in the batch (clipped at 50x the background weight); ``affinities``: BCE where ``p + offset`` is inside the
    volume, weighted 1 where ``p`` or ``p + offset`` is foreground and ``bg_weight`` elsewhere
    (background-background edges are trivial and would swamp the loss), then balanced per offset
    so that attractive (target 1) and repulsive (target 0) edges carry equal total weight.

    Parameters
    ----------
    out : Tensor (B, 1 + 3 + K, Z, Y, X)
        Network logits.
    fg, numinst : Tensor (B, Z, Y, X)
        Float {0, 1} and long {0, 1, 2} targets.
    affinities, aff_mask, aff_fg : Tensor (B, K, Z, Y, X)
        See :class:`Targets`.

    Returns
    -------
    loss : Tensor (scalar)
    parts : dict of float
        ``fg``, ``numinst``, ``aff`` loss terms.
    """
    o = split_output(out.float())
    n_fg = fg.sum()
    pos_w = torch.sqrt(torch.clamp((fg.numel() - n_fg) / torch.clamp(n_fg, min=1.0), 1.0, 100.0))
    l_fg = F.binary_cross_entropy_with_logits(o.fg[:, 0], fg, pos_weight=pos_w)
    freq = torch.bincount(numinst.reshape(-1), minlength=N_NUMINST).float()
    w = torch.where(freq > 0, freq.sum() / torch.clamp(freq, min=1.0), torch.zeros_like(freq))
    w = torch.clamp(w / torch.clamp(w[0], min=1e-6), max=50.0)
    l_ni = F.cross_entropy(o.numinst, numinst, weight=w / w.sum())
    weight = aff_mask * (bg_weight + (1 - bg_weight) * aff_fg)
    # class balance per offset: attractive and repulsive edges carry half of each offset's weight
    # (long-range attractive edges are rare; unbalanced, the network predicts them ~0 and the
    # mutex watershed then cuts every neuron into fragments)
    dims = (0, 2, 3, 4)
    pos = (weight * affinities).sum(dims, keepdim=True)
    neg = (weight * (1 - affinities)).sum(dims, keepdim=True)
    bal = affinities / torch.clamp(pos, min=1.0) + (1 - affinities) / torch.clamp(neg, min=1.0)
    weight = weight * bal * 0.5
    bce = F.binary_cross_entropy_with_logits(o.affinities, affinities, reduction="none")
    l_aff = (bce * weight).sum() / torch.clamp(weight.sum(), min=1e-6)
    loss = l_fg + l_ni + l_aff
    parts = {
        "fg": float(l_fg.detach()),
        "numinst": float(l_ni.detach()),
        "aff": float(l_aff.detach()),
    }
    return loss, parts


def _window_weight(size: Sequence[int]) -> np.ndarray:
    """Separable tent weight, highest in the centre, never zero (blending of overlapping windows)."""
    w = np.ones(tuple(size), np.float32)
    for ax, s in enumerate(size):
        i = np.arange(s, dtype=np.float32)
        t = np.minimum(i + 1, s - i)
        shape = [1] * len(size)
        shape[ax] = s
        w = w * t.reshape(shape)
    return w / w.max()


def _starts(n: int, w: int, step: int) -> list[int]:
    if n <= w:
        return [0]
    s = list(range(0, n - w + 1, step))
    if s[-1] != n - w:
        s.append(n - w)
    return s


@torch.no_grad()
def sliding_window_predict(
    model: Callable[[torch.Tensor], torch.Tensor],
    volume: np.ndarray | torch.Tensor,
    window: Sequence[int],
    overlap: float = 0.25,
    device: torch.device | str = "cpu",
    autocast_dtype: torch.dtype | None = None,
) -> np.ndarray:
    """Run ``model`` over a (C, Z, Y, X) volume in overlapping windows and blend the outputs.

    Windows of size ``window`` (clipped to the volume) step by ``window * (1 - overlap)``; the last
    window of each axis is aligned with the volume's end. Outputs are averaged with a tent weight
    (centre voxels count most, borders, where padding affects a "same"-padded network, least).
    When the window covers the volume this is exactly one forward pass.

    Parameters
    ----------
    model : callable
        ``(1, C, z, y, x) -> (1, C_out, z, y, x)`` logits.
    volume : array (C, Z, Y, X)
    window : (wz, wy, wx)
    overlap : float in [0, 1)
    device : device for the forward passes (the accumulator stays on the CPU, float32).
    autocast_dtype : torch.dtype, optional
        Run forwards under ``torch.autocast`` with this dtype (e.g. bfloat16 on CUDA).

    Returns
    -------
    numpy.ndarray (C_out, Z, Y, X) float32

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Conv3d(3, 2, 1)
    >>> x = torch.randn(3, 10, 11, 12)
    >>> y = sliding_window_predict(net, x, (4, 5, 6), overlap=0.5)
    >>> bool(torch.allclose(torch.from_numpy(y), net(x[None])[0], atol=1e-5))
    True
    """
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap={overlap}; expected in [0, 1)")
    vol = torch.as_tensor(volume, dtype=torch.float32)
    if vol.ndim != 4:
        raise ValueError(f"volume has shape {tuple(vol.shape)}; expected (channel, z, y, x)")
    spatial = tuple(vol.shape[1:])
    win = tuple(min(int(w), s) for w, s in zip(window, spatial, strict=True))
    if min(win) < 1:
        raise ValueError(f"window={tuple(window)}; expected positive sizes")
    steps = [max(1, int(round(w * (1 - overlap)))) for w in win]
    weight = torch.from_numpy(_window_weight(win))
    acc = None
    norm = torch.zeros(spatial, dtype=torch.float32)
    dev = torch.device(device)
    for start in itertools.product(
        *[_starts(s, w, st) for s, w, st in zip(spatial, win, steps, strict=True)]
    ):
        sl = tuple(slice(a, a + w) for a, w in zip(start, win, strict=True))
        x = vol[(slice(None),) + sl][None].to(dev)
        if autocast_dtype is not None:
            with torch.autocast(device_type=dev.type, dtype=autocast_dtype):
                y = model(x)
        else:
            y = model(x)
        y = y[0].float().cpu()
        if acc is None:
            acc = torch.zeros((y.shape[0],) + spatial, dtype=torch.float32)
        acc[(slice(None),) + sl] += y * weight
        norm[sl] += weight
    return (acc / norm).numpy()
