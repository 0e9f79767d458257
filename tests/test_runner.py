"""``neuroana run CONFIG.yaml`` (neuroana.runner): same numbers as the estimator called directly,
atomic outputs, clear errors for bad configurations, and valid example configs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from neuroana.cli import main
from neuroana.runner import ConfigError, load_config, run_config

A2929 = "pynapple_neurosuite_A2929-200711.nwb"
CONFIGS = Path(__file__).resolve().parents[1] / "tutorials" / "configs"


def _write_yaml(path: Path, cfg: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    """Two synthetic animals written as NWB files (the writer's atomic path)."""
    from neuroana.datasets import make_session
    from neuroana.io import write_session_nwb

    d = tmp_path_factory.mktemp("data")
    return [
        write_session_nwb(
            make_session(random_state=seed, duration=120.0, n_units=3, n_rois=10),
            d / f"a{seed}.nwb",
        )
        for seed in (0, 1)
    ]


CON_PARAMS = dict(
    window=20.0, n_components=2, n_restarts=2, max_iter=60, n_runs=2, device="cpu", random_state=3
)


def _connectome_cfg(tmp_path, sessions, **over):
    cfg = {
        "analysis": "connectome",
        # relative to the YAML's folder, not to the working directory
        "inputs": [f"../data/{p.name}" for p in sessions],
        "data": {"shared_ids": True},  # the synthetic files number the same neurons alike
        "params": CON_PARAMS,
        "output": "out",
    }
    cfg.update(over)
    for p in sessions:
        (tmp_path / "data").mkdir(exist_ok=True)
        target = tmp_path / "data" / p.name
        if not target.exists():
            target.symlink_to(p)
    return _write_yaml(tmp_path / "cfg" / "run.yaml", cfg)


# ----------------------------------------------------------------------------- same numbers
def test_hmmglm_on_real_nwb_matches_direct_fit(nwb_dir, tmp_path, monkeypatch):
    from neuroana.hmmglm import HMMGLM
    from neuroana.io import read_spike_counts

    units = [0, 2, 3, 5, 7]
    params = dict(
        n_states=2, prior="gaussian", n_restarts=1, max_iter=4, random_state=0, device="cpu"
    )
    cfg = _write_yaml(
        tmp_path / "run.yaml",
        {
            "analysis": "hmmglm",
            "inputs": str(nwb_dir / A2929),
            "data": {
                "bin_size": 0.5,
                "interval": ["epochs", "wake"],
                "trial_length": 100,
                "units": units,
            },
            "params": params,
            "output": "out",
        },
    )
    monkeypatch.chdir(tmp_path.parent)  # outputs land next to the YAML, not in the cwd
    assert main(["run", str(cfg)]) == 0

    # the estimator called directly: wake epoch (600-1200 s), 0.5-s bins, six 200-bin trials
    counts = read_spike_counts(nwb_dir / A2929, 0.5, interval=("epochs", "wake")).sel(unit=units)
    assert counts.sizes["time"] == 1200
    X = xr.DataArray(
        counts.values.reshape(6, 200, len(units)),
        dims=("trial", "time", "unit"),
        coords={"unit": units},
    )
    direct = HMMGLM(**params).fit(X)

    out = tmp_path / "out"
    with xr.open_dataset(out / "results.nc") as res:
        for name in ("weights", "bias", "transition", "initial", "coupling"):
            np.testing.assert_allclose(res[name].values, getattr(direct, name + "_").values)
        np.testing.assert_array_equal(res["states"].values, direct.predict_states(X).values)
        np.testing.assert_array_equal(res["unit"].values, units)
        np.testing.assert_allclose(res["trial_start"].values, 600.0 + 100.0 * np.arange(6))
        np.testing.assert_allclose(res["history_log_lik"].values, direct.history_["log_lik"].values)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["params"] == direct.get_params()
    assert summary["scores"]["train_log_lik_per_bin"] == pytest.approx(direct.score(X))
    assert summary["scores"]["n_trials"] == 6
    assert sorted(p.name for p in out.iterdir()) == ["results.nc", "summary.json"]


def test_connectome_on_synthetic_nwb_matches_direct_fit(sessions, tmp_path, monkeypatch):
    from neuroana.connectome import DynamicConnectome
    from neuroana.io import read_roi_traces

    cfg = _connectome_cfg(tmp_path, sessions)
    monkeypatch.chdir(tmp_path / "data")  # a different working directory
    res = run_config(cfg)
    assert res.output == tmp_path / "cfg" / "out"

    direct = DynamicConnectome(**CON_PARAMS).fit({p.stem: read_roi_traces(p) for p in sessions})
    with xr.open_dataset(res.output / "results.nc") as got:
        np.testing.assert_allclose(got["affinity"].values, direct.affinity_.values)
        for name in ("pair_factor", "window_factor", "animal_factor", "communities"):
            np.testing.assert_allclose(got[name].values, direct.result_[name].values)
        assert got.sizes["animal"] == 2
    assert res.summary["scores"]["reconstruction_error"] == pytest.approx(
        direct.ntf_.reconstruction_error_
    )


# ----------------------------------------------------------------------------- atomic outputs
def test_failing_write_leaves_previous_results_and_no_partial_file(sessions, tmp_path, monkeypatch):
    cfg = _connectome_cfg(tmp_path, sessions)
    out = run_config(cfg).output
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    real = xr.Dataset.to_netcdf

    def half_write(self, path=None, *args, **kwargs):
        Path(path).write_bytes(b"\x89HDF half a file")  # a crash in the middle of writing
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", half_write)
    with pytest.raises(OSError, match="disk full"):
        run_config(cfg)
    monkeypatch.setattr(xr.Dataset, "to_netcdf", real)
    # the earlier complete results are untouched; no temporary or staging file is left behind
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_failing_fit_writes_nothing(sessions, tmp_path):
    cfg = _connectome_cfg(tmp_path, sessions, params={**CON_PARAMS, "n_components": 50})
    with pytest.raises(ValueError, match="n_components=50"):
        run_config(cfg)
    assert list((tmp_path / "cfg" / "out").iterdir()) == []


# ----------------------------------------------------------------------------- bad configs
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"output": None}, r"missing required key\(s\) \['output'\]"),
        ({"analysis": "spectral"}, r"analysis='spectral'; expected one of \['connectome'"),
        ({"inputs": ["nope.nwb"]}, r"inputs: file 'nope.nwb' not found"),
        (
            {"params": {"n_state": 2}},
            r"unknown parameter 'n_state' for HMMGLM; valid: .*'n_states'",
        ),
        ({"data": {"bin_size": 0.1, "bins": 3}}, r"data: unknown key\(s\) \['bins'\].*'bin_size'"),
        ({"data": {"trial_length": 3}}, r"data: missing key\(s\) \['bin_size'\]"),
        ({"data": {"bin_size": -1}}, r"data.bin_size=-1; expected a positive"),
        ({"outputs": "x"}, r"unknown top-level key\(s\) \['outputs'\]"),
    ],
)
def test_bad_config_names_the_key(tmp_path, change, message):
    (tmp_path / "s.nwb").write_bytes(b"")
    cfg = {
        "analysis": "hmmglm",
        "inputs": "s.nwb",
        "data": {"bin_size": 0.1},
        "params": {"n_states": 2},
        "output": "out",
    }
    cfg.update(change)
    cfg = {k: v for k, v in cfg.items() if v is not None}
    path = _write_yaml(tmp_path / "bad.yaml", cfg)
    with pytest.raises(ConfigError, match=message) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert not (tmp_path / "out").exists()


def test_cli_reports_bad_config_and_not_yaml(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("analysis: [hmmglm\n")
    assert main(["run", str(path)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err


def test_segmentation_evaluation_takes_no_params(tmp_path):
    for name in ("gt.zarr", "pred.zarr"):
        (tmp_path / name).mkdir()
    cfg = {
        "analysis": "segmentation",
        "inputs": ["gt.zarr"],
        "data": {"pred": ["pred.zarr"]},
        "params": {"min_size": 10},
        "output": "out",
    }
    with pytest.raises(ConfigError, match=r"params: these data options .*run no estimator"):
        load_config(_write_yaml(tmp_path / "a.yaml", cfg))
    cfg.update(params={}, data={"pred": ["pred.zarr", "pred.zarr"]})
    with pytest.raises(ConfigError, match=r"data.pred: expected one prediction per input \(1\)"):
        load_config(_write_yaml(tmp_path / "b.yaml", cfg))


# ----------------------------------------------------------------------------- example configs
@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_example_configs_validate(path):
    cfg = load_config(path, check_inputs=False)
    assert cfg.path == path
    if all(p.exists() for p in cfg.inputs):  # real data present (../shared): validate fully
        assert load_config(path) == cfg


def test_every_analysis_has_an_example_config():
    from neuroana.analysis import names

    got = {load_config(p, check_inputs=False).analysis for p in CONFIGS.glob("*.yaml")}
    assert got == set(names())


def test_adaptation_from_the_nwb_tuning_table_matches_direct_fit(tmp_path):
    """The adaptation pipeline reads the NWB tuning table the demo session carries."""
    from neuroana.adaptation import GainAdaptationModel
    from neuroana.datasets import make_session
    from neuroana.io import write_session_nwb
    from neuroana.io.nwb_tuning import read_tuning

    s = make_session(random_state=0, duration=5.0, n_units=3, n_rois=4, n_tuning_sessions=2)
    p = write_session_nwb(s, tmp_path / "s.nwb")
    data = read_tuning(p)
    xr.testing.assert_equal(data.drop_vars(data.coords), s.tuning.drop_vars(s.tuning.coords))
    np.testing.assert_array_equal(data["stimulus"].values, s.tuning["stimulus"].values)
    params = {"max_iter": 2, "random_state": 0}
    cfg = _write_yaml(
        tmp_path / "run.yaml",
        {"analysis": "adaptation", "inputs": "s.nwb", "params": params, "output": "out"},
    )
    res = run_config(cfg)
    direct = GainAdaptationModel(**params).fit(data)
    with xr.open_dataset(res.output / "results.nc") as got:
        np.testing.assert_allclose(got["prediction"].values, direct.predict(data).values)
        np.testing.assert_allclose(got["response"].values, data.values)
    assert res.summary["scores"]["r2_adapted"] == pytest.approx(direct.score(data))
    assert res.summary["fitted"]["tuning_width"] == pytest.approx(direct.tuning_width_)
