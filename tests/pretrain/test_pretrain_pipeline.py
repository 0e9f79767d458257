"""The pretrain analysis contract: NWB units -> SpikeRateModel.fit arguments -> results Dataset,
through the registry and the runner."""

import json
import pickle

import numpy as np
import pytest
import yaml

from neuroana.analysis import get
from neuroana.pretrain.pipeline import RecordedSpikes, check_data, read_inputs, results

FAST = dict(context=0.5, chunk=1.0, l2=(100.0,), max_iter=20, max_epochs=1, n_threads=1)


@pytest.fixture(scope="module")
def session_file(tmp_path_factory):
    from neuroana.datasets import make_session
    from neuroana.io import write_session_nwb

    s = make_session(random_state=0, duration=30.0, n_units=4, n_rois=4)
    return s, write_session_nwb(s, tmp_path_factory.mktemp("nwb") / "s.nwb")


def test_read_inputs_gives_the_fit_arguments_and_keeps_the_held_out_span(session_file):
    s, path = session_file
    kw = read_inputs([path], {"interval": ("epochs", "wake"), "units": [2, 0], "held_out": 0.25})
    assert set(kw) == {"spikes", "t_start", "t_stop"}
    wake = 30.0 * (1 - s.params["sleep_fraction"])
    assert kw["t_start"] == 0.0 and kw["spikes"].interval == (0.0, wake)
    assert kw["t_stop"] == pytest.approx(0.75 * wake)
    assert list(kw["spikes"]) == [2, 0]  # the order asked for
    np.testing.assert_array_equal(kw["spikes"][2], s.spike_times[2])
    again = pickle.loads(pickle.dumps(kw["spikes"]))  # ships to dask workers
    assert isinstance(again, RecordedSpikes) and again.interval == kw["spikes"].interval
    with pytest.raises(ValueError, match=r"unit id\(s\) \[9\] not in s.nwb"):
        read_inputs([path], {"units": [9]})
    with pytest.raises(ValueError, match="held_out"):
        check_data({"held_out": 1.0}, 1, None)
    with pytest.raises(ValueError, match="either interval or start/stop"):
        check_data({"interval": ["epochs", "wake"], "start": 0.0}, 1, None)


def test_results_score_the_held_out_span_the_fit_never_read(session_file):
    _, path = session_file
    est_cls = get("pretrain").estimator_class()
    kw = read_inputs([path], {"interval": ("epochs", "wake"), "held_out": 0.3})
    m = est_cls(random_state=0, device="cpu", **FAST).fit(**kw)
    assert m.fit_interval_ == (kw["t_start"], kw["t_stop"])
    ds, info = results(m, kw)
    held = ds["held_out_bits_per_spike"]
    assert held.dims == ("unit",) and list(held["unit"].values) == [0, 1, 2, 3]
    np.testing.assert_allclose(
        held.values, m.bits_per_spike(kw["spikes"], kw["t_stop"], kw["spikes"].interval[1]).values
    )
    assert ds["connectivity_score"].dims == ("target", "source")
    assert ds.attrs["connectivity_span"] == [kw["t_stop"], kw["spikes"].interval[1]]
    sc = info["scores"]
    end = kw["spikes"].interval[1]
    assert sc["held_out_bits_per_spike"] == pytest.approx(m.score(kw["spikes"], kw["t_stop"], end))
    assert sc["held_out_span"] == ds.attrs["connectivity_span"]
    json.dumps(info)  # JSON-able summary
    # without a held-out span: no held-out score, the read-out runs on the fit range
    kw0 = read_inputs([path], {"interval": ("epochs", "wake")})
    ds0, info0 = results(est_cls(random_state=0, device="cpu", **FAST).fit(**kw0), kw0)
    assert "held_out_bits_per_spike" not in ds0 and "held_out_bits_per_spike" not in info0["scores"]
    assert ds0.attrs["connectivity_span"] == [kw0["t_start"], kw0["t_stop"]]


def test_runner_runs_the_registered_rate_model(session_file, tmp_path):
    from neuroana.runner import run_config

    _, path = session_file
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "analysis": "pretrain",
                "inputs": str(path),
                "data": {"interval": ["epochs", "wake"], "held_out": 0.3, "units": [0, 1, 2]},
                "params": {
                    **{k: list(v) if isinstance(v, tuple) else v for k, v in FAST.items()},
                    "random_state": 0,
                    "device": "cpu",
                },
                "output": str(tmp_path / "out"),
            }
        )
    )
    run_config(cfg)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["analysis"] == "pretrain"
    assert np.isfinite(summary["scores"]["held_out_bits_per_spike"])
    import xarray as xr

    with xr.open_dataset(tmp_path / "out" / "results.nc") as ds:
        assert ds["connectivity_score"].dims == ("target", "source")
        assert ds.sizes["unit"] == 3
