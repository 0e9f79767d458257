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
        ec = ec * mask[..., None]
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
        gamma = gamma * mask[..., None]
    # expected transitions: A_ij * sum_t alpha_{t-1,i} w_{t,j}
    xi_sum = A * torch.einsum("bti,btj->bij", alpha[:, :-1], w[:, 1:])
    return Posterior(log_lik, gamma, xi_sum)


def _log_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # (..., I, J) x (..., J, L) in log space
    ma = a.amax(-1, keepdim=True).clamp_min(_NEG)
    mb = b.amax(-2, keepdim=True).clamp_min(_NEG)
    return ((a - ma).exp() @ (b - mb).exp()).log() + ma + mb


def _scan(ops: torch.Tensor, reverse: bool = False) -> torch.Tensor:
    """Inclusive prefix (or suffix) log-matrix products along dim 1 by recursive doubling."""
    x = ops.flip(1) if reverse else ops
    T = x.shape[1]
    shift = 1
    while shift < T:
        left, right = x[:, :-shift], x[:, shift:]
        # forward prefix: P_t = P_{t-shift} @ M_t ; reverse suffix (flipped): S_t = M_t @ S_{t+shift}
        new = _log_matmul(right, left) if reverse else _log_matmul(left, right)
        x = torch.cat([x[:, :shift], new], dim=1)
        shift *= 2
    return x.flip(1) if reverse else x


def forward_backward_scan(
    log_e: torch.Tensor,
    log_A: torch.Tensor,
    log_pi0: torch.Tensor,
    lengths: torch.Tensor | None = None,
) -> Posterior:
    """Forward-backward by a log-space associative scan: O(log T) depth, for long sequences on GPU.

    Gives the same result as :func:`forward_backward` (to rounding). On CPU it does more work than
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
    log_A, log_pi0, mask = _prepare(log_e, log_A, log_pi0, lengths)
    eye = torch.full((K, K), _NEG, dtype=log_e.dtype, device=log_e.device)
    eye.diagonal().zero_()
    # M_t[i, j] = log A_ij + log e_t(j) for t >= 1; identity on padded bins
    ops = log_A[:, None] + log_e[:, 1:, None, :]
    ops = torch.where(mask[:, 1:, None, None], ops, eye)
    first = (log_pi0 + log_e[:, 0])[:, None, None, :]  # (B, 1, 1, K) row vector
    if T > 1:
        pref = _scan(ops)  # (B, T-1, K, K)
        log_alpha = torch.cat(
            [first[:, 0], (first[:, 0, 0][:, None, :, None] + pref).logsumexp(-2)], dim=1
        )
        suff = _scan(ops, reverse=True)  # S_t = M_t ... M_{T-1}, t = 1..T-1
        log_beta = torch.cat(
            [suff.logsumexp(-1), torch.zeros(B, 1, K, dtype=log_e.dtype, device=log_e.device)], 1
        )
    else:
        log_alpha = first[:, 0]
        log_beta = torch.zeros(B, 1, K, dtype=log_e.dtype, device=log_e.device)
    log_alpha = log_alpha.reshape(B, T, K)
    log_lik = log_alpha[:, -1].double().logsumexp(-1)
    lz = log_lik.to(log_e.dtype)[:, None, None]
    gamma = (log_alpha + log_beta - lz).exp() * mask[..., None]
    if T > 1:
        la, lb = log_alpha[:, :-1], log_e[:, 1:] + log_beta[:, 1:]
        ma = la.amax(-1, keepdim=True)
        mb = lb.amax(-1, keepdim=True)
        wgt = (ma + mb - lz).exp() * mask[:, 1:, None]
        xi_sum = log_A.exp() * torch.einsum("bti,btj->bij", (la - ma).exp() * wgt, (lb - mb).exp())
    else:
        xi_sum = torch.zeros(B, K, K, dtype=log_e.dtype, device=log_e.device)
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
