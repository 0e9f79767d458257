"""NWB units -> :class:`~neuroana.pretrain.SpikeRateModel` input (spike times and the fit range),
and a fitted model -> Dataset + summary (the contract of :mod:`neuroana.analysis`).

With ``data.held_out`` the end of the chosen range is kept out of the fit; :func:`results` then
scores the model there (per-unit bits per spike over each unit's mean rate) and reads the coupling
out on it (:func:`~neuroana.pretrain.model_connectivity`, dims ``("target", "source")``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import xarray as xr

__all__ = ["DATA_KEYS", "RecordedSpikes", "check_data", "read_inputs", "results"]

#: ``data:`` options of a run configuration -> required?
DATA_KEYS: dict[str, bool] = {
    "held_out": False,
    "interval": False,
    "start": False,
    "stop": False,
    "units": False,
}


class RecordedSpikes(dict):
    """``{unit id: spike times (s)}`` read from a file, with the chosen range ``interval``.

    A plain ``dict`` to the estimator; ``interval = (start, stop)`` (s) lets :func:`results` score
    the held-out end of the range, which the fit never reads.
    """

    def __init__(self, spikes: Mapping, interval: tuple[float, float]):
        super().__init__(spikes)
        self.interval = (float(interval[0]), float(interval[1]))

    def __reduce__(self):  # pickles (dask workers) with its interval
        return (RecordedSpikes, (dict(self), self.interval))


def check_data(data: Mapping[str, Any], n_inputs: int, resolve: Callable[[str], Path]) -> dict:
    """Validate the ``data:`` options (``interval`` as ``[table, tag]``, ``units`` a list,
    ``held_out`` a fraction in [0, 1)).

    Examples
    --------
    >>> check_data({"interval": ["epochs", "wake"], "held_out": 0.2}, 1, None)["interval"]
    ('epochs', 'wake')
    >>> check_data({"held_out": 1.5}, 1, None)
    Traceback (most recent call last):
    ...
    ValueError: data.held_out=1.5; expected a fraction of the range in [0, 1)
    """
    from neuroana.io.options import interval_and_units

    h = data.get("held_out")
    if h is not None and (isinstance(h, bool) or not isinstance(h, int | float) or not 0 <= h < 1):
        raise ValueError(f"data.held_out={h!r}; expected a fraction of the range in [0, 1)")
    return {**data, **interval_and_units(data)}


def read_inputs(paths: Sequence[Path], data: Mapping[str, Any]) -> dict[str, Any]:
    """Spike times of one NWB file's units and the fit range: ``SpikeRateModel.fit`` arguments.

    Parameters
    ----------
    paths : sequence of pathlib.Path
        One NWB file with a units table.
    data : mapping
        ``interval`` ``(table, tag or row)`` or ``start``/``stop`` (s; default: the first to the
        last spike); ``units`` (ids, in the model's order); ``held_out``: the last fraction of the
        range kept out of the fit (default 0).

    Returns
    -------
    dict
        ``{"spikes": RecordedSpikes, "t_start": float, "t_stop": float}``: all spikes of the
        chosen units (those before ``t_start`` are the first window's history), and the fit range.

    Raises
    ------
    ValueError
        More than one file, unit ids missing from the file, an empty range.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from neuroana.datasets import make_session
    >>> from neuroana.io import write_session_nwb
    >>> session = make_session(random_state=0, duration=20.0, n_units=3)
    >>> path = write_session_nwb(session, pathlib.Path(tempfile.mkdtemp()) / "units.nwb")
    >>> kw = read_inputs([path], {"interval": ("epochs", "wake"), "held_out": 0.2})
    >>> kw["t_start"], kw["t_stop"], kw["spikes"].interval, sorted(kw["spikes"])
    (0.0, 12.0, (0.0, 15.0), [0, 1, 2])
    """
    from neuroana.io import read_spike_times
    from neuroana.io.options import spike_range

    if len(paths) != 1:
        raise ValueError(f"inputs: pretrain takes exactly one input file; got {len(paths)}")
    p = Path(paths[0])
    spikes, (start, stop) = spike_range(p, read_spike_times(p), data)
    t_fit = start + (1.0 - float(data.get("held_out") or 0.0)) * (stop - start)
    return {"spikes": RecordedSpikes(spikes, (start, stop)), "t_start": start, "t_stop": t_fit}


def results(estimator, inputs: Mapping[str, Any]) -> tuple[xr.Dataset, dict[str, Any]]:
    """Training history, the fit's bits per spike, the coupling read-out, and (with a held-out
    span) per-unit held-out bits per spike.

    The read-out (``connectivity_score``, ``connectivity_p_value``, ``connectivity_weight``,
    dims ``("target", "source")``: evidence for source -> target) uses the held-out span when
    there is one, else the fit range (``attrs["connectivity_span"]`` says which).
    """
    from neuroana.io.fitted import fitted_dataset, merge_named
    from neuroana.pretrain.connectivity import model_connectivity

    spikes, t0, t1 = inputs["spikes"], float(inputs["t_start"]), float(inputs["t_stop"])
    end = getattr(spikes, "interval", (t0, t1))[1]
    ds, scalars = fitted_dataset(estimator)
    if "l2" in ds.dims:  # the GLM stage's penalty path: summary entries, not a dim of the results
        for name, v in ds.data_vars.items():
            if v.dims == ("l2",):
                keys = (str(float(k)) for k in v["l2"].values)
                scalars[f"{name}_by_l2"] = dict(zip(keys, v.values.tolist(), strict=True))
        ds = ds.drop_dims("l2")
    ds = ds.rename({d: "iteration" for d in ("epoch",) if d in ds.dims})
    scores: dict[str, Any] = {
        "n_units": len(estimator.units_),
        "fit_bits_per_spike": estimator.score(spikes, t0, t1),
    }
    span = (t0, t1)
    if end - t1 >= estimator.dt:  # a held-out span the fit never read
        span = (t1, end)
        b = estimator.bits_per_spike(spikes, t1, end)
        ds = merge_named(ds, b.rename(None), "held_out_bits_per_spike")
        scores["held_out_bits_per_spike"] = float(b.attrs["population"])
        scores["held_out_span"] = list(span)
    if "coupling" in estimator.net_.pathways:
        c = model_connectivity(estimator, spikes, *span, verbose=False)
        for v in ("score", "p_value", "weight"):
            ds = merge_named(ds, c[v], f"connectivity_{v}")
        ds.attrs["connectivity_span"] = list(span)
    return ds, {"fitted": scalars, "scores": scores}
