"""read_tuning: the stimulus tuning table round-trips exactly, in any row order; bad tables are refused."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from neuroana.datasets import make_session
from neuroana.io import NWBError, write_session_nwb
from neuroana.io.nwb_tuning import read_tuning


@pytest.fixture(scope="module")
def session_file(tmp_path_factory):
    s = make_session(random_state=2, duration=5.0, n_units=2, n_rois=3, n_tuning_sessions=3)
    return s, write_session_nwb(s, tmp_path_factory.mktemp("tuning") / "s.nwb")


def test_round_trip_and_row_order(session_file, tmp_path):
    s, p = session_file
    got = read_tuning(p)
    assert got.dims == ("session", "neuron", "stimulus", "ensemble")
    np.testing.assert_array_equal(got.values, s.tuning.values)
    np.testing.assert_array_equal(got["adaptor_probability"], s.tuning["adaptor_probability"])
    np.testing.assert_array_equal(got["neuron"], s.tuning["neuron"])
    assert list(got["ensemble"].values) == ["uniform", "biased"]
    # the same rows in reverse order read back to the same array
    q = tmp_path / "reversed.nwb"
    q.write_bytes(p.read_bytes())
    with h5py.File(q, "r+") as f:
        t = f["processing/stimulus/tuning"]
        for col in ("session", "adaptor_probability", "neuron", "stimulus", "ensemble", "response"):
            t[col][...] = t[col][...][::-1]
    np.testing.assert_array_equal(read_tuning(q).values, s.tuning.values)


def test_bad_tables_are_refused(session_file, tmp_path):
    _, p = session_file
    q = tmp_path / "dup.nwb"
    q.write_bytes(p.read_bytes())
    with h5py.File(q, "r+") as f:
        col = f["processing/stimulus/tuning/stimulus"]
        col[0] = col[2]  # row 0 now repeats row 2 (rows vary ensemble fastest, then stimulus)
    with pytest.raises(NWBError, match="repeated"):
        read_tuning(q)
    none = write_session_nwb(
        make_session(random_state=0, duration=5.0, n_units=2, n_rois=3), tmp_path / "none.nwb"
    )
    with pytest.raises(NWBError, match=r"no tuning table \(a DynamicTable with columns"):
        read_tuning(none)
    with pytest.raises(NWBError, match="no tuning table named 'other'"):
        read_tuning(p, "other")
