"""Issue 13's must-show on the outside case ../shared/cases/spiking_networks (package defaults).

Read through the public API as a user would; truth.json only scores. Fits on the first 80 %
([0, 480) s), everything is evaluated on the held-out last 20 % ([480, 600) s).

The must-show tests fit the default model once per network (module fixtures; a few CPU-minutes
in all) and are ``slow``: ``pytest --runslow tests/pretrain/test_pretrain_outside_case.py``. The
default suite keeps :func:`test_public_case_cheap_readouts`: the package's cross-correlogram
baseline and a short coupled GLM on the same public file, scored on the held-out 20 %.
"""

import json

import numpy as np
import pytest
import torch

from neuroana.io import read_behavior, read_spike_times
from neuroana.pretrain import (
    BehaviourDecoder,
    SpikeRateModel,
    ccg_connectivity,
    coupled_glm,
    few_shot,
    first_stage,
    model_connectivity,
)
from neuroana.pretrain.connectivity import score_readout

TRAIN, TEST = (0.0, 480.0), (480.0, 600.0)


@pytest.fixture(scope="module")
def case(shared_dir):
    d = shared_dir / "cases" / "spiking_networks"
    if not (d / "truth.json").is_file():
        pytest.skip(f"outside case not found in {d}")
    return d, json.loads((d / "truth.json").read_text())["datasets"]


def _fit(sp):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return SpikeRateModel(random_state=0).fit(sp, *TRAIN)
    finally:
        torch.set_num_threads(n)


@pytest.fixture(scope="module")
def hubnet(case):
    d, truth = case
    sp = read_spike_times(d / "hubnet_units.nwb")
    return sp, _fit(sp), truth["hubnet"]


@pytest.fixture(scope="module")
def behaviour(case):
    d, truth = case
    sp = read_spike_times(d / "behaviour_units.nwb")
    speed = read_behavior(d / "behaviour_units.nwb", "speed")
    return sp, speed, _fit(sp), truth["behaviour"]


def test_public_case_cheap_readouts(case):
    """Default suite: the read-outs' layout and orientation on the public hub network."""
    d, truth = case
    t = truth["hubnet"]
    sp = read_spike_times(d / "hubnet_units.nwb")
    assert list(sp) == t["unit_ids"]
    et, hubs = np.array(t["edge_type_target_source"]), t["hub_unit_ids"]
    ccg = score_readout(ccg_connectivity(sp, *TEST).score, et, hubs)
    ref = t["baseline_ccg"]["held_out_last_20pct"]
    # the package's CCG baseline reproduces the independent one (same recipe, up to binning)
    assert abs(ccg["hub_auroc"] - ref["hub_edges_auroc"]) < 0.03
    assert ccg["hubs_on_top"] and ccg["forward_gt_reverse"] >= 0.9
    # a 240-s coupled GLM (small budget) already beats the per-unit rate on held-out data and its
    # held-out ablation read-out finds the hub edges in (target, source) orientation
    m = coupled_glm(l2=(100.0,), max_iter=60, n_threads=1, random_state=0).fit(sp, 240.0, 480.0)
    bps = m.score(sp, *TEST)
    ds = model_connectivity(m, sp, *TEST, max_windows=20, random_state=0)
    r = score_readout(ds.score, et, hubs)
    assert bps > 0.05  # measured 0.071 (reference GLM on 384 s: 0.1069)
    assert r["hub_auroc"] >= 0.95 and r["forward_gt_reverse"] >= 0.9 and r["hubs_on_top"]
    assert r["hub_auroc"] > score_readout(ds.score.T.values, et, hubs)["hub_auroc"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hubnet", "behaviour"])
def test_bits_per_spike_at_least_the_coupled_glm(name, request):
    got = request.getfixturevalue(name)
    sp, m, t = got if name == "hubnet" else (got[0], got[2], got[3])
    ref = t["reference_glm"]["held_out_bits_per_spike_vs_constant_rate"]
    bps = m.score(sp, *TEST)
    # measured 0.1126 / 0.1057 (reference 0.1069 / 0.0601)
    assert bps >= ref
    assert bps >= first_stage(m).score(sp, *TEST)  # the package's coupled GLM


@pytest.mark.slow
def test_connectivity_readout_on_held_out_windows(hubnet):
    sp, m, t = hubnet
    ids = list(sp)
    assert ids == t["unit_ids"]  # the truth's (target, source) order is the file's unit order
    et = np.array(t["edge_type_target_source"])
    ds = model_connectivity(m, sp, *TEST)
    r = score_readout(ds.score, et, t["hub_unit_ids"])
    # measured: hub 1.000, exc 0.947, forward > reverse 1.0, the two hubs on top
    assert r["hub_auroc"] >= 0.95
    assert r["exc_auroc"] >= 0.9
    assert r["exc_auroc"] > t["baseline_ccg"]["held_out_last_20pct"]["excitatory_edges_auroc"]
    assert r["hubs_on_top"], r["top_units"]
    assert r["forward_gt_reverse"] >= 0.9
    # the null: most hub edges are significant, few non-edges are (measured 1.0 and 0.001)
    p = ds.p_value.values
    assert np.mean(p[et == "hub_exc"] <= 0.05) > 0.8
    assert np.mean(p[(et == "") & ~np.eye(len(et), dtype=bool)] <= 0.05) < 0.05
    # the documented orientation matters: transposed, the hub edges are not found
    assert score_readout(ds.score.T.values, et, t["hub_unit_ids"])["hub_auroc"] < 0.8


@pytest.mark.slow
def test_speed_decoding_and_few_shot(behaviour):
    sp, speed, m, t = behaviour
    ridge = t["baseline_ridge"]["results"]["bins_t-4..t+4"]
    dec = BehaviourDecoder(m).fit(sp, speed, *TRAIN)
    # measured 0.960 (truth.json ridge 0.935, package ridge 0.944)
    r2 = dec.score(sp, speed, *TEST)
    assert r2 >= ridge["test_r2"]
    assert r2 >= BehaviourDecoder().fit(sp, speed, *TRAIN).score(sp, speed, *TEST)
    scratch = SpikeRateModel(max_epochs=0).fit(sp, *TRAIN)
    fs = few_shot(dec, sp, speed, TRAIN, TEST, scratch=scratch)
    # measured 1 %: 0.946 vs ridge 0.935, untrained 0.935; 10 %: 0.956 vs 0.940, 0.942
    for share in (0.01, 0.1):
        r = fs.r2.sel(share=share)
        pre = float(r.sel({"method": "pretrained"}))
        assert pre > ridge["few_shot_same_alpha"][str(share)]["test_r2"]
        assert pre > float(r.sel({"method": "scratch"}))
        assert pre > float(r.sel({"method": "ridge"}))
