import numpy as np
import pytest
from scipy.signal import lfilter

from neuroana.datasets import make_session
from neuroana.preprocess import bin_spike_times

SMALL = dict(duration=20.0, n_units=6, n_rois=9)


@pytest.fixture(scope="module")
def session():
    return make_session(random_state=3, **SMALL)


def test_reproducible_and_seed_dependent(session):
    again = make_session(random_state=3, **SMALL)
    other = make_session(random_state=4, **SMALL)
    for u, t in session.spike_times.items():
        np.testing.assert_array_equal(t, again.spike_times[u])
    np.testing.assert_array_equal(session.fluorescence, again.fluorescence)
    assert not np.array_equal(session.fluorescence.values, other.fluorescence.values)


def test_spike_times_bin_back_to_true_counts(session):
    bs = session.params["bin_size"]
    counts = bin_spike_times(session.spike_times, bs, start=0.0, stop=session.duration)
    np.testing.assert_array_equal(counts.values, session.spike_counts.values)
    for t in session.spike_times.values():
        assert np.all(np.diff(t) >= 0)
        frac = t / bs - np.floor(t / bs)
        assert frac.min() > 0.01 and frac.max() < 0.99  # never on a bin edge


def test_state_switching_changes_firing_rates():
    s = make_session(random_state=0, duration=120.0, n_units=10, n_rois=3, coupling_scale=0.1)
    z = s.states.values
    assert np.unique(z).size == 3
    switches = np.count_nonzero(np.diff(z))
    expected = z.size * s.params["bin_size"] / s.params["mean_dwell"]
    assert 0.4 * expected < switches < 2.0 * expected
    emp = np.stack([s.spike_counts.values[z == k].mean(0) for k in range(3)])
    true = np.exp(s.log_rates.values) * s.params["bin_size"]
    # weak couplings: per-state empirical rates track the planted per-state rates
    assert np.corrcoef(np.log(emp.ravel() + 1e-3), np.log(true.ravel()))[0, 1] > 0.9


def test_calcium_model_and_planted_communities(session):
    k = session.kernel.values
    np.testing.assert_allclose(
        session.calcium.values, lfilter(k, [1.0], session.events.values, axis=0)
    )
    f0 = session.baseline_fluorescence.values
    resid = session.fluorescence.values / f0 - 1 - session.calcium.values
    assert resid.std() == pytest.approx(session.params["noise"], rel=0.1)
    s = make_session(random_state=1, duration=90.0, n_units=2, n_rois=12, noise=0.0)
    fr = s.params["frame_rate"]
    for e, row in enumerate(s.episodes.itertuples()):
        lo, hi = int(round(row.start_time * fr)), int(round(row.stop_time * fr))
        c = np.corrcoef(s.calcium.values[lo:hi].T)
        lab = s.communities.values[e]
        same = lab[:, None] == lab[None, :]
        off = ~np.eye(lab.size, dtype=bool)
        assert c[same & off].mean() > c[~same].mean() + 0.4
    assert not np.array_equal(s.communities.values[0], s.communities.values[1])


def test_masks_are_disjoint_blobs(session):
    m = session.roi_masks.values
    assert m.min() >= 0 and m.max() <= 1
    assert np.all((m > 0).sum(axis=(1, 2)) >= 3)
    assert (m > 0).sum(axis=0).max() == 1


def test_behaviour_follows_state_and_epochs(session):
    speed = session.behavior["speed"].values[:, 0]
    t = session.behavior["speed"].time.values
    sleep = session.epochs[[("sleep" in x) for x in session.epochs.tags]].iloc[0]
    assert np.all(speed[t >= sleep.start_time] == 0)
    pos = session.behavior["position"].values
    assert pos.min() >= 0 and pos.max() <= 100
    hd = session.behavior["head_direction"].values
    assert hd.min() >= 0 and hd.max() < 2 * np.pi


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_units": 0}, "n_units"),
        ({"duration": -1.0}, "duration"),
        ({"n_communities": 50}, "n_communities"),
        ({"n_rois": 400}, "image_shape"),
        ({"tau_rise": 1.0, "tau_decay": 0.5}, "tau_rise"),
        ({"sleep_fraction": 1.0}, "sleep_fraction"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_session(**{**SMALL, **kwargs})


# --- NWB writer ---------------------------------------------------------------------------------


def test_write_read_round_trip_and_validity(session, tmp_path):
    import pynwb

    from neuroana import io

    path = io.write_session_nwb(session, tmp_path / "s.nwb")
    assert pynwb.validate(path=str(path)) == []
    st = io.read_spike_times(path)
    assert list(st) == list(session.spike_times)
    for u in st:
        np.testing.assert_array_equal(st[u], session.spike_times[u])
    tr = io.read_roi_traces(path)
    assert tr.attrs["stored_orientation"] == "(time, roi)"
    np.testing.assert_array_equal(tr.transpose("time", "roi").values, session.fluorescence.values)
    np.testing.assert_array_equal(io.read_roi_masks(path).values, session.roi_masks.values)
    for name, da in session.behavior.items():
        got = io.read_behavior(path, name)
        np.testing.assert_array_equal(got.values, da.values)
        np.testing.assert_allclose(got.time.values, da.time.values, atol=1e-9)
    ep = io.read_intervals(path, "epochs")
    assert [list(t) for t in ep.tags] == [list(t) for t in session.epochs.tags]
    runs = io.read_intervals(path, "true_states")
    bs = session.params["bin_size"]
    rebuilt = np.concatenate(
        [np.full(int(round((r.stop_time - r.start_time) / bs)), r.state) for r in runs.itertuples()]
    )
    np.testing.assert_array_equal(rebuilt, session.states.values)
    tree = io.open_nwb(path)
    seg = tree["processing/ophys/ImageSegmentation/PlaneSegmentation"].ds
    for e in range(session.communities.shape[0]):
        np.testing.assert_array_equal(seg[f"true_community_ep{e}"], session.communities[e])


def test_writer_is_atomic(session, tmp_path, monkeypatch):
    import pynwb

    from neuroana.io import write_session_nwb

    target = tmp_path / "s.nwb"
    target.write_bytes(b"previous content")

    def boom(self, *a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pynwb.NWBHDF5IO, "write", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_session_nwb(session, target)
    assert target.read_bytes() == b"previous content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.nwb"]


def test_writer_bad_input(tmp_path, session):
    from neuroana.io import write_session_nwb

    with pytest.raises(ValueError, match="SyntheticSession"):
        write_session_nwb({"not": "a session"}, tmp_path / "x.nwb")
    with pytest.raises(ValueError, match="does not exist"):
        write_session_nwb(session, tmp_path / "missing" / "x.nwb")
