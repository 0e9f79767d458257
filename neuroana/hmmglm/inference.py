"""Exact HMM inference, batched: forward-backward (scaled and associative-scan) and Viterbi.

Every function works on a batch of sequences at once: emissions ``log_e`` have shape ``(B, T, K)``
(``B`` = trials x restarts flattened, ``T`` time bins, ``K`` states), transitions ``log_A`` shape
``(B, K, K)`` or ``(K, K)`` (``A[i, j] = p(z_t = j | z_{t-1} = i)``), initial log-probabilities
``log_pi0`` shape ``(B, K)`` or ``(K,)``, and an optional ``lengths`` ``(B,)`` for padded sequences
of unequal length (bins at or after ``lengths[b]`` are ignored). Every sequence starts from
``pi0`` (per-trial reset). Normalisers are accumulated in float64 whatever the working dtype, and
only sufficient statistics are kept: ``gamma`` (B, T, K) and the expected transition counts summed
over time (B, K, K); no (T, K, K) array is ever built.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

_NEG = -1e30


class Posterior(NamedTuple):
    """Result of :func:`forward_backward`.

    Attributes
    ----------
    log_lik : torch.Tensor
        ``(B,)`` float64 log p(x_b) per sequence.
    gamma : torch.Tensor
        ``(B, T, K)`` state posteriors p(z_t = k | x_b); zero on padded bins.
    xi_sum : torch.Tensor
        ``(B, K, K)`` expected transition counts sum_t p(z_{t-1} = i, z_t = j | x_b).
    """

    log_lik: torch.Tensor
    gamma: torch.Tensor
    xi_sum: torch.Tensor


class ViterbiPath(NamedTuple):
    """Result of :func:`viterbi`: ``path`` (B, T) int64 (-1 on padded bins), ``log_prob`` (B,)."""

    path: torch.Tensor
    log_prob: torch.Tensor


def _prepare(log_e, log_A, log_pi0, lengths):
    B, T, K = log_e.shape
    if log_A.dim() == 2:
        log_A = log_A.expand(B, K, K)
    if log_pi0.dim() == 1:
        log_pi0 = log_pi0.expand(B, K)
    if lengths is None:
        mask = torch.ones(B, T, dtype=torch.bool, device=log_e.device)
    else:
        lengths = torch.as_tensor(lengths, device=log_e.device)
        mask = torch.arange(T, device=log_e.device)[None, :] < lengths[:, None]
    return log_A, log_pi0, mask


def forward_backward(
    log_e: torch.Tensor,
    log_A: torch.Tensor,
    log_pi0: torch.Tensor,
    lengths: torch.Tensor | None = None,
) -> Posterior:
    """Scaled forward-backward recursion (sequential over time, batched over sequences).

    On CPU one compiled loop (:mod:`neuroana.hmmglm._kernels`, float64 inside) runs the
    sequences; on other devices the same recursion runs as batched tensor operations.

    Examples
    --------
    >>> import torch
    >>> from neuroana.hmmglm.inference import forward_backward
    >>> log_e = torch.zeros(1, 4, 2, dtype=torch.float64)
    >>> A = torch.tensor([[0.9, 0.1], [0.2, 0.8]], dtype=torch.float64).log()
    >>> post = forward_backward(log_e, A, torch.full((2,), 0.5, dtype=torch.float64).log())
    >>> round(float(post.log_lik[0]), 12)  # emissions of probability 1 -> log p(x) = 0
    0.0
    """
    if log_e.device.type == "cpu":
        return _forward_backward_cpu(log_e, log_A, log_pi0, lengths)
    return _forward_backward_torch(log_e, log_A, log_pi0, lengths)


def _forward_backward_cpu(log_e, log_A, log_pi0, lengths) -> Posterior:
    from neuroana.hmmglm._kernels import forward_backward_kernel  # numba: imported on first use

    B, T, K = log_e.shape
    log_A, log_pi0, _ = _prepare(log_e, log_A, log_pi0, None)
    if lengths is None:
        n = np.full(B, T, dtype=np.int64)
    else:
        n = torch.as_tensor(lengths).cpu().numpy().astype(np.int64, copy=False)
        if n.shape != (B,) or n.min(initial=0) < 0 or n.max(initial=0) > T:
            raise ValueError(f"lengths must be {B} integers in [0, {T}], got {n!r}")
    le = log_e.detach().contiguous().numpy()
    A = np.ascontiguousarray(log_A.detach().double().exp().numpy())
    lp = np.ascontiguousarray(log_pi0.detach().double().numpy())
    gamma = np.zeros((B, T, K), dtype=le.dtype)
    xi = np.zeros((B, K, K))
    ll = np.empty(B)
    forward_backward_kernel(le, A, lp, n, gamma, xi, ll)
    return Posterior(
        torch.from_numpy(ll), torch.from_numpy(gamma), torch.from_numpy(xi).to(log_e.dtype)
    )


def _forward_backward_torch(log_e, log_A, log_pi0, lengths) -> Posterior:
    """The recursion of :func:`forward_backward` as batched tensor operations (non-CPU devices)."""
    B, T, K = log_e.shape
    log_A, log_pi0, mask = _prepare(log_e, log_A, log_pi0, lengths)
    padded = not bool(mask.all())
    A = log_A.exp()
    m = log_e.max(dim=-1, keepdim=True).values
    e = (log_e - m).exp()  # (B, T, K), max 1 per bin
    alpha = torch.empty_like(e)
    c = torch.empty(B, T, 1, dtype=e.dtype, device=e.device)  # per-bin normalisers
    torch.mul((log_pi0 - log_pi0.max(-1, keepdim=True).values).exp(), e[:, 0], out=alpha[:, 0])
    torch.sum(alpha[:, 0], -1, keepdim=True, out=c[:, 0])
    alpha[:, 0].div_(c[:, 0])
    # Padded bins (t >= length) need no masking in the forward pass: it is causal, so they never
    # reach a real bin, and their normalisers are dropped from the likelihood below.
    for t in range(1, T):
        at = alpha[:, t]
        torch.bmm(alpha[:, t - 1 : t], A, out=at[:, None])
        at.mul_(e[:, t])
        torch.sum(at, -1, keepdim=True, out=c[:, t])
        at.div_(c[:, t])
    c = torch.where(mask, c[..., 0], 1.0)  # working dtype; logs in float64
    log_c = torch.where(mask, c.double().log() + m[..., 0].double(), 0.0)
    log_c[:, 0] += log_pi0.max(-1).values.double()
    log_lik = log_c.sum(-1)
    # backward: beta_t scaled so that gamma_t = alpha_t * beta_t; w_t = e_t * beta_t / c_t is the
    # message into bin t, used for beta and xi. beta is 1 at each sequence's last real bin.
    beta = torch.empty_like(e)
    beta[:, T - 1] = 1.0
    w = torch.empty_like(e)
    w[:, 0] = 0.0
    ec = e / c[..., None]
    if padded:
        ec = torch.where(mask[..., None], ec, 0.0)
    last = (mask.sum(1) - 1)[:, None]  # index of each sequence's last real bin
    ar = torch.arange(T, device=e.device)
    for t in range(T - 1, 0, -1):
        wt = w[:, t]
        torch.mul(ec[:, t], beta[:, t], out=wt)
        bt = beta[:, t - 1]
        torch.bmm(A, wt[:, :, None], out=bt[:, :, None])
        if padded:
            bt.masked_fill_(ar[t - 1] >= last, 1.0)
    gamma = alpha * beta
    if padded:
        gamma = torch.where(mask[..., None], gamma, 0.0)
    # expected transitions: A_ij * sum_t alpha_{t-1,i} w_{t,j}
    xi_sum = A * torch.einsum("bti,btj->bij", alpha[:, :-1], w[:, 1:])
    return Posterior(log_lik, gamma, xi_sum)


def _log_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # (..., I, J) x (..., J, L) in log space
    ma = a.amax(-1, keepdim=True).clamp_min(_NEG)
    mb = b.amax(-2, keepdim=True).clamp_min(_NEG)
    return ((a - ma).exp() @ (b - mb).exp()).log() + ma + mb


def _normalise(x: torch.Tensor, dims) -> tuple[torch.Tensor, torch.Tensor]:
    # x = y + s with max(y) = 0 over dims; s float64 (the large part kept out of the working dtype)
    mx = x.amax(dims, keepdim=True).clamp_min(_NEG)
    return x - mx, mx.double()


def _scan(ops: torch.Tensor, scale: torch.Tensor, reverse: bool = False):
    """Inclusive prefix (or suffix) log-matrix products along dim 1 by recursive doubling.

    Each matrix is kept as ``(x, s)`` = (log entries with max 0 in the working dtype, float64 log
    scale ``s``): products of hundreds of bins reach log-magnitudes that float32 cannot resolve.
    """
    x = ops.flip(1) if reverse else ops
    sc = scale.flip(1) if reverse else scale
    T = x.shape[1]
    shift = 1
    while shift < T:
        left, right = x[:, :-shift], x[:, shift:]
        # forward prefix: P_t = P_{t-shift} @ M_t ; reverse suffix (flipped): S_t = M_t @ S_{t+shift}
        new = _log_matmul(right, left) if reverse else _log_matmul(left, right)
        new, mx = _normalise(new, (-2, -1))
        x = torch.cat([x[:, :shift], new], dim=1)
        sc = torch.cat([sc[:, :shift], sc[:, :-shift] + sc[:, shift:] + mx[..., 0, 0]], dim=1)
        shift *= 2
    return (x.flip(1), sc.flip(1)) if reverse else (x, sc)


def forward_backward_scan(
    log_e: torch.Tensor,
    log_A: torch.Tensor,
    log_pi0: torch.Tensor,
    lengths: torch.Tensor | None = None,
) -> Posterior:
    """Forward-backward by a log-space associative scan: O(log T) depth, for long sequences on GPU.

    Gives the same result as :func:`forward_backward` (to rounding; the large log-scales of the
    partial products are carried in float64). Each sequence restarts from ``log_pi0``; padded bins
    are identity operators, so unequal trials need no special care. On CPU it does more work than
    the sequential recursion, so the estimator uses it only on CUDA for long sequences.

    Examples
    --------
    >>> import torch
    >>> from neuroana.hmmglm.inference import forward_backward, forward_backward_scan
    >>> g = torch.Generator().manual_seed(0)
    >>> le = torch.randn(2, 7, 3, generator=g, dtype=torch.float64)
    >>> lA = torch.softmax(torch.randn(3, 3, generator=g, dtype=torch.float64), -1).log()
    >>> lp = torch.full((3,), 1 / 3, dtype=torch.float64).log()
    >>> a, b = forward_backward(le, lA, lp), forward_backward_scan(le, lA, lp)
    >>> bool(torch.allclose(a.gamma, b.gamma)) and bool(torch.allclose(a.log_lik, b.log_lik))
    True
    """
    B, T, K = log_e.shape
    dt, dev = log_e.dtype, log_e.device
    log_A, log_pi0, mask = _prepare(log_e, log_A, log_pi0, lengths)
    le, m = _normalise(log_e, -1)  # (B, T, K) <= 0 and (B, T, 1) float64
    eye = torch.full((K, K), _NEG, dtype=dt, device=dev)
    eye.diagonal().zero_()
    # M_t[i, j] = log A_ij + log e_t(j) for t >= 1; identity (scale 0) on padded bins
    ops = torch.where(mask[:, 1:, None, None], log_A[:, None] + le[:, 1:, None, :], eye)
    ops, s_ops = _normalise(ops, (-2, -1))
    s_ops = s_ops[..., 0, 0] + torch.where(mask[:, 1:], m[:, 1:, 0], 0.0)  # (B, T-1)
    first, s_first = _normalise(log_pi0 + le[:, 0], -1)  # (B, K), (B, 1)
    s_first = s_first + m[:, 0]
    if T > 1:
        pref, s_pref = _scan(ops, s_ops)  # (B, T-1, K, K)
        la, s_la = _normalise((first[:, None, :, None] + pref).logsumexp(-2), -1)
        log_alpha = torch.cat([first[:, None], la], 1)
        s_alpha = torch.cat([s_first[:, None], s_la + (s_first[:, None] + s_pref[..., None])], 1)
        suff, s_suff = _scan(ops, s_ops, reverse=True)  # S_t = M_t ... M_{T-1}, t = 1..T-1
        lb, s_lb = _normalise(suff.logsumexp(-1), -1)
        zero = torch.zeros(B, 1, K, dtype=dt, device=dev)
        log_beta = torch.cat([lb, zero], 1)
        s_beta = torch.cat([s_lb + s_suff[..., None], zero[..., :1].double()], 1)
    else:
        log_alpha, s_alpha = first[:, None], s_first[:, None]
        log_beta = torch.zeros(B, 1, K, dtype=dt, device=dev)
        s_beta = torch.zeros(B, 1, 1, dtype=torch.float64, device=dev)
    log_lik = log_alpha[:, -1].double().logsumexp(-1) + s_alpha[:, -1, 0]
    off = (s_alpha + s_beta - log_lik[:, None, None]).to(dt)  # (B, T, 1), about 0
    gamma = torch.where(mask[..., None], (log_alpha + log_beta + off).exp(), 0.0)
    if T > 1:
        # xi_t(i, j) = alpha_{t-1}(i) A_ij e_t(j) beta_t(j) / p(x)
        lb1 = le[:, 1:] + log_beta[:, 1:]
        w_off = s_alpha[:, :-1] + m[:, 1:] + s_beta[:, 1:] - log_lik[:, None, None]
        wgt = torch.where(mask[:, 1:, None], w_off.exp().to(dt), 0.0)
        xi_sum = log_A.exp() * torch.einsum(
            "bti,btj->bij", log_alpha[:, :-1].exp() * wgt, lb1.exp()
        )
    else:
        xi_sum = torch.zeros(B, K, K, dtype=dt, device=dev)
    return Posterior(log_lik, gamma, xi_sum)


def viterbi(
    log_e: torch.Tensor,
    log_A: torch.Tensor,
    log_pi0: torch.Tensor,
    lengths: torch.Tensor | None = None,
) -> ViterbiPath:
    """Most probable state path per sequence (max-product, batched).

    Examples
    --------
    >>> import torch
    >>> from neuroana.hmmglm.inference import viterbi
    >>> log_e = torch.tensor([[[0.0, -5.0], [0.0, -5.0], [-5.0, 0.0]]])
    >>> A = torch.tensor([[0.9, 0.1], [0.1, 0.9]]).log()
    >>> viterbi(log_e, A, torch.tensor([0.5, 0.5]).log()).path.tolist()
    [[0, 0, 1]]
    """
    B, T, K = log_e.shape
    log_A, log_pi0, mask = _prepare(log_e, log_A, log_pi0, lengths)
    delta = log_pi0 + log_e[:, 0]
    back = torch.zeros(B, T, K, dtype=torch.long, device=log_e.device)
    ar = torch.arange(K, device=log_e.device).expand(B, K)
    for t in range(1, T):
        s = delta[:, :, None] + log_A  # (B, from, to)
        best, arg = s.max(1)
        keep = mask[:, t : t + 1]
        delta = torch.where(keep, best + log_e[:, t], delta)
        back[:, t] = torch.where(keep, arg, ar)
    log_prob, last = delta.max(-1)
    path = torch.empty(B, T, dtype=torch.long, device=log_e.device)
    path[:, T - 1] = last
    for t in range(T - 1, 0, -1):
        path[:, t - 1] = back[:, t].gather(1, path[:, t : t + 1])[:, 0]
    path = torch.where(mask, path, -1)
    return ViterbiPath(path, log_prob)
