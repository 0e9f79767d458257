"""Issue 12: right answers on multi-animal calcium recordings laid out like real data, with the
estimator's defaults: the outside case in ../shared/cases and two sets from our own generator."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from connectome_scoring import baseline_nmi, episode_nmi

from neuroana.connectome import ConnectomeInputError, DynamicConnectome
from neuroana.datasets.connectome_sim import make_calcium_recordings

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("NEUROANA_SHARED", REPO.parent / "shared"))
CASE = SHARED / "cases" / "connectome_multi_animal"
ANIMALS = ("fish-a", "fish-b", "fish-c", "fish-d")


def _need_case():
    if not (CASE / "truth.json").is_file():
        pytest.skip(f"the outside case is not in {CASE} (needs ../shared)")


@pytest.fixture(scope="module")
def case():
    """The public case read as a user would (by label), fitted with the defaults."""
    _need_case()
    from neuroana.io import read_intervals, read_roi_traces

    paths = [CASE / f"{a}_ophys.nwb" for a in ANIMALS]
    traces = {
        a: read_roi_traces(p, roi_label="neuron_label") for a, p in zip(ANIMALS, paths, strict=True)
    }
    epochs = read_intervals(paths[0], "epochs")
    fitted = DynamicConnectome(random_state=0).fit(traces, epochs=epochs)
    truth = json.loads((CASE / "truth.json").read_text())
    return {"paths": paths, "traces": traces, "epochs": epochs, "fit": fitted, "truth": truth}


def test_public_case_meets_the_issue_targets(case):
    res, truth = case["fit"].result_, case["truth"]
    episodes = truth["episodes"]
    assert [str(n) for n in res["episode"].values] == [e["name"] for e in episodes]
    nmi = episode_nmi(res, [e["community"] for e in episodes])
    base = [truth["sanity_baseline"]["results"][e["name"]]["mean_per_animal"] for e in episodes]
    assert all(n >= b for n, b in zip(nmi, base, strict=True)), (nmi, base)
    assert np.mean(nmi) >= 0.9, nmi
    for e, ep in enumerate(episodes):
        assert abs(int(res["episode_n_communities"][e]) - ep["n_communities"]) <= 1
        assert res["episode_members"].values[e].any()  # a component group for every episode
        for animal in ep["non_participating_animals"]:
            loading = res["episode_animal_loading"].sel(animal=animal).values[e]
            assert loading <= 0.4, (ep["name"], animal, loading)
        for animal in ep["participating_animals"]:
            assert res["episode_animal_loading"].sel(animal=animal).values[e] > 0.4
    assert 3 <= res.attrs["rank"] <= 8


SETS = {
    # sizes, rates, episode counts and numbers of animals differ from the public case and each other
    "3 animals, 3 episodes, 3 Hz": dict(
        n_neurons=36,
        n_animals=3,
        episode_durations=(480.0, 360.0, 480.0),
        n_communities=(3, 4, 2),
        fs=3.0,
        loading=(0.3, 0.6),
        non_participating=(1, 1),
        random_state=0,
    ),
    "5 animals, 2 episodes, 4 Hz": dict(
        n_neurons=30,
        n_animals=5,
        episode_durations=(420.0, 420.0),
        n_communities=(4, 2),
        fs=4.0,
        loading=(0.3, 0.6),
        non_participating=(0, 2),
        random_state=1,
    ),
}


@pytest.mark.parametrize("name", list(SETS))
def test_generated_recordings_meet_the_issue_targets(name):
    cfg = SETS[name]
    sim = make_calcium_recordings(**cfg)
    res = DynamicConnectome(random_state=0).fit(sim.traces, epochs=sim.epochs).result_
    labels = sim.communities["roi"].values
    truth = [dict(zip(labels, row.tolist(), strict=True)) for row in sim.communities.values]
    animals = list(sim.traces)
    part = [[a for a, p in zip(animals, row, strict=True) if p] for row in sim.participation.values]
    nmi = episode_nmi(res, truth)
    base = baseline_nmi(sim.traces, sim.epochs, truth, cfg["n_communities"], part)
    assert all(n >= b for n, b in zip(nmi, base, strict=True)), (nmi, base)
    assert np.mean(nmi) >= 0.9, nmi
    k = res["episode_n_communities"].values
    assert np.all(np.abs(k - np.asarray(cfg["n_communities"])) <= 1), k
    ep, animal = cfg["non_participating"]
    loading = res["episode_animal_loading"].values[ep]
    assert loading[animal] <= 0.4 and np.delete(loading, animal).min() > 0.4, loading
    assert 3 <= res.attrs["rank"] <= 8


# ------------------------------------------------------------------------- neuroana run
def _digest(paths) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_runner_on_public_case_matches_api_and_leaves_inputs_unchanged(case, tmp_path):
    from neuroana.runner import run_config

    before = _digest(case["paths"])
    cfg = {
        "analysis": "connectome",
        "inputs": [str(p) for p in case["paths"]],
        "data": {"roi_label": "neuron_label", "epochs": "epochs"},
        "params": {"random_state": 0},
        "output": "out",
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    res = run_config(tmp_path / "run.yaml")
    api = case["fit"].result_
    with xr.open_dataset(res.output / "results.nc") as got:
        assert got.attrs["rank"] == api.attrs["rank"]
        np.testing.assert_array_equal(got["roi"].values.astype(str), api["roi"].values.astype(str))
        np.testing.assert_array_equal(
            got["episode_communities"].values, api["episode_communities"].values
        )
        np.testing.assert_allclose(got["pair_factor"].values, api["pair_factor"].values)
    eps = res.summary["scores"]["episodes"]
    assert eps["odour"]["n_communities"] == int(api["episode_n_communities"].sel(episode="odour"))
    assert _digest(case["paths"]) == before


def test_runner_refuses_several_files_without_a_label_column(tmp_path):
    from neuroana.datasets import make_session
    from neuroana.io import write_session_nwb
    from neuroana.runner import run_config

    paths = [
        write_session_nwb(
            make_session(random_state=s, duration=30.0, n_units=2, n_rois=5), tmp_path / f"m{s}.nwb"
        )
        for s in (0, 1)
    ]
    before = _digest(paths)
    cfg = {"analysis": "connectome", "inputs": [p.name for p in paths], "output": "out"}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    # the pipeline's read_inputs refuses (a ValueError naming the files and the options)
    with pytest.raises(ConnectomeInputError, match=r"m0\.nwb, m1\.nwb.*roi_label.*shared_ids"):
        run_config(tmp_path / "run.yaml")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert _digest(paths) == before
