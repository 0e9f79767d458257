"""Issue 13's must-show on networks from our own realistic simulator (other sizes than the public
case's 48 and 36 units): shared slow fluctuation, delays up to 20 ms, refractoriness,
non-contiguous ids.

As in the public case, the connectivity read-outs are scored on hub networks without behaviour
tuning (two here: 40 units / 3 hubs and 30 units / 1 hub) and decoding on a speed-tuned network
(30 units, the same network as ``hub30`` with tuning added). On the tuned network the read-out
is weaker (measured hub-edge AUROC 0.83, excitatory 0.80: the coupling kernels take up part of the
tuning-driven co-modulation), which is reported, not asserted.

Slow (three simulations and three default fits, each fitted once per module):
``pytest --runslow tests/pretrain/test_pretrain_simulated_cases.py``. Baselines are the package's
own: the coupled GLM (the model's first stage, :func:`first_stage`, which equals ``coupled_glm()``
fitted on the same data: ``test_rate_model.py``), the cross-correlogram and the counts-only ridge.
"""

import numpy as np
import pytest
import torch

from neuroana.datasets.spiking_sim import simulate_realistic_network
from neuroana.pretrain import (
    BehaviourDecoder,
    SpikeRateModel,
    ccg_connectivity,
    few_shot,
    first_stage,
    model_connectivity,
)
from neuroana.pretrain.connectivity import score_readout

NETS = {
    "hub40": dict(n_units=40, n_hubs=3, duration=400.0, hub_out_degree=(12, 16), random_state=11),
    "hub30": dict(n_units=30, n_hubs=1, duration=400.0, hub_out_degree=(10, 12), random_state=12),
    "tuned30": dict(
        n_units=30, n_hubs=1, duration=400.0, hub_out_degree=(10, 12), tuned=True, random_state=12
    ),
}
TRAIN, TEST = (0.0, 320.0), (320.0, 400.0)


@pytest.fixture(scope="module", params=list(NETS))
def fitted(request):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    net = simulate_realistic_network(**NETS[request.param])
    m = SpikeRateModel(random_state=0).fit(net.spike_times, *TRAIN)
    torch.set_num_threads(n)
    return net, m


@pytest.mark.slow
def test_simulated_bits_per_spike(fitted):
    net, m = fitted
    sp = net.spike_times
    assert sorted(sp) != list(range(len(sp)))  # non-contiguous ids
    assert m.score(sp, *TEST) >= first_stage(m).score(sp, *TEST) > 0


@pytest.mark.slow
def test_simulated_connectivity(fitted):
    net, m = fitted
    if net.behaviour is not None:
        pytest.skip("read-outs are scored on the hub networks without tuning")
    sp = net.spike_times
    ds = model_connectivity(m, sp, *TEST)
    r = score_readout(ds.score, net.edge_type.values, net.hubs)
    assert r["hub_auroc"] >= 0.95 and r["exc_auroc"] >= 0.9, r
    assert r["hubs_on_top"] and r["forward_gt_reverse"] >= 0.9, r
    ccg = score_readout(ccg_connectivity(sp, *TEST).score, net.edge_type.values, net.hubs)
    assert r["exc_auroc"] > ccg["exc_auroc"], (r, ccg)


@pytest.mark.slow
def test_simulated_decoding(fitted):
    net, m = fitted
    if net.behaviour is None:
        pytest.skip("no behaviour in this network")
    sp, speed = net.spike_times, net.behaviour
    dec = BehaviourDecoder(m).fit(sp, speed, *TRAIN)
    ridge = BehaviourDecoder().fit(sp, speed, *TRAIN)
    assert dec.score(sp, speed, *TEST) >= ridge.score(sp, speed, *TEST)
    scratch = SpikeRateModel(max_epochs=0).fit(sp, *TRAIN)
    fs = few_shot(dec, sp, speed, TRAIN, TEST, scratch=scratch)
    pre = fs.r2.sel({"method": "pretrained"})
    assert np.all(pre > fs.r2.sel({"method": "ridge"})), fs.r2.values
    assert np.all(pre > fs.r2.sel({"method": "scratch"})), fs.r2.values
