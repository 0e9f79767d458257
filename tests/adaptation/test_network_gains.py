"""Analytic and symmetry checks of the recurrent gain network and its optimal gains."""

import numpy as np
import pytest
import torch

from neuroana.adaptation import (
    AdaptationInputError,
    EfficientCoding,
    Homeostatic,
    RecurrentGainNetwork,
    UnstableNetworkError,
    biased_prior,
    optimal_gains,
    uniform_prior,
)
from neuroana.adaptation.gains import solve_gains


@pytest.fixture(scope="module")
def net():
    return RecurrentGainNetwork(n_neurons=16, stimuli=32, recurrence=0.6)


def test_steady_state_equals_converged_dynamics(net):
    g = np.linspace(0.5, 1.5, 16)
    sim = net.simulate(80.0, gains=g, dt=0.05)
    assert np.max(np.abs(sim.values[-1] - net.steady_state(g))) < 1e-9
    # and not yet converged early on (the test would be vacuous otherwise)
    assert np.max(np.abs(net.simulate(0.5, gains=g).values[-1] - net.steady_state(g))) > 1e-2


def test_fft_equals_dense(net):
    g = np.random.default_rng(0).uniform(0.5, 2, 16)
    assert net.is_circulant
    np.testing.assert_allclose(
        net.steady_state(g, method="fft"), net.steady_state(g, method="dense"), atol=1e-13
    )


@pytest.mark.parametrize("obj", [EfficientCoding(alpha=0.0), EfficientCoding(alpha=0.3, lam=2.0)])
def test_gradient_at_analytic_optimum_vanishes(obj):
    n = RecurrentGainNetwork(n_neurons=16, stimuli=32, recurrence=0.0 if obj.alpha else 0.6)
    sol = optimal_gains(n, biased_prior(n.stimuli, 0.0, 0.5), obj, "analytic")
    assert sol.grad_norm < 1e-10


def test_homeostatic_analytic_gives_equal_means(net):
    p = biased_prior(net.stimuli, 0.0, 0.5)
    g = optimal_gains(net, p, Homeostatic(target=2.0), "analytic").gains.values
    np.testing.assert_allclose(net.steady_state(g) @ p, 2.0, rtol=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_methods_agree(net, alpha):
    p = biased_prior(net.stimuli, 0.0, 0.5)
    obj = EfficientCoding(alpha=alpha)
    newton = optimal_gains(net, p, obj, "newton")
    assert newton.grad_norm < 1e-10
    lbfgs = optimal_gains(net, p, obj, "lbfgs").gains.values
    np.testing.assert_allclose(lbfgs, newton.gains.values, rtol=1e-7)
    if alpha == 0.0:
        ana = optimal_gains(net, p, obj, "analytic").gains.values
        np.testing.assert_allclose(ana, newton.gains.values, rtol=1e-12)
    online = optimal_gains(net, p, obj, "online", random_state=1, n_steps=3000).gains.values
    np.testing.assert_allclose(online, newton.gains.values, rtol=0.05)


def test_online_expected_step_is_zero_at_optimum(net):
    p = biased_prior(net.stimuli, 10.0, 0.4)
    obj = EfficientCoding(alpha=0.5)
    g = optimal_gains(net, p, obj, "newton").gains.values
    M, F = torch.as_tensor(net.resolvent()), torch.as_tensor(net.F)
    # expectation over single-stimulus samples, computed exactly
    mean_dir = sum(
        p[k] * obj.online_direction(torch.as_tensor(g), M, F, torch.eye(32, dtype=torch.float64)[k])
        for k in range(32)
    )
    assert float(mean_dir.abs().max()) < 1e-10


def test_gradcheck_through_solution():
    small = RecurrentGainNetwork(n_neurons=5, stimuli=6, recurrence=0.6, kernel_width=40.0)
    M = torch.as_tensor(small.resolvent()).requires_grad_(True)
    F = torch.as_tensor(small.F).clone().requires_grad_(True)
    p = torch.as_tensor(biased_prior(small.stimuli, 0.0, 0.5)).requires_grad_(True)
    for obj, method in [
        (EfficientCoding(alpha=0.0), "analytic"),
        (EfficientCoding(alpha=0.6), "newton"),
    ]:

        def f(M_, F_, p_, obj=obj, method=method):
            return solve_gains(obj, M_, F_, p_, method=method)[0]

        assert torch.autograd.gradcheck(f, (M, F, p), eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_uniform_prior_gives_equal_gains(net, alpha):
    g = optimal_gains(net, uniform_prior(32), EfficientCoding(alpha=alpha), "newton").gains.values
    np.testing.assert_allclose(g, g.mean(), rtol=1e-10)


def test_zero_recurrence_closed_form_and_no_shift():
    from neuroana.adaptation.simulate import simulate_adaptation

    n = RecurrentGainNetwork(n_neurons=16, stimuli=32, recurrence=0.0)
    p = biased_prior(n.stimuli, 0.0, 0.5)
    np.testing.assert_allclose(
        optimal_gains(n, p, EfficientCoding(alpha=1.0), "analytic").gains,
        optimal_gains(n, p, EfficientCoding(alpha=1.0), "newton").gains,
        rtol=1e-12,
    )
    ds = simulate_adaptation(n)
    assert np.max(np.abs(ds.pref_shift.values)) < 1e-10
    assert np.max(np.abs(ds.gain.sel(condition="after") - ds.gain.sel(condition="before"))) > 0.1


def test_bad_input():
    W = np.eye(4) * 1.0
    with pytest.raises(UnstableNetworkError, match="spectral radius"):
        RecurrentGainNetwork(n_neurons=4, stimuli=8, W=W)
    with pytest.raises(UnstableNetworkError):
        RecurrentGainNetwork(n_neurons=8, stimuli=8, recurrence=1.2)
    n = RecurrentGainNetwork(n_neurons=4, stimuli=8)
    with pytest.raises(AdaptationInputError, match="positive"):
        n.steady_state(np.array([1.0, 0.0, 1.0, 1.0]))
    with pytest.raises(AdaptationInputError, match="positive"):
        n.with_gains(-np.ones(4))
    with pytest.raises(AdaptationInputError, match="sums to"):
        optimal_gains(n, np.full(8, 0.2))
    with pytest.raises(AdaptationInputError, match="shape"):
        optimal_gains(n, uniform_prior(9))
    with pytest.raises(AdaptationInputError, match="shape"):
        RecurrentGainNetwork(n_neurons=4, stimuli=8, W=np.zeros((5, 5)))
    with pytest.raises(AdaptationInputError, match="gains have shape"):
        n.steady_state(np.ones(3))
    with pytest.raises(AdaptationInputError, match="closed-form"):
        optimal_gains(n, uniform_prior(8), EfficientCoding(alpha=0.5), "analytic")
    with pytest.raises(AdaptationInputError, match="alpha"):
        EfficientCoding(alpha=1.5)
