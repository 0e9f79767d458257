import numpy as np
import pytest
import torch

from neuroana.datasets.spiking_sim import simulate_stimulus_population
from neuroana.pretrain import SpikeFormer, TokenConfig, events_from_spike_times, split_windows
from neuroana.pretrain.finetune import TokenBehaviourDecoder, few_shot, few_shot_split


@pytest.fixture(scope="module")
def setup():
    pop = simulate_stimulus_population(8, duration=40.0, random_state=0)
    ev = events_from_spike_times(pop.spike_times, t_start=0.0, t_stop=40.0)
    s = split_windows(0.0, 39.9, TokenConfig())
    pre = SpikeFormer(max_iter=1, steps_per_iter=2, batch_size=16, random_state=0, dropout=0.1)
    pre = pre.fit(ev, train_ends=s.train, val_ends=s.val)
    return pop, ev, s, pre


def _changed(dec, pre):
    """Names of parameters that differ from the pretrained ones (bit for bit)."""
    old = dict(pre.model_.named_parameters())
    return {
        k
        for k, v in dec.model_.named_parameters()
        if k in old and not torch.equal(v.detach().cpu(), old[k].detach().cpu())
    }


KW = dict(max_iter=2, steps_per_iter=3, batch_size=16, lr=1e-2, random_state=0)


def test_probe_leaves_backbone_unchanged(setup):
    pop, ev, s, pre = setup
    before = {k: v.clone() for k, v in pre.model_.state_dict().items()}
    dec = TokenBehaviourDecoder(pre, mode="probe", **KW).fit(ev, pop.behaviour, s.train, s.val)
    assert _changed(dec, pre) == set()
    assert dec.model_.behaviour_head.weight.requires_grad
    for k, v in pre.model_.state_dict().items():  # the pretrained estimator is not touched
        assert torch.equal(v, before[k]), k


def test_last_k_changes_only_the_last_blocks(setup):
    pop, ev, s, pre = setup
    dec = TokenBehaviourDecoder(pre, mode="last_k", k=1, **KW).fit(
        ev, pop.behaviour, s.train, s.val
    )
    ch = _changed(dec, pre)
    last = len(pre.model_.blocks) - 1
    assert any(k.startswith(f"blocks.{last}.") for k in ch)
    assert all(k.startswith(f"blocks.{last}.") or k.startswith("ln_f.") for k in ch), ch


def test_full_changes_the_whole_backbone(setup):
    pop, ev, s, pre = setup
    dec = TokenBehaviourDecoder(pre, mode="full", **KW).fit(ev, pop.behaviour, s.train, s.val)
    ch = _changed(dec, pre)
    for b in range(len(pre.model_.blocks)):
        assert any(k.startswith(f"blocks.{b}.") for k in ch), b
    assert "unit_emb.weight" in ch


def test_few_shot_protocol_sizes(setup):
    pop, ev, s, pre = setup
    ds = few_shot(
        pre,
        ev,
        pop.behaviour,
        s.train,
        s.test,
        fractions=(0.05, 0.5),
        seeds=(0, 1),
        **{k: v for k, v in KW.items() if k != "random_state"},
    )
    assert ds.r_pretrained.shape == (2, 2) and ds.r_scratch.shape == (2, 2)
    assert np.all(ds.r_pretrained <= 1) and np.all(ds.r_scratch <= 1)  # R²
    span, stride = 0.2, 0.05
    guard = int(round(span / stride)) - 1  # fit windows dropped so no past overlaps validation
    for i, f in enumerate((0.05, 0.5)):
        n = max(20, round(f * len(s.train)))
        n_val = round(0.2 * n)
        assert np.all(ds.n_val.values[i] == n_val)
        assert np.all(ds.n_fit.values[i] == n - n_val - guard)


def test_few_shot_split_has_no_leak():
    ends = 0.2 + 0.05 * np.arange(200)
    fit, val = few_shot_split(ends, 50, 30, span=0.2)
    assert fit.min() == ends[30] and val.max() == ends[79]
    assert val.min() - 0.2 >= fit.max() - 1e-9  # validation past windows start after fit windows
    with pytest.raises(ValueError, match="min_windows"):
        few_shot_split(ends, 4, 0, span=0.2)


def test_lp_ft_keeps_the_budget_and_the_best_validation_state(setup):
    from neuroana.pretrain.modality import behaviour_targets, modality_from_dataarray

    pop, ev, s, pre = setup
    kw = {**KW, "max_iter": 4}
    with pytest.raises(ValueError, match="probe_iter=4"):
        TokenBehaviourDecoder(pre, probe_iter=4, **kw).fit(ev, pop.behaviour, s.train, s.val)
    dec = TokenBehaviourDecoder(pre, mode="full", probe_iter=2, **kw).fit(
        ev, pop.behaviour, s.train, s.val
    )
    assert 1 <= dec.n_probe_iter_ <= 2 and dec.n_iter_ <= 4  # head-only iterations count
    assert dec.history_.sizes["iteration"] == dec.n_iter_
    # the kept weights are the best of both phases on the validation windows (all of them are used)
    y = behaviour_targets(modality_from_dataarray(pop.behaviour, "behaviour"), s.val)
    mse = float(np.mean((dec.predict(ev, s.val).values - y) ** 2))
    assert mse == pytest.approx(float(dec.history_.val_loss.min()), rel=1e-4)
    # the scratch decoder ignores probe_iter: all iterations train everything, as without it
    a = TokenBehaviourDecoder(None, probe_iter=2, **kw).fit(ev, pop.behaviour, s.train, s.val)
    b = TokenBehaviourDecoder(None, **kw).fit(ev, pop.behaviour, s.train, s.val)
    for (k, v), w in zip(
        a.model_.state_dict().items(), b.model_.state_dict().values(), strict=True
    ):
        assert torch.equal(v, w), k
