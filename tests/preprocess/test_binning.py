import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuroana.preprocess import bin_edges, bin_spike_times


def test_hand_computed_bins_left_closed():
    spikes = {3: np.array([0.0, 0.2, 0.25, 0.49, 0.5, 0.74, 0.75, 1.0]), 9: np.array([0.6])}
    c = bin_spike_times(spikes, 0.25, start=0.0, stop=1.0)
    # bins [0,.25) [.25,.5) [.5,.75) [.75,1): 0.0,0.2 | 0.25,0.49 | 0.5,0.74 | 0.75 ; 1.0 dropped
    assert c.sel(unit=3).values.tolist() == [2, 2, 2, 1]
    assert c.sel(unit=9).values.tolist() == [0, 0, 1, 0]
    assert c.dims == ("time", "unit")
    np.testing.assert_allclose(c.time.values, [0.125, 0.375, 0.625, 0.875])
    assert list(c.unit.values) == [3, 9]
    assert c.attrs == {"bin_size": 0.25, "start": 0.0, "stop": 1.0}


def test_spikes_outside_range_and_partial_bin_are_dropped():
    c = bin_spike_times({0: np.array([-0.1, 0.05, 0.95, 1.05])}, 0.3, start=0.0, stop=1.0)
    # 3 whole bins [0,.3) [.3,.6) [.6,.9); .95 lies in the dropped partial bin
    assert c.values.ravel().tolist() == [1, 0, 0]
    assert c.attrs["stop"] == pytest.approx(0.9)


def test_defaults_cover_every_spike():
    rng = np.random.default_rng(1)
    spikes = {u: np.sort(rng.uniform(2.0, 7.0, 50)) for u in range(3)}
    c = bin_spike_times(spikes, 0.1)
    assert c.values.sum(axis=0).tolist() == [50, 50, 50]
    assert c.attrs["start"] == 0.0  # min(0, first spike), like read_spike_counts
    early = bin_spike_times({0: np.array([-1.0, 0.5])}, 0.5)
    assert early.attrs["start"] == -1.0 and early.values.ravel().tolist() == [1, 0, 0, 1]


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(0, 10, allow_nan=False), max_size=40),
    st.floats(0.01, 2.0),
    st.floats(-1.0, 3.0),
)
def test_matches_brute_force(times, bin_size, start):
    t = np.array(times)
    stop = start + 7.3
    c = bin_spike_times({0: t}, bin_size, start=start, stop=stop)
    edges = bin_edges(start, stop, bin_size)
    brute = [
        int(np.sum((t >= lo) & (t < hi))) for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ]
    assert c.values[:, 0].tolist() == brute


def test_empty_unit_counts_zero():
    c = bin_spike_times({0: np.array([0.1]), 1: np.array([])}, 0.5, start=0, stop=1)
    assert c.sel(unit=1).values.tolist() == [0, 0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bin_size": 0.0}, "bin_size"),
        ({"bin_size": -1.0}, "bin_size"),
        ({"bin_size": 0.1, "start": 1.0, "stop": 0.5}, "start"),
        ({"bin_size": 2.0, "start": 0.0, "stop": 1.0}, "no whole bin"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bin_spike_times({0: np.array([0.1])}, **kwargs)


def test_nan_spike_time_names_unit():
    with pytest.raises(ValueError, match="unit 'a'"):
        bin_spike_times({"a": np.array([0.1, np.nan])}, 0.1, start=0, stop=1)
