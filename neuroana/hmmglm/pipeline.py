"""NWB units -> :class:`~neuroana.hmmglm.HMMGLM` input, and a fitted model -> Dataset + summary.

The contract of :mod:`neuroana.analysis`: :data:`DATA_KEYS`, :func:`read_inputs`, :func:`results`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["DATA_KEYS", "check_data", "read_inputs", "results"]

#: ``data:`` options of a run configuration -> required?
DATA_KEYS: dict[str, bool] = {
    "bin_size": True,
    "interval": False,
    "start": False,
    "stop": False,
    "trial_length": False,
    "trials": False,
    "units": False,
}


def check_data(data: Mapping[str, Any], n_inputs: int, resolve: Callable[[str], Path]) -> dict:
    """Validate the ``data:`` options (seconds positive, ``interval`` as ``[table, tag]``, ...).

    Examples
    --------
    >>> check_data({"bin_size": 0.1, "interval": ["epochs", "wake"]}, 1, None)["interval"]
    ('epochs', 'wake')
    >>> check_data({"bin_size": 0}, 1, None)
    Traceback (most recent call last):
    ...
    ValueError: data.bin_size=0; expected a positive number of seconds
    """
    from neuroana.io.options import interval_and_units, positive_seconds

    data = dict(data)
    for key in ("bin_size", "trial_length"):
        positive_seconds(data, key)
    data.update(interval_and_units(data))
    trials = data.get("trials")
    if trials is not None:
        if not isinstance(trials, str) or not trials:
            raise ValueError(
                f"data.trials={trials!r}; expected an interval table name, e.g. trials"
            )
        if any(data.get(k) is not None for k in ("interval", "start", "stop")):
            raise ValueError("data: give either trials or interval/start/stop, not both")
    return data


def _segments(p: Path, d: Mapping[str, Any]) -> list[tuple[float | None, float | None]]:
    """The time ranges of ``p`` to bin: one per row of ``data.trials``, else the chosen range."""
    if d.get("trials") is None:
        return [(d.get("start"), d.get("stop"))]
    from neuroana.io import read_intervals

    table = read_intervals(p, d["trials"])
    if not len(table):
        raise ValueError(f"data.trials: interval table {d['trials']!r} of {p.name} has no rows")
    rows = table[["start_time", "stop_time"]].to_numpy(dtype=float)
    return [(float(a), float(b)) for a, b in rows]


def read_inputs(paths: Sequence[Path], data: Mapping[str, Any]) -> dict[str, Any]:
    """Bin each file's spikes and cut them into trials: ``{"spikes": ("trial", "time", "unit")}``.

    Parameters
    ----------
    paths : sequence of pathlib.Path
        NWB files with a units table; they must hold the same units (or ``data["units"]``).
    data : mapping
        ``bin_size`` (s, required); ``interval`` ``(table, tag or row)`` or ``start``/``stop``
        (s); ``trials``: an interval table (e.g. ``trials`` or ``epochs``) whose every row is one
        trial (the rows must give equal numbers of bins, unless ``trial_length`` cuts them);
        ``trial_length`` (s; default one trial per file or row, a remainder is dropped); ``units``.

    Returns
    -------
    dict
        ``{"spikes": DataArray}`` with coords ``unit``, ``trial_source`` (file name) and
        ``trial_start`` (s) per trial, and ``time`` from 0 within a trial.

    Raises
    ------
    ValueError
        Unit ids missing from a file, files with different units, a ``trial_length`` longer
        than the chosen range, a ``trials`` table missing or empty, rows of unequal length, or
        ``trials`` combined with ``interval``/``start``/``stop``; the message names the file and
        the option.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from neuroana.datasets import make_session
    >>> from neuroana.io import write_session_nwb
    >>> p = write_session_nwb(make_session(random_state=0, duration=20.0, n_units=3),
    ...                       pathlib.Path(tempfile.mkdtemp()) / "s.nwb")
    >>> read_inputs([p], {"bin_size": 0.1, "interval": ("epochs", "wake"), "trial_length": 5})[
    ...     "spikes"].sizes
    Frozen({'trial': 3, 'time': 50, 'unit': 3})
    >>> read_inputs([p], {"bin_size": 0.1, "trials": "epochs", "trial_length": 5})[
    ...     "spikes"]["trial_start"].values.tolist()
    [0.0, 5.0, 10.0, 15.0]
    """
    from neuroana.io import read_spike_counts
    from neuroana.io.options import select_units

    d = data
    if d.get("trials") is not None and any(
        d.get(k) is not None for k in ("interval", "start", "stop")
    ):
        raise ValueError("data: give either trials or interval/start/stop, not both")
    trials, sources, starts, units = [], [], [], None
    for p in map(Path, paths):
        for start, stop in _segments(p, d):
            counts = read_spike_counts(
                p, d["bin_size"], start=start, stop=stop, interval=d.get("interval")
            )
            counts = select_units(counts, d.get("units"), p)
            if units is None:
                units = counts["unit"].values
            elif not np.array_equal(units, counts["unit"].values):
                raise ValueError(
                    f"inputs: {p.name} has units {counts['unit'].values.tolist()}, the first "
                    f"file has {units.tolist()}; select common ones with data.units"
                )
            n = counts.sizes["time"]
            tb = n
            if d.get("trial_length") is not None:
                tb = int(round(d["trial_length"] / d["bin_size"]))
                if tb < 1 or tb > n:
                    where = "the chosen range" if start is None else f"the row {start}-{stop} s"
                    raise ValueError(
                        f"data.trial_length={d['trial_length']} s gives {tb} bins; "
                        f"{p.name} has {n} bins of {d['bin_size']} s in {where}"
                    )
            for i in range(n // tb):
                seg = counts.isel(time=slice(i * tb, (i + 1) * tb))
                trials.append(seg.values)
                sources.append(p.name)
                starts.append(float(seg["time"].values[0]) - d["bin_size"] / 2)
    lengths = sorted({len(t) for t in trials})
    if len(lengths) > 1:
        raise ValueError(
            f"data.trials={d['trials']!r}: the rows give trials of {lengths} bins of "
            f"{d['bin_size']} s; expected equal-length trials (set data.trial_length to cut "
            "each row into trials of that many seconds)"
        )
    spikes = xr.DataArray(
        np.stack(trials),
        dims=("trial", "time", "unit"),
        coords={
            "unit": units,
            "trial_source": ("trial", sources),
            "trial_start": ("trial", starts),
            "time": np.arange(len(trials[0][:, 0])) * d["bin_size"],
        },
        name="spikes",
        attrs={"bin_size": d["bin_size"]},
    )
    return {"spikes": spikes}


def results(estimator, inputs: Mapping[str, Any]) -> tuple[xr.Dataset, dict[str, Any]]:
    """The fitted parameters, the Viterbi states per trial, and the training log-likelihood."""
    from neuroana.io.fitted import fitted_dataset, merge_named

    X = inputs["spikes"]
    ds, scalars = fitted_dataset(estimator)
    keep = {c: X[c] for c in ("trial_source", "trial_start") if c in X.coords}
    states = estimator.predict_states(X).assign_coords(keep)
    ds = merge_named(ds, states, "states")
    scores = {
        "train_log_lik_per_bin": float(estimator.score(X)),
        "n_trials": X.sizes["trial"],
        "n_bins": X.sizes["time"],
        "n_units": X.sizes["unit"],
    }
    return ds, {"fitted": scalars, "scores": scores}
