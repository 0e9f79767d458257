"""The runner interface of pretrain (DATA_KEYS / read_inputs / results) on an outside NWB file."""

import json

import numpy as np
import pytest

from neuroana.pretrain import SpikeRateModel
from neuroana.pretrain.pipeline import DATA_KEYS, PretrainInputError, read_inputs, results


@pytest.fixture(scope="module")
def nwb(shared_dir):
    p = shared_dir / "cases" / "spiking_networks" / "hubnet_units.nwb"
    if not p.is_file():
        pytest.skip(f"{p} not found")
    return p


def test_read_inputs(nwb):
    assert set(DATA_KEYS) == {"interval", "start", "stop", "units"}
    kw = read_inputs([nwb], {"start": 10.0, "stop": 40.0})
    assert kw["t_start"] == 10.0 and kw["t_stop"] == 40.0 and len(kw["spikes"]) == 48
    ids = list(kw["spikes"])[:3][::-1]
    sub = read_inputs([nwb], {"units": ids})
    assert list(sub["spikes"]) == ids
    full = read_inputs([nwb], {"interval": ["epochs", 0]})
    assert full["t_start"] == pytest.approx(0.0) and full["t_stop"] == pytest.approx(600.0)


@pytest.mark.parametrize(
    "data, msg",
    [
        ({"units": [999999]}, "not in hubnet_units.nwb"),
        ({"colour": 1}, "unknown key"),
        ({"interval": ["epochs", 5]}, "0 rows"),
        ({"start": 5.0, "stop": 5.0}, "empty interval"),
    ],
)
def test_read_inputs_errors(nwb, data, msg):
    with pytest.raises(PretrainInputError, match=msg):
        read_inputs([nwb], data)


def test_results_layout(nwb):
    kw = read_inputs([nwb], {"start": 0.0, "stop": 30.0, "units": None})
    m = SpikeRateModel(max_epochs=1, max_iter=20, l2=(100.0, 30.0), n_threads=1, verbose=False)
    m.fit(**kw)
    ds, summary = results(m, kw)
    units = list(kw["spikes"])
    assert ds.coupling_weight.dims == ("target", "source")
    assert list(ds.coupling_weight.target.values) == units
    assert ds.bits_per_spike.dims == ("unit",) and np.isfinite(ds.bits_per_spike).all()
    assert ds.history_glm_val_nll.dims == ("l2",) and ds.history_loss.dims == ("epoch",)
    json.dumps(summary)
    assert summary["n_units"] == 48 and summary["pathways"] == ["coupling", "poprate", "attention"]
