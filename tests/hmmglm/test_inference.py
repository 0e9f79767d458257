"""Exactness of the batched HMM inference against brute-force enumeration of all state paths."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from neuroana.hmmglm.inference import (
    _forward_backward_torch,
    forward_backward,
    forward_backward_scan,
    viterbi,
)


def _random_case(seed, B=3, T=5, K=3):
    g = torch.Generator().manual_seed(seed)
    log_e = 3.0 * torch.randn(B, T, K, generator=g, dtype=torch.float64) - 20.0
    log_A = torch.log_softmax(torch.randn(B, K, K, generator=g, dtype=torch.float64), -1)
    log_pi0 = torch.log_softmax(torch.randn(B, K, generator=g, dtype=torch.float64), -1)
    return log_e, log_A, log_pi0


def _brute(log_e, log_A, log_pi0, length):
    """Enumerate every path of one sequence: log Z, gamma, summed pairwise marginals, best path."""
    le, lA, lp = log_e.numpy(), log_A.numpy(), log_pi0.numpy()
    K = le.shape[1]
    paths, logp = [], []
    for z in itertools.product(range(K), repeat=length):
        s = lp[z[0]] + le[0, z[0]]
        for t in range(1, length):
            s += lA[z[t - 1], z[t]] + le[t, z[t]]
        paths.append(z)
        logp.append(s)
    logp = np.array(logp)
    logz = np.logaddexp.reduce(logp)
    p = np.exp(logp - logz)
    gamma = np.zeros((length, K))
    xi = np.zeros((K, K))
    for z, w in zip(paths, p, strict=True):
        for t in range(length):
            gamma[t, z[t]] += w
        for t in range(1, length):
            xi[z[t - 1], z[t]] += w
    return logz, gamma, xi, list(paths[int(np.argmax(logp))])


# forward_backward runs the compiled CPU kernel here; _forward_backward_torch is its recursion as
# tensor operations (what runs on a GPU), checked on CPU tensors
@pytest.mark.parametrize(
    "method", [forward_backward, _forward_backward_torch, forward_backward_scan]
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_forward_backward_equals_enumeration(method, seed):
    log_e, log_A, log_pi0 = _random_case(seed, B=3, T=6, K=3)
    lengths = torch.tensor([6, 4, 1])
    post = method(log_e, log_A, log_pi0, lengths)
    for b in range(3):
        L = int(lengths[b])
        logz, gamma, xi, _ = _brute(log_e[b, :L], log_A[b], log_pi0[b], L)
        assert abs(float(post.log_lik[b]) - logz) < 1e-10 * max(1.0, abs(logz))
        np.testing.assert_allclose(post.gamma[b, :L].numpy(), gamma, atol=1e-10)
        np.testing.assert_allclose(post.gamma[b, L:].numpy(), 0.0)
        np.testing.assert_allclose(post.xi_sum[b].numpy(), xi, atol=1e-10)


def test_shared_transition_broadcasts_and_two_states():
    log_e, log_A, log_pi0 = _random_case(5, B=2, T=5, K=2)
    post = forward_backward(log_e, log_A[0], log_pi0[0])
    for b in range(2):
        logz, gamma, xi, _ = _brute(log_e[b], log_A[0], log_pi0[0], 5)
        assert abs(float(post.log_lik[b]) - logz) < 1e-10 * abs(logz)
        np.testing.assert_allclose(post.xi_sum[b].numpy(), xi, atol=1e-10)


def test_viterbi_equals_enumeration():
    log_e, log_A, log_pi0 = _random_case(3, B=4, T=6, K=3)
    lengths = torch.tensor([6, 5, 3, 1])
    vp = viterbi(log_e, log_A, log_pi0, lengths)
    for b in range(4):
        L = int(lengths[b])
        _, _, _, best = _brute(log_e[b, :L], log_A[b], log_pi0[b], L)
        assert vp.path[b, :L].tolist() == best
        assert (vp.path[b, L:] == -1).all()


def test_scan_agrees_with_sequential_on_long_sequences():
    g = torch.Generator().manual_seed(7)
    B, T, K = 3, 300, 4
    log_e = 5 * torch.randn(B, T, K, generator=g, dtype=torch.float64)
    log_A = torch.log_softmax(3 * torch.eye(K, dtype=torch.float64), -1)
    log_pi0 = torch.full((K,), -np.log(K), dtype=torch.float64)
    lengths = torch.tensor([300, 211, 37])
    a = forward_backward(log_e, log_A, log_pi0, lengths)
    for other in (forward_backward_scan, _forward_backward_torch):
        b = other(log_e, log_A, log_pi0, lengths)
        np.testing.assert_allclose(a.log_lik.numpy(), b.log_lik.numpy(), rtol=1e-12)
        np.testing.assert_allclose(a.gamma.numpy(), b.gamma.numpy(), atol=1e-9)
        np.testing.assert_allclose(a.xi_sum.numpy(), b.xi_sum.numpy(), atol=1e-8)


def test_forward_backward_rejects_lengths_outside_the_batch():
    log_e, log_A, log_pi0 = _random_case(2, B=2, T=4, K=2)
    with pytest.raises(ValueError, match="lengths"):
        forward_backward(log_e, log_A, log_pi0, torch.tensor([4, 5]))


@pytest.mark.gpu
def test_cuda_scan_and_fit_agree_with_cpu():
    from neuroana.datasets.hmmglm_sim import simulate_hmmglm
    from neuroana.hmmglm import HMMGLM

    log_e, log_A, log_pi0 = _random_case(11, B=4, T=700, K=3)
    cpu = forward_backward(log_e, log_A, log_pi0)
    gpu = forward_backward_scan(log_e.cuda(), log_A.cuda(), log_pi0.cuda())
    np.testing.assert_allclose(cpu.log_lik.numpy(), gpu.log_lik.cpu().numpy(), rtol=1e-12)
    np.testing.assert_allclose(cpu.gamma.numpy(), gpu.gamma.cpu().numpy(), atol=1e-9)
    sim = simulate_hmmglm(2, 6, n_trials=6, n_time=600, random_state=0)
    kw = {"link": "sigmoid", "n_restarts": 2, "random_state": 0, "dtype": "float64"}
    a = HMMGLM(2, device="cpu", **kw).fit(sim.spikes)
    b = HMMGLM(2, device="cuda", **kw).fit(sim.spikes)
    assert abs(a.score(sim.spikes) - b.score(sim.spikes)) < 1e-4
