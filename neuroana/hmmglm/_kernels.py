"""Compiled (numba) kernels of the HMM inference on CPU.

The forward-backward recursion is sequential in time and does only ``O(K^2)`` work per bin: as
batched tensor operations its cost is the per-step dispatch of a dozen small operations, not the
arithmetic. Here one compiled loop runs each sequence in float64 whatever the working dtype.
Compiled on first use by :func:`neuroana.backend.compiled.compiled` (cached on disk, GIL released).
"""

from __future__ import annotations

import numpy as np

from neuroana.backend.compiled import compiled

__all__ = ["forward_backward_kernel"]


@compiled
def forward_backward_kernel(log_e, A, log_pi0, lengths, gamma, xi_sum, log_lik):  # pragma: no cover
    """Scaled forward-backward of every sequence ``b`` over its first ``lengths[b]`` bins.

    ``log_e`` (B, T, K) emission log-likelihoods; ``A`` (B, K, K) float64 transition
    probabilities; ``log_pi0`` (B, K) float64. Writes ``gamma`` (B, T, K) (left untouched on padded
    bins), ``xi_sum`` (B, K, K) float64 expected transition counts and ``log_lik`` (B,) float64.
    Emissions are scaled by their per-bin maximum and the forward messages normalised each bin;
    the normalisers give the log-likelihood. (Not traced by coverage: compiled.)
    """
    B, T, K = log_e.shape
    alpha = np.empty((T, K))
    e = np.empty((T, K))
    c = np.empty(T)
    beta = np.empty(K)
    w = np.empty(K)
    nxt = np.empty(K)
    for b in range(B):
        L = lengths[b]
        if L <= 0:
            log_lik[b] = 0.0
            continue
        ll = 0.0
        for t in range(L):
            m = -np.inf
            for k in range(K):
                if log_e[b, t, k] > m:
                    m = log_e[b, t, k]
            for k in range(K):
                e[t, k] = np.exp(log_e[b, t, k] - m)
            ll += m
        pm = -np.inf
        for k in range(K):
            if log_pi0[b, k] > pm:
                pm = log_pi0[b, k]
        s = 0.0
        for k in range(K):
            alpha[0, k] = np.exp(log_pi0[b, k] - pm) * e[0, k]
            s += alpha[0, k]
        c[0] = s
        for k in range(K):
            alpha[0, k] /= s
        ll += pm + np.log(s)
        for t in range(1, L):
            s = 0.0
            for j in range(K):
                a = 0.0
                for i in range(K):
                    a += alpha[t - 1, i] * A[b, i, j]
                a *= e[t, j]
                alpha[t, j] = a
                s += a
            c[t] = s
            for j in range(K):
                alpha[t, j] /= s
            ll += np.log(s)
        log_lik[b] = ll
        # backward: beta_t scaled so that gamma_t = alpha_t * beta_t; w = e_t * beta_t / c_t
        for k in range(K):
            beta[k] = 1.0
            gamma[b, L - 1, k] = alpha[L - 1, k]
        for t in range(L - 1, 0, -1):
            for j in range(K):
                w[j] = e[t, j] * beta[j] / c[t]
            for i in range(K):
                a = 0.0
                for j in range(K):
                    p = A[b, i, j] * w[j]
                    a += p
                    xi_sum[b, i, j] += alpha[t - 1, i] * p
                nxt[i] = a
            for i in range(K):
                beta[i] = nxt[i]
                gamma[b, t - 1, i] = alpha[t - 1, i] * nxt[i]
