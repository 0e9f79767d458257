"""NWB units -> :class:`~neuroana.pretrain.SpikeFormer` input (spike events), and a fitted model ->
Dataset + summary (the contract of :mod:`neuroana.analysis`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import xarray as xr

__all__ = ["DATA_KEYS", "check_data", "read_inputs", "results"]

#: ``data:`` options of a run configuration -> required?
DATA_KEYS: dict[str, bool] = {"interval": False, "start": False, "stop": False, "units": False}


def check_data(data: Mapping[str, Any], n_inputs: int, resolve: Callable[[str], Path]) -> dict:
    """Validate the ``data:`` options (``interval`` as ``[table, tag]``, ``units`` a list)."""
    from neuroana.io.options import interval_and_units

    return {**data, **interval_and_units(data)}


def read_inputs(paths: Sequence[Path], data: Mapping[str, Any]) -> dict[str, Any]:
    """Spike events of one NWB file's units: ``{"spikes": SpikeEvents}``.

    ``data``: ``interval`` ``(table, tag or row)`` or ``start``/``stop`` (s); ``units`` (ids).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from neuroana.datasets import make_session
    >>> from neuroana.io import write_session_nwb
    >>> p = write_session_nwb(make_session(random_state=0, duration=20.0, n_units=3),
    ...                       pathlib.Path(tempfile.mkdtemp()) / "s.nwb")
    >>> ev = read_inputs([p], {"interval": ("epochs", "wake")})["spikes"]
    >>> float(ev.t_stop)
    15.0
    """
    from neuroana.io import read_spike_times
    from neuroana.io.options import interval_bounds
    from neuroana.pretrain import events_from_spike_times

    if len(paths) != 1:
        raise ValueError(f"inputs: pretrain takes exactly one input file; got {len(paths)}")
    p = Path(paths[0])
    spikes = read_spike_times(p)
    if data.get("units") is not None:
        miss = [u for u in data["units"] if u not in spikes]
        if miss:
            raise ValueError(f"data.units: unit id(s) {miss} not in {p.name}")
        spikes = {u: spikes[u] for u in data["units"]}
    start, stop = data.get("start"), data.get("stop")
    if data.get("interval") is not None:
        start, stop = interval_bounds(p, *data["interval"])
    return {"spikes": events_from_spike_times(spikes, t_start=start, t_stop=stop)}


def results(estimator, inputs: Mapping[str, Any]) -> tuple[xr.Dataset, dict[str, Any]]:
    """Training history and, when windows were held out, their log-likelihood."""
    from neuroana.io.fitted import fitted_dataset, merge_named

    ds, scalars = fitted_dataset(estimator)
    scores: dict[str, Any] = {}
    if estimator.split_ is not None and len(estimator.split_.test):
        ll = estimator.log_likelihood(inputs["spikes"], estimator.split_.test)
        ds = merge_named(ds, ll.rename(None), "test_log_likelihood")
        scores["test_log_likelihood_per_window"] = float(ll.mean())
    return ds, {"fitted": scalars, "scores": scores}
