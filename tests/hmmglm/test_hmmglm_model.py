"""HMMGLM estimator: reference likelihoods, planted recovery, EM monotonicity, equivalences."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.optimize import linear_sum_assignment

from neuroana.datasets.hmmglm_sim import simulate_hmmglm
from neuroana.hmmglm import HMMGLM


def _perm(true, pred, K):
    C = np.zeros((K, K))
    np.add.at(C, (true.ravel(), pred.ravel()), 1)
    return linear_sum_assignment(-C)[1]


@pytest.fixture(scope="module")
def sim():
    return simulate_hmmglm(3, 8, n_trials=12, n_time=600, random_state=3)


@pytest.mark.parametrize("seed", [0, 1])
def test_from_params_reproduces_reference_true_ll(shared_dir, seed):
    import json

    ref = shared_dir / "hmmglm_reference"
    d = np.load(ref / f"seed{seed}.npz")
    js = json.loads((ref / f"seed{seed}.json").read_text())
    m = HMMGLM.from_params(d["weights"], d["bias"], d["transition"], link="sigmoid")
    test = d["spikes"][30:]
    want = js["true_parameters"]["test_ll_per_bin"]
    assert abs(m.score(test) / want - 1) < 1e-6
    np.testing.assert_allclose(
        m.score_trials(test), js["true_parameters"]["test_ll_per_sequence"], rtol=1e-6
    )


def test_planted_recovery_all_priors(sim):
    K = 3
    true_m = HMMGLM.from_params(sim.weights, sim.bias, sim.transition, link="sigmoid")
    true_ll = true_m.score(sim.spikes)
    true_acc = (true_m.predict_states(sim.spikes).values == sim.states.values).mean()
    for prior in ("none", "gaussian", "onehot"):
        m = HMMGLM(K, prior=prior, link="sigmoid", n_restarts=2, random_state=0, device="cpu")
        m.fit(sim.spikes)
        path = m.predict_states(sim.spikes).values
        perm = _perm(sim.states.values, path, K)
        acc = (np.argsort(perm)[path] == sim.states.values).mean()
        assert acc > true_acc - 0.02, (prior, acc, true_acc)
        # the fit's training likelihood is at least the truth's (minus small slack)
        assert m.score(sim.spikes) > true_ll - 0.01, prior
        W = m.weights_.values[perm]
        assert np.mean((W - sim.weights) ** 2) < 0.03, prior
        if prior == "onehot":
            adj_acc = (m.adjacency_.values[perm] == sim.adjacency).mean()
            trivial = (sim.adjacency == 0).mean()
            assert adj_acc > trivial + 0.05 and adj_acc > 0.9, (adj_acc, trivial)
            assert m.prior_prob_.dims == ("target", "source", "class")
            np.testing.assert_allclose(m.prior_prob_.sum("class"), 1.0, rtol=1e-6)
            # weights are exactly class x strength with strength >= the floor
            w, a = m.weights_.values, m.adjacency_.values
            assert np.all(w[a == 0] == 0) and np.all(np.abs(w[a != 0]) >= 0.15 - 1e-6)


def test_em_never_decreases_likelihood(sim):
    m = HMMGLM(3, link="softplus", n_restarts=1, max_iter=12, tol=0, random_state=1, device="cpu")
    m.fit(sim.spikes[:6])
    ll = m.history_["log_lik"].values
    assert len(ll) == 12
    assert np.all(np.diff(ll) >= -1e-7 * np.abs(ll[1:])), np.diff(ll).min()


def test_em_monotone_float64_exp_link():
    s = simulate_hmmglm(2, 5, n_trials=6, n_time=300, random_state=5)
    m = HMMGLM(2, link="exp", n_restarts=1, max_iter=15, tol=0, dtype="float64", random_state=2)
    m.fit(s.spikes)
    ll = m.history_["log_lik"].values
    assert np.all(np.diff(ll) >= -1e-10 * np.abs(ll[1:])), np.diff(ll).min()


def test_single_state_equals_glm_without_hmm(sim):
    """n_states=1: score equals the plain Poisson-GLM log-likelihood computed directly."""
    from scipy.special import gammaln

    m = HMMGLM(1, link="exp", n_restarts=1, dtype="float64", device="cpu").fit(sim.spikes)
    x = sim.spikes.values.astype(float)
    phi = m.history_basis_.values[0]
    h = np.zeros_like(x)
    for k in range(1, len(phi) + 1):
        h[:, k:] += phi[k - 1] * x[:, :-k]
    eta = m.bias_.values[0] + h @ m.weights_.values[0].T
    # the paper's Poisson term: x * log(rate + 1e-8) - rate - log x!
    ll = (x * np.log(np.exp(eta) + 1e-8) - np.exp(eta) - gammaln(x + 1)).sum()
    assert abs(m.score(sim.spikes) - ll / (x.shape[0] * x.shape[1])) < 1e-10
    assert (m.predict_states(sim.spikes).values == 0).all()


def test_unequal_trials_match_separate_scoring(sim):
    m = HMMGLM.from_params(sim.weights, sim.bias, sim.transition, link="sigmoid")
    x = sim.spikes.values
    trials = [x[0, :600], x[1, :250], x[2, :400]]
    per = m.score_trials(trials)
    for tr, ll in zip(trials, per, strict=True):
        assert abs(m.score_trials([tr])[0] - ll) < 1e-8 * abs(ll)
    post = m.posterior(trials)
    assert np.isnan(post.values[1, 250:]).all()
    np.testing.assert_allclose(post.values[1, :250].sum(-1), 1.0, atol=1e-9)
    assert (m.predict_states(trials).values[1, 250:] == -1).all()


def test_xarray_transposed_input_and_unit_coords(sim):
    m = HMMGLM.from_params(sim.weights, sim.bias, sim.transition, link="sigmoid")
    da = sim.spikes.assign_coords(unit=[f"u{i}" for i in range(8)])
    a = m.score(da)
    b = m.score(da.transpose("unit", "trial", "time"))
    assert a == b
    fit = HMMGLM(3, link="sigmoid", n_restarts=1, max_iter=3, random_state=0).fit(da)
    assert list(fit.weights_["source"].values) == [f"u{i}" for i in range(8)]
    assert isinstance(fit.history_, xr.Dataset) and "iteration" in fit.history_.dims
