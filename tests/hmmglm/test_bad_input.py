"""Bad input raises clear errors; zero-spike neurons and silent trials give no NaN."""

from __future__ import annotations

import numpy as np
import pytest

from neuroana.datasets.hmmglm_sim import simulate_hmmglm
from neuroana.hmmglm import HMMGLM, HMMGLMInputError


@pytest.fixture(scope="module")
def spikes():
    return simulate_hmmglm(2, 4, n_trials=3, n_time=100, random_state=0).spikes.values


def _fit(x, **kw):
    kw = {"n_restarts": 1, "max_iter": 3, "random_state": 0, **kw}
    return HMMGLM(2, **kw).fit(x)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda x: x + 0.5, "non-integer"),
        (lambda x: x - 1, "negative"),
        (lambda x: np.where(np.arange(x.size).reshape(x.shape) == 7, np.nan, x), "NaN"),
    ],
)
def test_bad_counts(spikes, mutate, match):
    with pytest.raises(HMMGLMInputError, match=match):
        _fit(mutate(spikes.astype(float)))


def test_trial_shorter_than_history(spikes):
    with pytest.raises(HMMGLMInputError, match="history window"):
        _fit([spikes[0], spikes[1, :4]])


def test_more_states_than_bins():
    with pytest.raises(HMMGLMInputError, match="n_states=20"):
        HMMGLM(20, n_restarts=1).fit(np.zeros((1, 10, 2), dtype=int))


def test_unit_mismatch_between_fit_and_score(spikes):
    m = _fit(spikes)
    with pytest.raises(HMMGLMInputError, match="3 units but the model was fitted on 4"):
        m.score(spikes[..., :3])


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"prior": "laplace"}, "prior='laplace'"),
        ({"link": "relu"}, "link='relu'"),
        ({"history": "gamma"}, "history='gamma'"),
        ({"n_restarts": 0}, "n_restarts=0"),
        ({"prior": "onehot", "history": "raised_cosine"}, "single history filter"),
    ],
)
def test_bad_parameters(spikes, kw, match):
    with pytest.raises(ValueError, match=match):
        _fit(spikes, **kw)


def test_wrong_dims(spikes):
    with pytest.raises(ValueError, match="expected 3 dims"):
        _fit(spikes[0])


def test_unfitted_model_raises(spikes):
    with pytest.raises(ValueError, match="not fitted"):
        HMMGLM(2).score(spikes)


@pytest.mark.parametrize("link", ["sigmoid", "softplus", "exp"])
@pytest.mark.parametrize("prior", ["none", "gaussian", "onehot"])
def test_silent_neuron_and_silent_trial_give_finite_fits(spikes, link, prior):
    x = spikes.copy()
    x[:, :, 1] = 0  # a neuron that never fires
    x[2] = 0  # a silent trial
    m = _fit(x, link=link, prior=prior, max_iter=4)
    for attr in ("weights_", "bias_", "transition_", "prior_prob_"):
        assert np.isfinite(getattr(m, attr).values).all(), attr
    assert np.isfinite(m.score(x))
    assert np.isfinite(m.posterior(x).values).all()
    assert np.isfinite(m.history_["log_lik"].values).all()
