import numpy as np
import pytest
import torch
import xarray as xr

from neuroana.datasets.spiking_sim import simulate_chain, simulate_stimulus_population
from neuroana.pretrain import SpikeFormer, UnknownUnitError
from neuroana.pretrain.dataset import to_batch
from neuroana.pretrain.generate import generate, incremental_logits, simulate
from neuroana.pretrain.nn import ModelConfig, SpikeTransformer, dt_targets


@pytest.fixture(scope="module")
def chain():
    return simulate_chain(duration=120.0, random_state=0)


def _fast(**kw):
    base = dict(
        max_iter=4,
        steps_per_iter=5,
        batch_size=32,
        random_state=0,
        warmup=5,
        lr=3e-3,
        window_past=0.15,
        max_tokens_past=64,
        max_tokens_cur=48,
        dropout=0.1,
    )
    return SpikeFormer(**{**base, **kw})


def test_kv_cache_matches_uncached_logits():
    pop = simulate_stimulus_population(12, duration=20.0, random_state=1)
    m = _fast(max_iter=1, steps_per_iter=1).fit(pop.spike_times, stimulus={"video": pop.stimulus})
    w = m._windows(pop.spike_times, m.split_.test[:16], {"video": pop.stimulus})
    b = to_batch(w, np.arange(16), m.device_)
    with torch.no_grad():
        full = m.model_(b)
    dt, idl = incremental_logits(m.model_, b)
    valid = dt_targets(b, m.model_.cfg.n_dt) >= 0
    assert valid.sum() > 16
    assert torch.allclose(dt[valid], full.dt_logits[valid], atol=1e-5, rtol=0)
    tok = b["cur_unit"] >= 0
    assert torch.allclose(idl[:, :-1][tok], full.id_logits[:, :-1][tok], atol=1e-5, rtol=0)
    g = generate(m.model_, b, max_tokens=20, generator=torch.Generator().manual_seed(0))
    for bins, units in zip(g.bins, g.units, strict=True):  # canonical order
        key = bins * 1000 + units
        assert np.all(np.diff(key) >= 0) and np.all(bins < m.model_.cfg.n_dt)


def test_loss_decreases_and_early_stopping(chain):
    m = _fast(max_iter=6).fit(chain.spike_times)
    v = m.history_["val_loss"].values
    # the canonical-order masks already remove the ordering entropy an unmasked model must learn,
    # so what is left to learn here is the coupling: a few hundredths of a nat per token
    assert v.min() < v[0] - 0.025
    assert m.best_iteration_ == int(np.argmin(v))
    ll = m.log_likelihood(chain.spike_times, m.split_.test)
    assert ll.dims == ("window",) and np.all(ll.values < 0)
    sim = simulate(m, chain.spike_times, t_start=50.0, duration=1.0, random_state=0)
    assert set(sim) == {0, 1, 2} and all(np.all((t >= 50) & (t < 51)) for t in sim.values())
    with pytest.raises(UnknownUnitError, match="session0/9"):
        m.log_likelihood({**chain.spike_times, 9: [1.0]}, m.split_.test)


def test_checkpoint_kill_resume_equals_uninterrupted(chain, tmp_path):
    ref = _fast().fit(chain.spike_times)

    class Killed(Exception):
        pass

    def kill(it, metrics):
        if it == 1:
            raise Killed

    ck = tmp_path / "ck.pt"
    with pytest.raises(Killed):
        _fast(checkpoint=ck).fit(chain.spike_times, callbacks=[kill])
    resumed = _fast(checkpoint=ck, resume=True).fit(chain.spike_times)
    for (k, a), (_, b) in zip(
        ref.model_.state_dict().items(), resumed.model_.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), k
    assert np.allclose(ref.history_["val_loss"], resumed.history_["val_loss"])


def test_token_likelihood_is_a_distribution_over_count_matrices():
    """Summed over every canonical sequence (= every count matrix), the probabilities add up to 1."""
    import itertools

    from neuroana.pretrain.nn import token_logprob

    cfg = ModelConfig.from_size(
        "tiny", n_units=2, n_dt=2, resolution=0.01, window_cur=0.02, window_past=0.05
    )
    torch.manual_seed(0)
    m = SpikeTransformer(cfg).eval()
    with torch.no_grad():
        m.dt_head.bias[2] = 2.0  # the end class: p(continue) ~ 0.2, truncation error < 1e-8
        m.id_head.weight.mul_(50.0)  # unit probabilities far from uniform
    L = 12
    toks = [(b, u) for b in range(2) for u in range(2)]  # canonical order of (bin, unit)
    seqs = [s for n in range(L + 1) for s in itertools.combinations_with_replacement(toks, n)]
    B = len(seqs)
    cu = torch.full((B, L), -1)
    cb = torch.zeros((B, L), dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            cb[i, : len(s)] = torch.tensor([t[0] for t in s])
            cu[i, : len(s)] = torch.tensor([t[1] for t in s])
    b = {
        "cur_unit": cu,
        "cur_bin": cb,
        "cur_len": (cu >= 0).sum(1),
        "past_unit": torch.tensor([[1, 0]]).expand(B, 2),
        "past_offset": torch.tensor([[-0.03, -0.01]]).expand(B, 2),
    }
    with torch.no_grad():
        lp = token_logprob(m(b), b, cfg.n_dt).logp.double().sum(1)
    assert abs(float(lp.exp().sum()) - 1.0) < 1e-6


def test_grow_units_keeps_old_rows():
    cfg = ModelConfig.from_size(
        "tiny", n_units=3, n_dt=5, resolution=0.01, window_cur=0.05, window_past=0.05
    )
    m = SpikeTransformer(cfg)
    w = m.unit_emb.weight.detach().clone()
    m.grow_units(2)
    assert m.n_units == 5 and torch.equal(m.unit_emb.weight[:3], w)
    assert m.id_head.weight.shape[0] == 5


def test_bad_behaviour_and_window_errors(chain):
    beh = xr.DataArray(np.r_[np.nan, np.zeros(9)], dims=["time"], coords={"time": np.arange(10.0)})
    with pytest.raises(ValueError, match="NaN"):
        _fast(behaviour_weight=1.0).fit(chain.spike_times, behaviour=beh)
    with pytest.raises(ValueError, match="shorter than window_past"):
        _fast().fit({0: [0.01, 0.05], 1: [0.02]})


def test_dtype_and_seeding_leave_the_process_alone(chain):
    """dtype is the shared precision name (bf16 autocast only on CUDA, so on the CPU it trains
    exactly as float32); a fit seeds only its own draws: torch's global generator is untouched
    and the run does not depend on it."""
    sp = {u: t[t < 20.0] for u, t in chain.spike_times.items()}
    with pytest.raises(ValueError, match="dtype='fp16'"):
        _fast(dtype="fp16", device="cpu").fit(sp)
    before = torch.random.get_rng_state()
    a = _fast(max_iter=2, device="cpu").fit(sp)
    assert torch.equal(before, torch.random.get_rng_state())
    torch.random.manual_seed(123)  # another global state: same fit
    b = _fast(max_iter=2, device="cpu", dtype="bfloat16").fit(sp)
    xr.testing.assert_identical(a.history_, b.history_)
    sa, sb = a.model_.state_dict(), b.model_.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
