"""SpikeRateModel: bits/spike, splits, orientation of every read-out on a chain, decoders."""

import numpy as np
import pytest
import torch
import xarray as xr
from sklearn.exceptions import NotFittedError

from neuroana.datasets.spiking_sim import simulate_chain, simulate_realistic_network
from neuroana.errors import PretrainInputError
from neuroana.pretrain import (
    BehaviourDecoder,
    SpikeRateModel,
    bits_per_spike,
    ccg_connectivity,
    co_smoothing,
    compare_connectivity,
    coupled_glm,
    first_stage,
    model_connectivity,
    pearson_r,
    r2_score,
)

KW = {"max_epochs": 4, "verbose": False, "random_state": 0}


@pytest.fixture(scope="module")
def chain():
    return simulate_chain(duration=60.0, random_state=1)


@pytest.fixture(scope="module")
def chain_model(chain):
    return SpikeRateModel(**KW).fit(chain.spike_times, 0.0, 45.0)


def test_bits_per_spike_oracle():
    rng = np.random.default_rng(0)
    lam = np.where(np.arange(4000) % 2, 0.3, 0.01)[:, None] * np.ones((1, 2))
    y = rng.poisson(lam)
    b = bits_per_spike(y, lam)
    # true rates beat the constant rate; the constant rate itself scores exactly 0
    assert np.all(b > 0.3)
    assert np.allclose(bits_per_spike(y, np.broadcast_to(y.mean(0), y.shape)), 0)
    with pytest.raises(ValueError, match="shape"):
        bits_per_spike(y, lam[:10])


def test_model_beats_rate_and_glm_is_a_special_case(chain, chain_model):
    sp = chain.spike_times
    no_coupling = SpikeRateModel(pathways=("poprate",), **KW).fit(sp, 0.0, 45.0)
    base = no_coupling.score(sp, 45.0, 60.0)
    # the chain's edges are only visible to the coupling pathway
    assert chain_model.score(sp, 45.0, 60.0) > base + 0.02
    glm = coupled_glm(**KW).fit(sp, 0.0, 45.0)
    assert glm.net_.pathways == ("coupling", "poprate")
    assert glm.score(sp, 45.0, 60.0) > base + 0.02


def test_fit_never_reads_after_t_stop(chain):
    sp = chain.spike_times
    cut = {u: np.r_[t[t < 30.0], t[t >= 30.0] + 0.0123] for u, t in sp.items()}  # alter the tail
    a = SpikeRateModel(max_epochs=2, random_state=0).fit(sp, 0.0, 30.0)
    b = SpikeRateModel(max_epochs=2, random_state=0).fit(cut, 0.0, 30.0)
    for k, v in a.net_.state_dict().items():
        assert np.array_equal(v.numpy(), b.net_.state_dict()[k].numpy()), k


@pytest.mark.parametrize("readout", ["model", "ccg", "glm"])
def test_orientation_on_a_chain(chain, chain_model, readout):
    """Every read-out: score[target=B, source=A] is the edge A -> B (0 -> 1 -> 2)."""
    sp = chain.spike_times
    if readout == "model":
        ds = model_connectivity(chain_model, sp, 45.0, 60.0, n_null=9, verbose=False)
    elif readout == "glm":
        ds = model_connectivity(coupled_glm(**KW).fit(sp, 0.0, 45.0), sp, 45.0, 60.0, n_null=9)
    else:
        ds = ccg_connectivity(sp, 45.0, 60.0)
    assert ds.score.dims == ("target", "source")
    s = ds.score
    assert float(s.sel(target=1, source=0)) > float(s.sel(target=0, source=1))
    assert float(s.sel(target=2, source=1)) > float(s.sel(target=1, source=2))
    assert float(ds.p_value.sel(target=1, source=0)) <= 0.1
    assert float(ds.p_value.min()) > 0 and float(ds.p_value.max()) <= 1


def test_readout_null_and_subsampling(chain, chain_model):
    ds = model_connectivity(
        chain_model, chain.spike_times, 45.0, 60.0, n_null=5, max_windows=3, verbose=False
    )
    assert ds.attrs["n_windows"] == 3 and ds.attrs["n_null"] == 5
    want = {"score", "p_value", "wald_chi2", "gain", "gain_p_value", "null_q95", "weight"}
    assert set(ds.data_vars) >= want
    # the time-shift null of the held-out gain: 5 shifts give p-values on a 1/6 grid
    assert float(ds.gain_p_value.min()) >= 1 / 6
    # the Wald p-value is the chi-square tail of its statistic (n_basis degrees of freedom)
    from scipy.stats import chi2

    off = ~np.eye(3, dtype=bool)
    np.testing.assert_allclose(
        ds.p_value.values[off], chi2.sf(ds.wald_chi2.values[off], chain_model.n_basis), rtol=1e-6
    )
    assert float(ds.p_value.sel(target=1, source=0)) < 1e-6


def test_compare_side_by_side(chain, chain_model):
    glm = coupled_glm(**KW).fit(chain.spike_times, 0.0, 45.0)
    ds = compare_connectivity(
        chain.spike_times, {"model": chain_model, "glm": glm}, 45.0, 60.0, n_null=3, verbose=False
    )
    assert list(ds.method.values) == ["model", "glm", "ccg"]
    assert ds.score.dims == ("method", "target", "source")
    assert bool((ds.score.sel(target=1, source=0) > ds.score.sel(target=0, source=1)).all())


def test_units_must_match(chain, chain_model):
    sp = dict(reversed(list(chain.spike_times.items())))
    with pytest.raises(PretrainInputError, match="same units in the same order"):
        chain_model.score(sp, 45.0, 60.0)


def test_first_stage_is_the_coupled_glm(chain, chain_model):
    sp = chain.spike_times
    glm = coupled_glm(**KW).fit(sp, 0.0, 45.0)
    fs = first_stage(chain_model)
    assert fs.net_.pathways == glm.net_.pathways == ("coupling", "poprate")
    np.testing.assert_allclose(
        fs.predict_rate(sp, 45.0, 50.0), glm.predict_rate(sp, 45.0, 50.0), rtol=1e-4
    )
    assert "attention" in chain_model.net_.pathways  # the model itself is left as it was


def test_bad_input_and_not_fitted(chain, chain_model):
    sp = chain.spike_times
    m = SpikeRateModel(**KW)
    for call in (
        lambda: m.score(sp, 45.0, 60.0),
        lambda: m.transform(sp, 45.0, 60.0),
        lambda: model_connectivity(m, sp, 45.0, 60.0),
        lambda: BehaviourDecoder().predict(sp, 0.0, 1.0),
        lambda: BehaviourDecoder(m).features(sp, 0.0, 1.0),
    ):
        with pytest.raises(NotFittedError):
            call()
    bad = {
        "NaN": {**sp, 0: np.r_[sp[0][:5], np.nan]},
        "inf": {**sp, 0: np.r_[sp[0][:5], np.inf]},
        "no units": {},
        "no spike times": {u: [] for u in sp},
        "mapping": [1.0, 2.0],
        "not numbers": {**sp, 0: ["a", "b"]},
    }
    for what, data in bad.items():
        with pytest.raises(PretrainInputError, match=what.split()[-1].replace("NaN", "NaN or inf")):
            m.fit(data, 0.0, 45.0)
    with pytest.raises(PretrainInputError, match="fewer than 2 training chunks"):
        m.fit(sp, 0.0, 3.0)
    other = {u + 100: t for u, t in sp.items()}
    with pytest.raises(PretrainInputError, match="differ from the fitted units"):
        chain_model.score(other, 45.0, 60.0)
    with pytest.raises(PretrainInputError, match="DataArray"):
        BehaviourDecoder().fit(sp, np.ones(10), 0.0, 10.0)


def test_refit_is_identical_and_on_the_cpu(chain):
    sp = chain.spike_times
    a = SpikeRateModel(max_epochs=2, random_state=3).fit(sp, 0.0, 20.0)
    b = SpikeRateModel(max_epochs=2, random_state=3).fit(sp, 0.0, 20.0)
    for k, v in a.net_.state_dict().items():
        assert v.device.type == "cpu"
        assert torch.equal(v, b.net_.state_dict()[k]), k


def test_co_smoothing(chain):
    da = co_smoothing(SpikeRateModel(**KW), chain.spike_times, [1], (0.0, 45.0), (45.0, 60.0))
    # unit 1 is driven by unit 0 (held in): its rate is predictable without its own spikes
    assert da.attrs["held_out"] > 0.02


def test_decoder_r2_and_lag_option():
    rng = np.random.default_rng(0)
    t = np.arange(0, 200, 0.01)
    speed = xr.DataArray(np.sin(t / 2) + 1.2, dims="time", coords={"time": t})
    lagged = np.interp(t - 1.5, t, speed.values)  # the unit follows speed 1.5 s later
    spikes = {u: np.sort(rng.uniform(0, 200, 2000)) for u in range(3)}
    spikes[7] = t[rng.random(t.size) < 0.3 * lagged]
    a = BehaviourDecoder(lags=(0, 0)).fit(spikes, speed, 0, 160)
    b = BehaviourDecoder(lags=(0, 0), lag=-1.5).fit(spikes, speed, 0, 160)
    ra, rb = a.score(spikes, speed, 160, 200), b.score(spikes, speed, 160, 200)
    # the value 1.5 s earlier is what the unit encodes: cos(0.75)**2 ~ 0.54 of the aligned R²
    assert rb > ra + 0.1 and rb > 0.4
    p = b.predict(spikes, 160, 200)
    from neuroana.pretrain.decode import behaviour_bins

    y = behaviour_bins(speed, 160, 200, 0.05, -1.5)
    assert rb == pytest.approx(r2_score(y, p)) and pearson_r(y, p) ** 2 >= rb - 1e-9


def test_realistic_simulator_features():
    net = simulate_realistic_network(20, 1, duration=30.0, hub_out_degree=(8, 10), random_state=3)
    ids = sorted(net.spike_times)
    assert ids != list(range(20)) and net.weights.dims == ("target", "source")
    d = net.delays.values[net.edge_type.values != ""]
    assert d.min() >= 0.002 and d.max() <= 0.02
    isi = np.concatenate([np.diff(v) for v in net.spike_times.values()])
    assert isi.min() >= 0.001  # absolute refractoriness (2 ms bins, jittered within 1 ms)
    assert float(net.shared.std()) > 0.2
    h = net.hubs[0]
    assert (net.edge_type.sel(source=h) == "hub_exc").sum() >= 8


def test_decoder_default_bin_with_a_default_model(chain, chain_model):
    # the decoder's 50-ms bins are not a multiple of the model's 20-ms latent step: every bin
    # averages the latent steps that start inside it (2 or 3), none from a later bin
    assert chain_model.coarse == 0.02 and BehaviourDecoder().bin == 0.05
    dec = BehaviourDecoder(chain_model, lags=(0, 0))
    F = dec.features(chain.spike_times, 45.0, 46.0)
    z = chain_model.transform(chain.spike_times, 45.0, 46.0).values
    n = len(chain.spike_times)
    assert F.shape == (20, n + z.shape[1])
    np.testing.assert_allclose(F[0, n:], z[0:3].mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(F[1, n:], z[3:5].mean(0), rtol=1e-5, atol=1e-6)
