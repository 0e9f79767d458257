"""Adaptation effects, batched solves, Benucci loader and parameter recovery."""

import numpy as np
import pytest
import scipy.io
import xarray as xr

from neuroana.adaptation import (
    GainAdaptationModel,
    RecurrentGainNetwork,
    biased_prior,
    leave_one_session_out,
    optimal_gains,
)
from neuroana.adaptation.batched import batched_adaptation
from neuroana.adaptation.simulate import simulate_adaptation
from neuroana.datasets.adaptation_sim import make_benucci_like
from neuroana.io.benucci import BenucciFormatError, read_benucci


@pytest.fixture(scope="module")
def default_ds():
    # Regime: excitatory ring recurrence (recurrence=0.6 > 0, kernel_width=20 deg), von Mises tuning
    # width 20 deg, EfficientCoding(alpha=1, lam=1), adaptor probability 0.5 at 0 deg.
    return simulate_adaptation(RecurrentGainNetwork())


def test_paper_effects_in_default_regime(default_ds):
    ds = default_ds
    # reduced response maxima and minima for neurons tuned to the adapter
    assert float(ds.max_ratio.sel(neuron=0.0)) < 0.9
    assert float(ds.min_ratio.sel(neuron=0.0)) < 1.0
    # gains of adapter-tuned neurons drop, orthogonal ones rise
    dg = ds.gain.sel(condition="after") / ds.gain.sel(condition="before")
    assert float(dg.sel(neuron=0.0)) < 1.0 < float(dg.sel(neuron=-90.0))
    # repulsion: flank neurons shift away from the adapter (positive repulsion)
    d = np.abs(ds.distance_from_adapter.values)
    flank = (d > 1) & (d < 60)
    assert np.all(ds.repulsion.values[flank] > 0)
    # decorrelation among adapter-tuned neurons, and homeostasis of mean activity
    assert float(ds.adapter_correlation.sel(condition="after")) < float(
        ds.adapter_correlation.sel(condition="before")
    )
    assert float(ds.homeostasis_cv.sel(condition="after")) < float(
        ds.homeostasis_cv.sel(condition="before")
    )


def test_inhibitory_recurrence_flips_shift_to_attraction():
    ds = simulate_adaptation(RecurrentGainNetwork(recurrence=-0.6))
    d = np.abs(ds.distance_from_adapter.values)
    flank = (d > 1) & (d < 60)
    assert np.all(ds.repulsion.values[flank] < 0)


def test_batched_equals_loop():
    net = RecurrentGainNetwork(n_neurons=10, stimuli=20)
    P = np.stack(
        [biased_prior(net.stimuli, a, 0.3 + 0.05 * i) for i, a in enumerate((0, 27, -45, 81))]
    )
    Ws = np.stack([net.W * s for s in (1.0, 0.5, 0.0, -0.5)])
    sol = batched_adaptation(Ws, net.F, P, device="cpu", chunk_size=3)
    for b in range(4):
        nb = RecurrentGainNetwork(n_neurons=10, stimuli=20, W=Ws[b])
        g = optimal_gains(nb, P[b], method="newton").gains.values
        np.testing.assert_allclose(sol.gains[b], g, rtol=1e-10)
        np.testing.assert_allclose(sol.responses[b], nb.steady_state(g), rtol=1e-10)


def test_read_benucci_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    sessions = rng.uniform(size=(11, 13, 21, 2))
    cells = np.empty((1, 11), dtype=object)
    for i in range(11):
        cells[0, i] = sessions[i]
    path = tmp_path / "BenucciTuningData.mat"
    scipy.io.savemat(path, {"resps": cells})
    mtime = path.stat().st_mtime_ns
    da = read_benucci(path)
    assert da.dims == ("session", "neuron", "stimulus", "ensemble")
    np.testing.assert_allclose(da.values[3, 2, 5], sessions[3, 2, 5])
    np.testing.assert_allclose(
        da.values[3, 0, 0, 1], sessions[3, [0, 0, -1, -1], [0, -1, 0, -1], 1].mean()
    )
    assert float(da.adaptor_probability[9]) == 0.30
    assert path.stat().st_mtime_ns == mtime
    bad = tmp_path / "bad.mat"
    cells[0, 2] = np.ones((12, 21, 2))
    scipy.io.savemat(bad, {"resps": cells})
    with pytest.raises(BenucciFormatError, match="session 2"):
        read_benucci(bad)
    with pytest.raises(BenucciFormatError, match="does not exist"):
        read_benucci(tmp_path / "missing.mat")


def test_parameter_recovery():
    truth = {"tuning_width": 18.0, "recurrence": 0.55, "alpha": 0.6}
    data, _ = make_benucci_like(**truth, noise=0.01, n_sessions=6, random_state=3)
    m = GainAdaptationModel(max_iter=10).fit(data)
    assert abs(m.tuning_width_ - truth["tuning_width"]) < 1.0
    assert abs(m.recurrence_ - truth["recurrence"]) < 0.08
    assert abs(m.alpha_ - truth["alpha"]) < 0.3  # alpha is only weakly identified
    # a wrong start recovers the same recurrence
    m2 = GainAdaptationModel(recurrence=-0.3, tuning_width=30.0, max_iter=10).fit(data)
    assert abs(m2.recurrence_ - truth["recurrence"]) < 0.08


def test_model_beats_baselines_held_out():
    data, _ = make_benucci_like(noise=0.01, n_sessions=3, random_state=1)
    full = leave_one_session_out(GainAdaptationModel(max_iter=5), data)
    noadapt = leave_one_session_out(GainAdaptationModel(variant="no_adaptation", max_iter=5), data)
    ff = leave_one_session_out(GainAdaptationModel(variant="feedforward", max_iter=5), data)
    assert float(full.r2_change.mean()) > float(noadapt.r2_change.mean())
    assert float(full.r2_change.mean()) > float(ff.r2_change.mean())
    assert float(full.r2_adapted.mean()) > 0.95


def test_model_bad_input():
    data, _ = make_benucci_like(n_sessions=2, random_state=0)
    with pytest.raises(ValueError, match="expected"):
        GainAdaptationModel().fit(data.isel(ensemble=0))
    with pytest.raises(ValueError, match="variant"):
        GainAdaptationModel(variant="nope").fit(data)
    with pytest.raises(ValueError, match="recurrence"):
        GainAdaptationModel(recurrence=1.0).fit(data)
    with pytest.raises(ValueError, match="ensemble"):
        GainAdaptationModel().fit(data.assign_coords(ensemble=["a", "b"]))
    assert isinstance(data, xr.DataArray)
