"""``neuroana demo`` section: a tiny spike-token model pretrained on units of the demo's NWB
session (read with :func:`neuroana.pretrain.pipeline.read_inputs`); the session plants the
directed edge unit 0 -> unit 1."""

from __future__ import annotations

import numpy as np

#: units read from the session: the planted edge 0 -> 1 and two other units
UNITS = [0, 1, 2, 3]


def demo_section(ctx) -> dict:
    """Pretrain on the wake epoch; score held-out likelihood and the planted edge's direction.

    Parameters
    ----------
    ctx : neuroana.demo.DemoContext
        ``ctx.nwb_path`` (read), ``ctx.session`` (truth), ``ctx.quick``.

    Returns
    -------
    dict
        Rows ``check -> neuroana.demo.score(...)``: held-out log-likelihood per window against a
        per-neuron-rate Poisson model (must be higher), validation NLL first -> best (reported),
        and the ablation read-out of 0 -> 1 minus 1 -> 0 (must be > 0).
    """
    import torch

    from neuroana.demo import score
    from neuroana.io import read_spike_times
    from neuroana.pretrain import SpikeFormer
    from neuroana.pretrain.pipeline import read_inputs
    from neuroana.pretrain.readout import ablation_connectivity, bin_spikes, rate_window_loglik

    w = ctx.session.couplings.values
    src, tgt = 0, 1
    if not (w[:, tgt, src] > 0).all() or (w[:, src, tgt] != 0).any():
        raise ValueError("the demo session has no planted edge 0 -> 1 (make_session edge_weight)")
    ev = read_inputs([ctx.nwb_path], {"interval": ("epochs", "wake"), "units": UNITS})["spikes"]
    t0, t1 = float(ev.t_start), float(ev.t_stop)
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        m = SpikeFormer(
            max_iter=10,
            steps_per_iter=25,
            batch_size=64,
            lr=3e-3,
            warmup=20,
            dropout=0.0,
            window_cur=0.01,
            window_past=0.15,
            max_tokens_past=64,
            max_tokens_cur=48,
            device="cpu",
            random_state=0,
        ).fit(ev)
        test = m.split_.test
        ll = m.log_likelihood(ev, test).values
        res = m.resolution
        spikes = read_spike_times(ctx.nwb_path)
        counts = bin_spikes({u: spikes[u] for u in UNITS}, t0, t1, res)
        rate = counts[: int(np.round((m.split_.train.max() - t0) / res))].mean(0)
        k = np.round((test - t0) / res).astype(int)
        on_grid = np.abs(t0 + k * res - test) < 1e-6
        rate_ll = float(rate_window_loglik(rate, counts, k[on_grid], m.token_config_.n_dt).mean())
        C = ablation_connectivity(m, ev, test)
    finally:
        torch.set_num_threads(n_threads)
    v = m.history_["val_loss"].values
    model_ll = float(ll[on_grid].mean())
    ab = float(C.sel(target=tgt, source=src) - C.sel(target=src, source=tgt))
    return {
        "held-out LL/window vs per-neuron rate": score(model_ll, rate_ll, ok=model_ll > rate_ll),
        "val NLL: first -> best": score(float(v.min()), float(v[0])),
        "ablation read-out 0->1 minus 1->0 (planted 0->1)": score(ab, None, ok=ab > 0),
    }
