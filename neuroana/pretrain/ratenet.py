"""Tensor core of :class:`~neuroana.pretrain.ratemodel.SpikeRateModel`: three log-rate pathways.

For unit ``j`` in fine bin ``t`` (width ``dt``), the expected count is ``exp(eta[t, j])`` with

    eta[t, j] = b_j                                        (per-unit rate)
              + sum_i sum_k W[j, i, k] * H[t, i, k]        ("coupling": spike history, lags 1..L)
              + sum_w g[j, w] * log1p(pop_w(t))            ("poprate": population count, windows w)
              + U[j] . z[m(t) - 1]                         ("attention": latent of the past)

``H[t, i, k] = sum_l basis[k, l] * counts[t - l, i]`` uses raised-cosine lag bases (fixed), so the
coupling pathway is a coupled Poisson GLM in ``(target, source)`` orientation. ``z[m]`` is the output
of a causal, windowed self-attention block over *coarse tokens* (population count vectors of coarse
bins, width ``coarse * dt``) with per-head distance penalties (ALiBi), so it summarises the recent
population state (slow shared fluctuations, behaviour-driven modulation); bin ``t`` in coarse bin
``m(t)`` sees ``z`` of the previous coarse bin only, so every pathway is strictly causal.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PATHWAYS = ("coupling", "poprate", "attention")


def raised_cosine_basis(n_lags: int, n_basis: int) -> np.ndarray:
    """``(n_basis, n_lags)`` raised cosines on a log-stretched lag axis (lags ``1..n_lags`` bins).

    Narrow bumps at short lags (refractoriness, short delays), wide ones at long lags; the bases
    sum to about one over the covered lags.

    Examples
    --------
    >>> from neuroana.pretrain.ratenet import raised_cosine_basis
    >>> B = raised_cosine_basis(20, 6)
    >>> B.shape, bool(B[0].argmax() < B[-1].argmax())
    ((6, 20), True)
    """
    if n_basis < 1 or n_lags < n_basis:
        raise ValueError(f"need 1 <= n_basis <= n_lags, got n_basis={n_basis}, n_lags={n_lags}")
    lags = np.arange(1, n_lags + 1, dtype=float)
    c = 1.0
    y = np.log(lags + c)
    lo, hi = np.log(1 + c), np.log(n_lags + c)
    centres = np.linspace(lo, hi, n_basis)
    width = (hi - lo) / max(n_basis - 1, 1) * 2 if n_basis > 1 else (hi - lo) * 2 + 1
    arg = np.clip((y[None] - centres[:, None]) * np.pi / width, -np.pi, np.pi)
    return 0.5 * (1 + np.cos(arg))


class WindowedAttention(nn.Module):
    """One pre-LN transformer block, causal attention over the last ``window`` tokens with ALiBi."""

    def __init__(self, d: int, n_heads: int, window: int):
        super().__init__()
        if d % n_heads:
            raise ValueError(f"d_latent={d} is not divisible by n_heads={n_heads}")
        self.h, self.dh, self.window = n_heads, d // n_heads, window
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.o = nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        slopes = torch.tensor([2.0 ** (-(i + 1) * 4.0 / n_heads) for i in range(n_heads)])
        self.register_buffer("slopes", slopes, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, L, 3, self.h, self.dh).permute(2, 0, 3, 1, 4)
        pos = torch.arange(L, device=x.device)
        dist = (pos[:, None] - pos[None]).float()
        keep = (dist >= 0) & (dist < self.window)
        bias = -self.slopes[:, None, None] * dist
        bias = bias.masked_fill(~keep, float("-inf"))
        s = (q @ k.transpose(-1, -2)) / math.sqrt(self.dh) + bias
        a = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, L, d)
        x = x + self.o(a)
        return x + self.mlp(self.ln2(x))


class RateNet(nn.Module):
    """Log-rates of every unit in every fine bin from a chunk of counts (see the module docstring).

    ``forward(x)`` takes ``x (B, ctx + T, N)`` fine counts, where the first ``ctx = n_context *
    coarse`` bins are context only, and returns ``eta (B, T, N)`` and the latents ``z (B, T //
    coarse, d)`` that the loss bins used (empty when the attention pathway is off).

    Examples
    --------
    >>> import torch
    >>> from neuroana.pretrain.ratenet import RateNet
    >>> net = RateNet(3, n_lags=10, n_basis=4, coarse=5, n_context=4, pop_windows=(1, 4))
    >>> eta, z = net(torch.zeros(2, 20 + 10, 3))
    >>> tuple(eta.shape), tuple(z.shape)
    ((2, 10, 3), (2, 2, 16))
    """

    def __init__(
        self,
        n_units: int,
        *,
        n_lags: int,
        n_basis: int,
        coarse: int,
        n_context: int,
        pop_windows: tuple = (5, 25, 100),
        d_latent: int = 16,
        n_heads: int = 4,
        pathways: tuple = PATHWAYS,
    ):
        super().__init__()
        bad = sorted(set(pathways) - set(PATHWAYS))
        if bad:
            raise ValueError(f"unknown pathway(s) {bad}; expected a subset of {PATHWAYS}")
        if n_context * coarse < n_lags or n_context < max(pop_windows, default=0):
            raise ValueError("the context must cover the lags and the population windows")
        self.n_units, self.n_lags, self.coarse, self.n_context = n_units, n_lags, coarse, n_context
        self.pathways = tuple(p for p in PATHWAYS if p in pathways)
        self.pop_windows = tuple(int(w) for w in pop_windows)
        self.bias = nn.Parameter(torch.zeros(n_units))
        basis = torch.as_tensor(raised_cosine_basis(n_lags, n_basis), dtype=torch.float32)
        self.register_buffer("basis", basis, persistent=False)
        self.n_basis = n_basis
        self.coupling = nn.Parameter(torch.zeros(n_units, n_units, n_basis))  # (target, source, k)
        self.pop = nn.Linear(len(self.pop_windows), n_units, bias=False)
        nn.init.zeros_(self.pop.weight)
        self.d_latent = d_latent
        self.embed = nn.Linear(n_units, d_latent)
        self.block = WindowedAttention(d_latent, n_heads, n_context)
        self.ln_z = nn.LayerNorm(d_latent)
        self.readout = nn.Linear(d_latent, n_units, bias=False)
        nn.init.zeros_(self.readout.weight)

    @property
    def context_bins(self) -> int:
        return self.n_context * self.coarse

    def history(self, x: torch.Tensor) -> torch.Tensor:
        """Spike-history features ``H (B, T, N, K)`` of the loss bins of ``x (B, ctx + T, N)``."""
        B, Lx, N = x.shape
        T = Lx - self.context_bins
        xs = x[:, self.context_bins - self.n_lags :].permute(0, 2, 1).reshape(B * N, 1, -1)
        h = F.conv1d(xs, self.basis.flip(-1)[:, None, :])[..., :T]  # lag l uses x[t - l]
        return h.view(B, N, self.n_basis, T).permute(0, 3, 1, 2)

    def history_all(self, x: torch.Tensor, block: int = 65536) -> torch.Tensor:
        """History features ``(T, N, K)`` of every bin of a whole recording ``x (T, N)`` (float32,
        computed once per fit and reused by every L-BFGS evaluation; zero history before the first
        bin)."""
        T, N = x.shape
        out = torch.empty(T, N, self.n_basis, dtype=torch.float32, device=x.device)
        xp = F.pad(x.T, (self.n_lags, 0))  # (N, T + L)
        w = self.basis.flip(-1)[:, None, :]
        for a in range(0, T, block):
            b = min(T, a + block)
            h = F.conv1d(xp[:, None, a : b + self.n_lags], w)[..., : b - a]  # (N, K, b - a)
            out[a:b] = h.permute(2, 0, 1)
        return out

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        B, Lx, N = x.shape
        return x.view(B, Lx // self.coarse, self.coarse, N).sum(2)

    def pop_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Population-rate inputs ``(B, T // coarse, n_windows)`` of the loss bins of ``x``:
        ``log1p`` of the population count over the last ``w`` coarse tokens (token ``m`` uses
        tokens ``< m``)."""
        pop = self.tokens(x).sum(-1)  # (B, n_tok)
        cs = F.pad(pop.cumsum(1), (1, 0))
        idx = torch.arange(self.n_context, pop.shape[1], device=x.device)
        return torch.stack([torch.log1p(cs[:, idx] - cs[:, idx - w]) for w in self.pop_windows], -1)

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """Latent of every coarse token ``(B, n_tokens, d)`` (token ``m`` sees tokens ``<= m``)."""
        tok = torch.log1p(self.tokens(x))
        return self.ln_z(self.block(self.embed(tok)))

    def forward(self, x: torch.Tensor, *, history: torch.Tensor | None = None):
        B, Lx, N = x.shape
        T = Lx - self.context_bins
        if T <= 0 or T % self.coarse or Lx % self.coarse:
            raise ValueError(f"chunk of {Lx} bins does not fit context/coarse grid")
        eta = self.bias.expand(B, T, N)
        if "coupling" in self.pathways:
            H = self.history(x) if history is None else history
            eta = eta + H.reshape(B, T, -1) @ self.coupling.reshape(N, -1).T
        c, m0 = self.coarse, self.n_context
        if "poprate" in self.pathways:
            off = self.pop(self.pop_inputs(x))  # (B, T/c, N)
            eta = eta + off.repeat_interleave(c, dim=1)
        z = x.new_zeros(B, T // c, 0)
        if "attention" in self.pathways:
            z = self.latent(x)[:, m0 - 1 : -1]
            eta = eta + self.readout(z).repeat_interleave(c, dim=1)
        return eta, z
