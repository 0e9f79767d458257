"""The hmmglm pipeline's ``trials`` option: one trial per row of an interval table."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

import numpy as np
import pytest

from neuroana.hmmglm.pipeline import check_data, read_inputs

BIN = 0.1
ROWS = [(1.0, 3.0), (4.5, 6.5), (7.0, 9.0)]


def _write(path, trains, rows, table="trials"):
    from pynwb import NWBHDF5IO, NWBFile

    nwb = NWBFile(
        session_description="trials test",
        identifier="trials-1",
        session_start_time=datetime(2024, 1, 2, tzinfo=UTC),
    )
    for t in trains:
        nwb.add_unit(spike_times=np.asarray(t, float))
    for a, b in rows:
        if table == "trials":
            nwb.add_trial(start_time=a, stop_time=b)
        else:
            nwb.add_epoch(start_time=a, stop_time=b, tags=["x"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with NWBHDF5IO(str(path), "w") as io:
            io.write(nwb)
    return path


@pytest.fixture
def trains():
    rng = np.random.default_rng(0)
    return [np.sort(rng.uniform(0, 10, 80)) for _ in range(3)]


def _brute(trains, a, n):
    """Counts of [a + k*BIN, a + (k+1)*BIN) for k < n, by direct comparison."""
    out = np.zeros((n, len(trains)), int)
    for u, t in enumerate(trains):
        for k in range(n):
            lo, hi = a + k * BIN, a + (k + 1) * BIN
            out[k, u] = int(((t >= lo) & (t < hi)).sum())
    return out


@pytest.mark.parametrize("table", ["trials", "epochs"])
def test_one_trial_per_row_equals_brute_force(tmp_path, trains, table):
    p = _write(tmp_path / "s.nwb", trains, ROWS, table)
    X = read_inputs([p], check_data({"bin_size": BIN, "trials": table}, 1, None))["spikes"]
    assert X.sizes == {"trial": 3, "time": 20, "unit": 3}
    np.testing.assert_allclose(X["trial_start"].values, [a for a, _ in ROWS])
    for i, (a, _) in enumerate(ROWS):
        np.testing.assert_array_equal(X.values[i], _brute(trains, a, 20))
    # trial_length cuts every row into trials of that length
    X2 = read_inputs([p], {"bin_size": BIN, "trials": table, "trial_length": 1.0})["spikes"]
    np.testing.assert_allclose(X2["trial_start"].values, [1, 2, 4.5, 5.5, 7, 8])
    np.testing.assert_array_equal(X2.values[3], _brute(trains, 5.5, 10))


def test_unequal_rows_and_conflicts_are_refused(tmp_path, trains):
    p = _write(tmp_path / "s.nwb", trains, [(0.0, 2.0), (3.0, 6.0)])
    with pytest.raises(ValueError, match=r"trials='trials'.*\[20, 30\] bins.*trial_length"):
        read_inputs([p], {"bin_size": BIN, "trials": "trials"})
    X = read_inputs([p], {"bin_size": BIN, "trials": "trials", "trial_length": 2.0})["spikes"]
    assert X.sizes["trial"] == 2
    with pytest.raises(ValueError, match="either trials or interval"):
        check_data({"bin_size": BIN, "trials": "trials", "start": 0.0}, 1, None)
    with pytest.raises(ValueError, match="either trials or interval"):
        read_inputs([p], {"bin_size": BIN, "trials": "trials", "interval": ("epochs", 0)})
    with pytest.raises(ValueError, match="data.trials=3"):
        check_data({"bin_size": BIN, "trials": 3}, 1, None)
    with pytest.raises(Exception, match="nope"):
        read_inputs([p], {"bin_size": BIN, "trials": "nope"})


def test_trials_from_table_fit_equals_direct_fit(tmp_path, trains):
    from neuroana.hmmglm import HMMGLM
    from neuroana.runner import fit_analysis

    p = _write(tmp_path / "s.nwb", trains, ROWS)
    inputs = read_inputs([p], {"bin_size": BIN, "trials": "trials"})
    params = {"n_states": 2, "max_iter": 3, "n_restarts": 1, "random_state": 0, "device": "cpu"}
    _, ds, _ = fit_analysis("hmmglm", inputs, params)
    import xarray as xr

    direct = xr.DataArray(
        np.stack([_brute(trains, a, 20) for a, _ in ROWS]), dims=("trial", "time", "unit")
    )
    ref = HMMGLM(**params).fit(direct)
    np.testing.assert_array_equal(ds["states"].values, ref.predict_states(direct).values)
