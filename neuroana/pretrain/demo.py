"""``neuroana demo`` section for pretraining: a tiny model on a simulated chain A -> B -> C."""

from __future__ import annotations

import numpy as np


def demo_section(rng_seed: int = 0, quick: bool = False) -> dict:
    """Pretrain a tiny model on a simulated chain and return scores (under a minute on CPU).

    Returns
    -------
    dict
        ``heldout_ll_per_window`` (model), ``rate_ll_per_window`` (per-neuron-rate Poisson on the same
        windows), ``val_nll_first`` / ``val_nll_best`` (per token), ``ablation_AB_minus_BA`` (> 0 when
        the read-out finds the direction A -> B), ``n_parameters``.

    Examples
    --------
    >>> from neuroana.pretrain.demo import demo_section
    >>> out = demo_section(quick=True)  # doctest: +SKIP
    """
    import torch

    from neuroana.datasets.spiking_sim import simulate_chain
    from neuroana.pretrain import SpikeFormer, events_from_spike_times
    from neuroana.pretrain.readout import ablation_connectivity, bin_spikes, rate_window_loglik

    duration = 60.0 if quick else 120.0
    sim = simulate_chain(duration=duration, random_state=rng_seed)
    ev = events_from_spike_times(sim.spike_times, t_start=0.0, t_stop=duration)
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        m = SpikeFormer(
            max_iter=4 if quick else 10,
            steps_per_iter=25,
            batch_size=64,
            lr=3e-3,
            warmup=20,
            dropout=0.0,
            window_past=0.15,
            max_tokens_past=64,
            max_tokens_cur=48,
            device="cpu",
            random_state=rng_seed,
        ).fit(ev)
        test = m.split_.test
        ll = m.log_likelihood(ev, test).values
        res = m.resolution
        counts = bin_spikes(sim.spike_times, 0.0, duration, res)
        train_bins = np.round(m.split_.train / res).astype(int)
        rate = counts[: train_bins.max()].mean(0)
        k = np.round(test / res).astype(int)
        ok = np.abs(k * res - test) < 1e-6  # windows on the bin grid
        rate_ll = rate_window_loglik(rate, counts, k[ok], m.token_config_.n_dt)
        C = ablation_connectivity(m, ev, test)
    finally:
        torch.set_num_threads(n_threads)
    v = m.history_["val_loss"].values
    return {
        "heldout_ll_per_window": float(ll[ok].mean()),
        "rate_ll_per_window": float(rate_ll.mean()),
        "val_nll_first": float(v[0]),
        "val_nll_best": float(v.min()),
        "ablation_AB_minus_BA": float(C.sel(target=1, source=0) - C.sel(target=0, source=1)),
        "n_parameters": int(m.n_parameters_),
    }
