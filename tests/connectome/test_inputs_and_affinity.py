"""Identity across animals, bad input, the affinity on raw F vs dF/F, when the differential
affinity helps, and the leiden path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from scipy.ndimage import percentile_filter

from neuroana.connectome import ConnectomeInputError, DynamicConnectome, compute_affinity
from neuroana.connectome.affinity import stack_animals
from neuroana.datasets.connectome_sim import make_calcium_recordings

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("NEUROANA_SHARED", REPO.parent / "shared"))
CASE = SHARED / "cases" / "connectome_multi_animal"


@pytest.fixture(scope="module")
def small():
    return make_calcium_recordings(
        n_neurons=12,
        n_animals=2,
        episode_durations=(120.0, 120.0),
        n_communities=(2, 3),
        non_participating=None,
        missing_fraction=(0.1, 0.2),
        random_state=0,
    )


def test_read_roi_traces_puts_the_label_column_on_roi():
    if not CASE.is_dir():
        pytest.skip(f"needs {CASE}")
    import h5py

    from neuroana.io import NWBError, read_roi_traces

    path = CASE / "fish-b_ophys.nwb"
    tr = read_roi_traces(path, roi_label="neuron_label")
    with h5py.File(path, "r") as f:  # oracle: the table read directly
        seg = f["processing/ophys/ImageSegmentation/PlaneSegmentation"]
        labels = seg["neuron_label"].asstr()[()]
        ids = seg["id"][()]
        rows = f["processing/ophys/Fluorescence/RoiResponseSeries/rois"][()]
        data = f["processing/ophys/Fluorescence/RoiResponseSeries/data"][()]
    np.testing.assert_array_equal(tr["roi"].values.astype(str), labels[rows])
    np.testing.assert_array_equal(tr["roi_id"].values, ids[rows])
    k = int(np.flatnonzero(labels[rows] == "N17")[0])
    np.testing.assert_array_equal(tr.sel(roi="N17").values, data[:, k])
    with pytest.raises(NWBError, match="no scalar column 'nope'; columns: neuron_label"):
        read_roi_traces(path, roi_label="nope")


def test_animals_align_by_label_and_absent_neurons_are_masked(small):
    stacked = stack_animals(small.traces)
    assert list(stacked["roi"].values) == sorted(small.communities["roi"].values.tolist())
    for a, tr in enumerate(small.traces.values()):
        for label in tr["roi"].values[:3]:  # random row order per animal: aligned by label
            np.testing.assert_array_equal(
                stacked.sel(roi=label).values[:, a], tr.sel(roi=label).values
            )
        absent = np.setdiff1d(stacked["roi"].values, tr["roi"].values)
        assert absent.size and np.isnan(stacked.sel(roi=absent).values[:, :, a]).all()
    aff = compute_affinity(small.traces, window=30.0, device="cpu")
    pres = small.present.sel(roi=stacked["roi"].values).values
    ok = (
        pres[np.searchsorted(stacked["roi"].values, aff["roi_i"].values)]
        & pres[np.searchsorted(stacked["roi"].values, aff["roi_j"].values)]
    )
    ok = np.broadcast_to(ok[:, None, :], aff.shape)
    assert np.isnan(aff.values[~ok]).all() and np.isfinite(aff.values[ok]).all()


def test_bad_multi_animal_input_raises(small):
    a, b = small.traces.values()
    dup = a.assign_coords(roi=np.r_[a["roi"].values[:-1], a["roi"].values[:1]])
    with pytest.raises(ConnectomeInputError, match=r"animal 'x': roi label\(s\) \['N\d+'\]"):
        stack_animals({"x": dup, "y": b})
    other = b.assign_coords(roi=[f"Z{k}" for k in range(b.sizes["roi"])])
    with pytest.raises(ConnectomeInputError, match="animal 'x' shares no roi label"):
        stack_animals({"x": a, "y": other})
    shifted = b.assign_coords(time=b["time"].values + 5.0)
    with pytest.raises(ConnectomeInputError, match="time stamps up to 5 s away"):
        stack_animals({"x": a, "y": shifted})
    dc = DynamicConnectome(n_components=2, device="cpu", random_state=0)
    with pytest.raises(ConnectomeInputError, match=r"lies outside the recording \[0.0, 2"):
        dc.fit(small.traces, epochs=[(0.0, 120.0, "one"), (120.0, 400.0, "two")])
    with pytest.raises(ConnectomeInputError, match="stop 10.0 <= start 20.0"):
        dc.fit(small.traces, epochs=[(20.0, 10.0)])
    with pytest.raises(ConnectomeInputError, match="n_components=9 but .* only 8 windows"):
        DynamicConnectome(n_components=9, device="cpu").fit(small.traces)
    with pytest.raises(ConnectomeInputError, match="only 2 windows; no candidate rank"):
        DynamicConnectome(window=100.0, device="cpu").fit(
            small.traces, epochs=[(0.0, 80.0), (80.0, 160.0), (160.0, 239.0)]
        )


def test_affinity_is_the_same_on_raw_f_and_dff():
    sim = make_calcium_recordings(
        n_neurons=12,
        n_animals=1,
        episode_durations=(300.0,),
        n_communities=(2,),
        non_participating=None,
        random_state=3,
    )
    f = sim.traces["animal-0"]
    f0 = percentile_filter(f.values.astype(float), 8, size=(180, 1), mode="nearest")  # 60 s
    dff = f.copy(data=(f.values - f0) / f0)
    a = compute_affinity(f, window=30.0, baseline="mean", device="cpu").values
    b = compute_affinity(dff, window=30.0, baseline="mean", device="cpu").values
    assert np.abs(a - b).mean() <= 0.1 * a.mean()
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.97


def test_differential_affinity_helps_against_single_large_transients():
    """A neuron with one huge unrelated transient: the correlation of the pair collapses in that
    window, the saturating differential affinity keeps the shared rises and falls."""
    rng = np.random.default_rng(0)
    fs, n = 4.0, 480
    events = (rng.random(n) < 0.08) * rng.gamma(2.0, 1.0, n)
    drive = np.convolve(events, np.exp(-np.arange(12) / 4.0))[:n]
    x = np.column_stack([drive + 0.2 * rng.normal(size=n), drive + 0.2 * rng.normal(size=n)])
    x[250:, 0] += 40.0 * np.exp(-np.arange(n - 250) / 8.0)  # at 62.5 s, in window [60, 90)
    t = xr.DataArray(x, dims=("time", "roi"), coords={"time": np.arange(n) / fs})
    kw = dict(window=30.0, step=30.0, device="cpu")
    corr = compute_affinity(t, method="correlation", **kw).values[0, :, 0]
    diff = compute_affinity(t, method="differential", **kw).values[0, :, 0]
    assert corr[2] < 0.3 and diff[2] > 0.5  # the window with the transient
    assert min(corr[[0, 3]]) > 0.8 and min(diff[[0, 3]]) > 0.8  # clean windows: both see it


def test_leiden_communities_through_the_estimator():
    pytest.importorskip("leidenalg")
    sim = make_calcium_recordings(
        n_neurons=20,
        n_animals=2,
        episode_durations=(360.0,),
        n_communities=(3,),
        loading=(0.3, 0.6),
        non_participating=None,
        random_state=4,
    )
    from sklearn.metrics import normalized_mutual_info_score as nmi

    dc = DynamicConnectome(
        n_components=1, community_method="leiden", device="cpu", random_state=0
    ).fit(sim.traces, epochs=sim.epochs)
    found = dc.result_["episode_communities"].values[0]
    truth = sim.communities.sel(roi=dc.result_["roi"].values).values[0]
    assert (found >= 0).all() and nmi(truth, found) > 0.9


def test_episode_groups_share_threshold_and_short_episode_fallback():
    from neuroana.connectome.episodes import Epochs, episode_groups

    t = np.arange(10) + 0.5  # window centres; episodes [0, 4), [4, 8), [8, 10)
    wf = np.zeros((10, 4))
    wf[:4, 0] = 1.0  # all its mass in episode a
    wf[4:8, 1], wf[:4, 1] = 1.0, 0.2  # 83 % in b
    wf[8:, 2], wf[:8, 2] = 1.0, 0.3  # 2 of 4.4 = 45 % in the short episode c (20 % of windows)
    wf[:, 3] = 1.0  # uniform: 40 / 40 / 20 %, belongs nowhere
    ep = Epochs(np.array([0.0, 4.0, 8.0]), np.array([4.0, 8.0, 10.0]), np.array(["a", "b", "c"]))
    pf, af = np.ones((6, 4)), np.ones((2, 4))
    g = episode_groups(pf, wf, af, np.ones(4), t, ep, threshold=0.5)
    np.testing.assert_allclose(g.share[:, 2], [1.2 / 4.4, 1.2 / 4.4, 2.0 / 4.4])
    assert g.members.tolist() == [
        [True, False, False, False],
        [False, True, False, False],
        [False, False, True, False],  # 45 % < 50 %, but 2.3x the episode's 20 % of windows
    ]
    strict = episode_groups(pf, wf, af, np.ones(4), t, ep, threshold=0.9)
    assert strict.members.tolist() == g.members.tolist()  # b and c by the fallback
    assert not episode_groups(pf, wf[:, 3:], af[:, 3:], np.ones(1), t, ep).members.any()
