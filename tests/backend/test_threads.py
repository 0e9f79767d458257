"""The threading rule (neuroana.backend.threads): never more than the allowed cores, 1 when small."""

import os

import pytest
import torch

from neuroana.backend.threads import available_cores, choose_threads, torch_threads


def test_never_more_than_affinity(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert available_cores() == 2
    assert choose_threads(1e15) == 2  # a huge problem still gets only the 2 allowed cores
    assert choose_threads(1e15, requested=16) == 2
    assert choose_threads(1e15, requested=1) == 1


def test_small_problems_get_one_thread():
    assert choose_threads(1e5, cores=16) == 1
    assert choose_threads(None, cores=3) == 3
    assert choose_threads(3.5 * 5e7, cores=16) == 3  # scales with the work


def test_bad_request():
    with pytest.raises(ValueError, match="requested threads"):
        choose_threads(1e9, requested=0)


def test_context_restores():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_rate_model_uses_the_rule(monkeypatch):
    from neuroana.datasets.spiking_sim import simulate_chain
    from neuroana.pretrain import SpikeRateModel

    seen = []
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(
        torch, "set_num_threads", lambda n, f=torch.set_num_threads: (seen.append(n), f(n))
    )
    net = simulate_chain(duration=12.0, random_state=0)
    m = SpikeRateModel(max_epochs=1, n_threads=8, verbose=False).fit(net.spike_times, t_stop=12.0)
    assert m.n_threads_ == 1 and 1 in seen and max(seen[:-1]) <= 1
