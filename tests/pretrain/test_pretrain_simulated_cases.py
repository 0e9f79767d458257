"""Issue 13's must-show on two networks from our own realistic simulator (other sizes than the
public case): shared slow fluctuation, delays up to 20 ms, refractoriness, non-contiguous ids.

Slow (simulation + four fits): ``pytest --runslow tests/pretrain/test_pretrain_simulated_cases.py``.
Baselines are the package's own: ``coupled_glm()`` and the counts-only ridge decoder.
"""

import numpy as np
import pytest
import torch

from neuroana.datasets.spiking_sim import simulate_realistic_network
from neuroana.pretrain import (
    BehaviourDecoder,
    SpikeRateModel,
    coupled_glm,
    few_shot,
    model_connectivity,
)
from neuroana.pretrain.connectivity import score_readout

NETS = {
    "hub40": dict(n_units=40, n_hubs=3, duration=400.0, hub_out_degree=(12, 16), random_state=11),
    "tuned30": dict(
        n_units=30, n_hubs=1, duration=400.0, hub_out_degree=(10, 12), tuned=True, random_state=12
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(NETS))
def test_simulated_network(name):
    torch.set_num_threads(1)
    net = simulate_realistic_network(**NETS[name])
    sp = net.spike_times
    assert sorted(sp) != list(range(len(sp)))  # non-contiguous ids
    train, test = (0.0, 320.0), (320.0, 400.0)
    m = SpikeRateModel(verbose=False).fit(sp, *train)
    glm = coupled_glm(verbose=False).fit(sp, *train)
    assert m.score(sp, *test) >= glm.score(sp, *test)
    ds = model_connectivity(m, sp, *test, verbose=False)
    r = score_readout(ds.score, net.edge_type.values, net.hubs)
    assert r["hub_auroc"] >= 0.95 and r["exc_auroc"] >= 0.9, r
    assert r["hubs_on_top"] and r["forward_gt_reverse"] >= 0.9, r
    if net.behaviour is not None:
        speed = net.behaviour
        dec = BehaviourDecoder(m).fit(sp, speed, *train)
        ridge = BehaviourDecoder().fit(sp, speed, *train)
        assert dec.score(sp, speed, *test) >= ridge.score(sp, speed, *test)
        scratch = SpikeRateModel(max_epochs=0, verbose=False).fit(sp, *train)
        fs = few_shot(dec, sp, speed, train, test, scratch=scratch)
        pre = fs.r2.sel({"method": "pretrained"})
        assert np.all(pre > fs.r2.sel({"method": "ridge"})) and np.all(
            pre > fs.r2.sel({"method": "scratch"})
        )
