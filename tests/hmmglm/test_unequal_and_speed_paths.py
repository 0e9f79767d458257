"""Unequal trials (scan with per-trial resets vs sequential vs enumeration), the cached-pair Fisher
matrices against einsum, and the thread rule of HMM-GLM fits."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from neuroana.backend.threads import fit_threads, limit_threads, usable_cores
from neuroana.datasets.hmmglm_sim import simulate_hmmglm
from neuroana.hmmglm import HMMGLM
from neuroana.hmmglm.data import prepare_spikes
from neuroana.hmmglm.em import estep
from neuroana.hmmglm.emissions import _fisher, exp_filter, newton_mstep, pair_products
from neuroana.hmmglm.inference import forward_backward, forward_backward_scan
from neuroana.hmmglm.init import EMParams


def _unequal_trials(seed, lengths, n_units=4):
    sim = simulate_hmmglm(3, n_units, n_trials=len(lengths), n_time=max(lengths), random_state=seed)
    x = sim.spikes.values
    return [x[i, :L] for i, L in enumerate(lengths)]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_scan_equals_sequential_on_unequal_trials(dtype):
    # long unequal sequences: the associative scan must reset at every trial start and ignore the
    # padding exactly as the sequential recursion does
    g = torch.Generator().manual_seed(0)
    B, T, K = 5, 700, 4
    log_e = (4.0 * torch.randn(B, T, K, generator=g, dtype=torch.float64) - 30.0).to(dtype)
    log_A = torch.log_softmax(2 * torch.randn(B, K, K, generator=g, dtype=torch.float64), -1)
    log_pi0 = torch.log_softmax(torch.randn(B, K, generator=g, dtype=torch.float64), -1)
    lengths = torch.tensor([700, 513, 64, 2, 699])
    a = forward_backward(log_e, log_A.to(dtype), log_pi0.to(dtype), lengths)
    b = forward_backward_scan(log_e, log_A.to(dtype), log_pi0.to(dtype), lengths)
    ref = forward_backward(log_e.double(), log_A, log_pi0, lengths)
    # float32: the scan carries the partial products' log-scales in float64, so it is as close to
    # the float64 answer as the sequential recursion (before, 3e-3 off in gamma at T = 700)
    tol, gtol = (1e-6, 2e-5) if dtype == torch.float32 else (1e-12, 1e-10)
    for post in (a, b):
        np.testing.assert_allclose(post.log_lik.numpy(), ref.log_lik.numpy(), rtol=tol)
        np.testing.assert_allclose(post.gamma.double().numpy(), ref.gamma.numpy(), atol=gtol)
        np.testing.assert_allclose(post.xi_sum.double().numpy(), ref.xi_sum.numpy(), rtol=gtol)
        assert (post.gamma[3, 2:] == 0).all() and (post.gamma[2, 64:] == 0).all()
    np.testing.assert_allclose(b.log_lik.numpy(), a.log_lik.numpy(), rtol=1e-6)
    if dtype == torch.float64:
        np.testing.assert_allclose(b.gamma.numpy(), a.gamma.numpy(), atol=1e-9)
        np.testing.assert_allclose(b.xi_sum.numpy(), a.xi_sum.numpy(), rtol=1e-9)


def test_estep_scan_equals_sequential_on_unequal_spike_trials():
    trials = _unequal_trials(1, [400, 250, 333])
    batch = prepare_spikes(trials, exp_filter(), torch.device("cpu"), torch.float64)
    g = torch.Generator().manual_seed(1)
    theta = 0.3 * torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
    lA = torch.log_softmax(3 * torch.eye(3, dtype=torch.float64), -1).expand(2, 3, 3)
    lp = torch.full((2, 3), -np.log(3), dtype=torch.float64)
    p = EMParams(theta, lA, lp)
    seq, scan = estep(batch, p, "sigmoid", "sequential"), estep(batch, p, "sigmoid", "scan")
    np.testing.assert_allclose(scan[0].numpy(), seq[0].numpy(), rtol=1e-10)
    np.testing.assert_allclose(scan[1].numpy(), seq[1].numpy(), atol=1e-9)
    np.testing.assert_allclose(scan[2].numpy(), seq[2].numpy(), rtol=1e-9)
    with pytest.raises(ValueError, match="method"):
        estep(batch, p, "sigmoid", "parallel")


def _numpy_emissions(x, W, b, phi):
    """Per-state emission log-likelihoods of one trial (T, K), written independently of the package."""
    T, N = x.shape
    h = np.zeros((T, N))
    for t in range(T):
        for k in range(1, phi.size + 1):
            if t - k >= 0:
                h[t] += phi[k - 1] * x[t - k]
    eta = b[None, None, :] + np.einsum("knj,tj->tkn", W, h)
    rate = (1 - 1e-8) / (1 + np.exp(-eta)) + 1e-8
    from scipy.special import gammaln

    ll = x[:, None, :] * np.log(rate + 1e-8) - rate - gammaln(x + 1)[:, None, :]
    return ll.sum(-1)


def test_unequal_trials_score_equals_enumeration():
    # a list of trials of different lengths through the public API against brute-force paths
    rng = np.random.default_rng(0)
    K, N = 2, 3
    W = rng.normal(0, 0.8, (K, N, N))
    b = rng.normal(-0.5, 0.3, N)
    A = np.array([[0.8, 0.2], [0.3, 0.7]])
    trials = [rng.poisson(0.6, (L, N)) for L in (7, 10, 8)]
    m = HMMGLM.from_params(W, b, A, link="sigmoid")
    got = m.score_trials(trials)
    phi = exp_filter()[0]
    for tr, val in zip(trials, got, strict=True):
        le = _numpy_emissions(tr.astype(float), W, b, phi)
        L = tr.shape[0]
        logp = []
        for z in itertools.product(range(K), repeat=L):
            s = np.log(0.5) + le[0, z[0]]
            s += sum(np.log(A[z[t - 1], z[t]]) + le[t, z[t]] for t in range(1, L))
            logp.append(s)
        assert abs(val - np.logaddexp.reduce(logp)) < 1e-9 * abs(val)
    post = m.posterior(trials)
    assert np.isnan(post.values[0, 7:]).all() and not np.isnan(post.values[1]).any()


def test_padding_is_inert_in_the_whole_fit():
    # the same unequal trials, once padded with zeros (as prepare_spikes does) and once with
    # garbage counts and features in the padded bins: every EM stage must give the same model
    from neuroana.hmmglm.em import fit_em
    from neuroana.hmmglm.init import explore_subset, flatten, initial_params

    trials = _unequal_trials(2, [300, 180, 240])
    batch = prepare_spikes(trials, exp_filter(), torch.device("cpu"), torch.float64)
    pad = torch.arange(300)[None, :] >= batch.lengths[:, None]
    g = torch.Generator().manual_seed(5)
    junk = batch._replace(
        Y=torch.where(pad[..., None], torch.randint(0, 4, batch.Y.shape, generator=g), batch.Y),
        X=torch.where(
            pad[..., None], torch.rand(batch.X.shape, generator=g, dtype=torch.float64), batch.X
        ),
    )
    junk = junk._replace(lgam=torch.lgamma(junk.Y + 1))
    fits = []
    for b in (batch, junk):
        rng = np.random.default_rng(0)
        full = flatten(b)
        explore = explore_subset(full, 2, rng)
        p0 = initial_params(full, explore, 3, 2, "sigmoid", rng, select=True)
        common = {"link": "sigmoid", "sticky": 0.0, "strength_floor": 0.15, "n_explore": 2}
        fits.append(fit_em(full, explore, p0, prior="onehot", max_iter=6, tol=0.0, **common))
    for a, b in zip(fits[0].params, fits[1].params, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        fits[0].history["objective"].values, fits[1].history["objective"].values, rtol=1e-12
    )


def test_pair_product_fisher_equals_einsum():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(500, 7, generator=g, dtype=torch.float64)
    u = torch.rand(500, 4, generator=g, dtype=torch.float64)
    want = torch.einsum("mp,mn,mq->npq", X, u, X)
    torch.testing.assert_close(_fisher(X, u), want)
    torch.testing.assert_close(_fisher(X, u, pair_products(X)), want)
    torch.testing.assert_close(_fisher(X, u, max_elems=50), want)  # several row chunks


def test_newton_mstep_same_with_and_without_cached_pairs():
    sim = simulate_hmmglm(2, 5, n_trials=3, n_time=400, random_state=0)
    batch = prepare_spikes(sim.spikes, exp_filter(), torch.device("cpu"), torch.float64)
    X, Y = batch.X.reshape(-1, 6), batch.Y.reshape(-1, 5)
    G = torch.rand(1, 2, X.shape[0], generator=torch.Generator().manual_seed(0), dtype=X.dtype)
    theta = torch.zeros(1, 2, 5, 6, dtype=X.dtype)
    a = newton_mstep(X, Y, G, theta, "sigmoid", n_iter=3)
    b = newton_mstep(X, Y, G, theta, "sigmoid", n_iter=3, pairs=pair_products(X))
    torch.testing.assert_close(a.theta, b.theta)
    torch.testing.assert_close(a.fisher, b.fisher)


def test_thread_rule_and_restore(monkeypatch):
    before = torch.get_num_threads()
    assert fit_threads(10) == 1
    assert 1 <= fit_threads(1e15) <= usable_cores()
    with limit_threads(10**6) as n:
        assert n == usable_cores() == torch.get_num_threads()
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), limit_threads(1):
        raise RuntimeError("restored on error too")
    assert torch.get_num_threads() == before

    # a small HMM-GLM fit runs on one thread and restores the caller's setting
    import neuroana.hmmglm.estimator as est

    seen = []
    real = est.fit_em

    def spy(*a, **k):
        seen.append(torch.get_num_threads())
        return real(*a, **k)

    monkeypatch.setattr(est, "fit_em", spy)
    sim = simulate_hmmglm(2, 3, n_trials=2, n_time=100, random_state=0)
    torch.set_num_threads(2)
    try:
        HMMGLM(2, n_restarts=1, max_iter=2, random_state=0, device="cpu").fit(sim.spikes)
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
