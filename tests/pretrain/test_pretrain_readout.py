import pytest

from neuroana.datasets.spiking_sim import simulate_chain
from neuroana.pretrain import SpikeFormer
from neuroana.pretrain.readout import (
    ablation_connectivity,
    attention_connectivity,
    crosscorr_connectivity,
    glm_connectivity,
)


@pytest.fixture(scope="module")
def fitted():
    sim = simulate_chain(duration=120.0, random_state=0)
    m = SpikeFormer(
        max_iter=10,
        steps_per_iter=25,
        batch_size=64,
        random_state=0,
        lr=3e-3,
        warmup=20,
        dropout=0.0,
        window_past=0.15,
        max_tokens_past=64,
        max_tokens_cur=48,
    ).fit(sim.spike_times)
    return sim, m


@pytest.mark.parametrize("readout", [attention_connectivity, ablation_connectivity])
def test_chain_direction(fitted, readout):
    sim, m = fitted
    C = readout(m, sim.spike_times, m.split_.test)
    assert C.dims == ("target", "source")
    assert float(C.sel(target=1, source=0)) > float(C.sel(target=0, source=1))  # A->B over B->A
    assert float(C.sel(target=2, source=1)) > float(C.sel(target=1, source=2))  # B->C over C->B


def test_shuffle_null_removes_ablation_effect(fitted):
    sim, m = fitted
    real = ablation_connectivity(m, sim.spike_times, m.split_.test)
    null = ablation_connectivity(
        m, sim.spike_times, m.split_.test, shuffle_past=True, random_state=0
    )
    assert float(real.sel(target=1, source=0)) > float(null.sel(target=1, source=0)) + 0.05


@pytest.mark.parametrize("baseline", [crosscorr_connectivity, glm_connectivity])
def test_baselines_direction(fitted, baseline):
    sim, _ = fitted
    C = baseline(sim.spike_times)
    assert float(C.sel(target=1, source=0)) > float(C.sel(target=0, source=1))
    assert float(C.sel(target=2, source=1)) > float(C.sel(target=1, source=2))
