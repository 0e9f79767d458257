import numpy as np
import pytest
import xarray as xr

from neuroana.pretrain import (
    TokenConfig,
    TokenizeError,
    UnitVocab,
    UnknownUnitError,
    detokenize,
    events_from_binned,
    events_from_spike_times,
    split_windows,
    window_ends,
)
from neuroana.pretrain.modality import behaviour_targets, modality_from_dataarray
from neuroana.pretrain.tokenize import tokenize


def _random_spikes(rng, n_units=7, duration=20.0):
    return {
        f"u{j}": np.sort(rng.uniform(0, duration, rng.integers(50, 400))) for j in range(n_units)
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_round_trip_exact(seed):
    rng = np.random.default_rng(seed)
    st = _random_spikes(rng)
    ev = events_from_spike_times(st, t_start=0.0, t_stop=20.0)
    cfg = TokenConfig(window_cur=0.05, window_past=0.0, max_tokens_cur=512)
    ends = window_ends(0.0, 20.0, cfg)
    tw = tokenize(ev, ends, cfg)
    t, u = detokenize(tw, cfg)
    order = np.lexsort((ev.unit, ev.times))
    assert np.array_equal(t, ev.times[order])  # bit-exact float64
    assert np.array_equal(u, ev.unit[order])
    # bins are the brute-force histogram of every window
    for k in rng.choice(len(ends), 20, replace=False):
        c0 = ends[k] - cfg.window_cur
        sel = (ev.times >= c0) & (ev.times < ends[k])
        expect = np.zeros((cfg.n_dt, len(st)), int)
        np.add.at(
            expect, (np.floor((ev.times[sel] - c0) / 0.01 + 1e-9).astype(int), ev.unit[sel]), 1
        )
        got = np.zeros_like(expect)
        n = tw.cur_len[k]
        np.add.at(got, (tw.cur_bin[k, :n], tw.cur_unit[k, :n]), 1)
        assert np.array_equal(got, expect)
        # canonical order: (bin, unit) non-decreasing
        key = tw.cur_bin[k, :n] * 100 + tw.cur_unit[k, :n]
        assert np.all(np.diff(key) >= 0)


def test_past_stream_round_trip_and_overflow():
    rng = np.random.default_rng(3)
    ev = events_from_spike_times(_random_spikes(rng, duration=10.0), t_start=0, t_stop=10)
    cfg = TokenConfig(window_cur=0.05, window_past=0.05, max_tokens_past=512)
    ends = window_ends(0.0, 10.0, cfg)
    t, u = detokenize(tokenize(ev, ends, cfg), cfg, "past")
    sel = ev.times < ends[-1] - cfg.window_cur
    assert np.array_equal(t, np.sort(ev.times[sel]))
    # overflow: drop_oldest keeps the latest spikes; error raises
    st = {0: np.arange(10) * 0.004}
    ev2 = events_from_spike_times(st, t_start=0.0, t_stop=1.0)
    small = TokenConfig(window_cur=0.05, window_past=0.0, max_tokens_cur=3)
    tw = tokenize(ev2, np.array([0.05]), small)
    assert tw.n_dropped[0] == 7
    assert np.allclose(np.sort(tw.cur_offset[0]), [0.028, 0.032, 0.036])
    with pytest.raises(TokenizeError, match="max_tokens_cur=3"):
        tokenize(ev2, np.array([0.05]), TokenConfig(0.05, 0.0, 0.01, 3, 0, "error"))
    tw = tokenize(ev2, np.array([0.05]), TokenConfig(0.05, 0.0, 0.01, 3, 0, "drop_random"))
    assert tw.cur_len[0] == 3


def test_binned_input_round_trip():
    counts = xr.DataArray(
        np.array([[0, 2], [1, 0], [3, 1]]),
        dims=("time", "unit"),
        coords={"time": [0.0, 0.01, 0.02], "unit": ["a", "b"]},
    )
    ev = events_from_binned(counts)
    assert ev.unit_ids == ("a", "b")
    cfg = TokenConfig(window_cur=0.03, window_past=0.0)
    tw = tokenize(ev, np.array([0.03]), cfg)
    got = np.zeros((3, 2), int)
    np.add.at(got, (tw.cur_bin[0, : tw.cur_len[0]], tw.cur_unit[0, : tw.cur_len[0]]), 1)
    assert np.array_equal(got, counts.values)


@pytest.mark.parametrize("trials", [False, True])
def test_split_has_no_leakage(trials):
    cfg = TokenConfig(window_cur=0.05, window_past=0.15)
    tr = np.c_[np.arange(0, 100, 2.0), np.arange(0, 100, 2.0) + 1.7] if trials else None
    s = split_windows(0.0, 100.0, cfg, n_blocks=3, trials=tr, random_state=0)
    spans = {}
    for name in ("train", "val", "test"):
        e = getattr(s, name)
        assert e.size > 0
        spans[name] = np.c_[e - cfg.window_cur - cfg.window_past, e]
    # brute force: no spike time is inside windows of two different splits
    grid = np.linspace(0, 100, 200001)
    owner = np.full(grid.size, -1)
    for k, name in enumerate(("train", "val", "test")):
        inside = np.zeros(grid.size, bool)
        for a, b in spans[name]:
            inside[np.searchsorted(grid, a) : np.searchsorted(grid, b)] = True
        assert not np.any(inside & (owner >= 0) & (owner != k))
        owner[inside] = k
    with pytest.raises(TokenizeError, match="window_past"):
        split_windows(0.0, 100.0, cfg, gap=0.1)


def test_bad_input_messages():
    with pytest.raises(TokenizeError, match="non-empty mapping"):
        events_from_spike_times({})
    with pytest.raises(TokenizeError, match="no spikes"):
        events_from_spike_times({0: []})
    with pytest.raises(TokenizeError, match="NaN"):
        events_from_spike_times({0: [0.1, np.nan]})
    ev = events_from_spike_times({0: [0.1, 0.2]}, t_start=0.0, t_stop=0.15)
    with pytest.raises(TokenizeError, match="data cover only"):
        window_ends(0.0, 0.15, TokenConfig())
    with pytest.raises(TokenizeError, match="data cover"):
        tokenize(ev, np.array([0.15]), TokenConfig())
    with pytest.raises(TokenizeError, match="empty"):
        tokenize(ev, np.array([]), TokenConfig())
    beh = xr.DataArray([0.0, np.nan, 1.0], dims=["time"], coords={"time": [0, 1, 2.0]})
    with pytest.raises(TokenizeError, match="NaN"):
        modality_from_dataarray(beh, "speed")
    ok = modality_from_dataarray(beh.fillna(0.5), "speed")
    assert np.allclose(behaviour_targets(ok, np.array([0.5, 1.5]))[:, 0], [0.25, 0.75])
    v = UnitVocab(["s/a"])
    assert v.extend(["s/b", "s/a"]) == [1, 0]
    with pytest.raises(UnknownUnitError, match="s/zz"):
        v.lookup(["s/a", "s/zz"])
