"""The threading rule (neuroana.backend.threads): never more than the allowed cores or the user's
wish, 1 when small or on a saturated machine, and the caller's setting restored."""

import os

import pytest
import torch

from neuroana.backend.threads import fit_threads, limit_threads, machine_busy, usable_cores


def test_never_more_than_affinity_or_request(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    assert usable_cores() == 2
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(8)
        assert fit_threads(1e15) == 2  # a huge problem still gets only the 2 allowed cores
        assert fit_threads(None) == 2  # unknown work counts as large
        assert fit_threads(1e15, requested=16) == 2
        assert fit_threads(1e15, requested=1) == 1
        assert fit_threads(10.0) == 1  # small problem
    finally:
        torch.set_num_threads(before)


def test_saturated_machine_gets_one_thread(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (2.5, 2.0, 2.0))
    assert machine_busy()
    assert fit_threads(1e15) == 1


def test_bad_request():
    with pytest.raises(ValueError, match="requested threads"):
        fit_threads(1e9, requested=0)


def test_context_restores_also_on_error():
    before = torch.get_num_threads()
    with limit_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), limit_threads(1):
        raise RuntimeError("restored on error too")
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
