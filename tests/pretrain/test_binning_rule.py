"""One binning rule: the tokenizer's time-bin classes and the read-out baselines' counts follow
neuroana.preprocess.bin_spike_times (left-closed bins; a spike on an edge starts the next bin, a
spike one float below it stays in the bin before)."""

import numpy as np

from neuroana.preprocess import bin_spike_times
from neuroana.pretrain import TokenConfig, events_from_spike_times
from neuroana.pretrain.readout import binned_counts
from neuroana.pretrain.tokenize import tokenize

RES = 0.125  # dyadic: window edges and grid edges are exact in float64


def _edge_spikes(rng, n_units=3, duration=8.0):
    """Random spikes plus spikes exactly on bin edges and one float below them."""
    edges = np.arange(1, int(duration / RES)) * RES
    out = {}
    for u in range(n_units):
        on = rng.choice(edges, 20, replace=False)
        below = np.nextafter(rng.choice(edges, 20, replace=False), -np.inf)
        out[u] = np.sort(np.r_[rng.uniform(0, duration, 60), on, below])
    return out


def test_token_bins_are_the_count_matrix_of_bin_spike_times():
    rng = np.random.default_rng(0)
    spikes = _edge_spikes(rng)
    cfg = TokenConfig(window_cur=0.5, window_past=0.25, resolution=RES, max_tokens_cur=512)
    ev = events_from_spike_times(spikes, t_start=0.0, t_stop=8.0)
    t_end = np.arange(1.0, 8.0 + 1e-9, 0.5)
    tw = tokenize(ev, t_end, cfg)
    counts = bin_spike_times(spikes, RES, start=0.0, stop=8.0).values
    n_dt = cfg.n_dt
    for w, end in enumerate(t_end):
        k0 = int(round((end - cfg.window_cur) / RES))
        valid = tw.cur_unit[w] >= 0
        got = np.zeros((n_dt, len(spikes)), dtype=int)
        np.add.at(got, (tw.cur_bin[w][valid], tw.cur_unit[w][valid]), 1)
        np.testing.assert_array_equal(got, counts[k0 : k0 + n_dt], err_msg=f"window {w}")
    # the edge cases are really there: some spike sits one float below an edge
    below = [t for ts in spikes.values() for t in ts if (np.nextafter(t, np.inf) / RES) % 1 == 0]
    assert below


def test_readout_baselines_bin_by_the_same_rule():
    rng = np.random.default_rng(1)
    spikes = _edge_spikes(rng)
    got = binned_counts(spikes, 0.0, 8.0, RES)
    want = bin_spike_times(spikes, RES, start=0.0, stop=8.0).values
    np.testing.assert_array_equal(got, want)
    # a spike one float below an edge counts in the bin before it
    edge = 3 * RES
    c = binned_counts({0: [np.nextafter(edge, -np.inf), edge]}, 0.0, 1.0, RES)
    assert c[2, 0] == 1 and c[3, 0] == 1
