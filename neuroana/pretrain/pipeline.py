"""Runner interface of the pretraining analysis (``DATA_KEYS``, ``read_inputs``, ``results``).

One NWB file with a ``units`` table. ``data:`` options: ``start`` / ``stop`` (s) or ``interval``
(``[table, tag-or-row]``, e.g. ``[epochs, wake]``) to restrict the fitted span, ``units`` (ids to
keep, in that order). The estimator is :class:`~neuroana.pretrain.SpikeRateModel`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

DATA_KEYS: dict[str, bool] = {"interval": False, "start": False, "stop": False, "units": False}


class PretrainInputError(ValueError):
    """A ``data:`` option does not match the input file."""


def read_inputs(paths: Sequence[Path], data: Mapping[str, Any]) -> dict[str, Any]:
    """Spike times of the one input file -> ``{"spikes", "t_start", "t_stop"}`` for ``fit``.

    Examples
    --------
    >>> from neuroana.pretrain.pipeline import read_inputs
    >>> read_inputs([], {})
    Traceback (most recent call last):
    ...
    neuroana.pretrain.pipeline.PretrainInputError: pretrain reads exactly one NWB file, got 0
    """
    from neuroana.io import read_intervals, read_spike_times

    if len(paths) != 1:
        raise PretrainInputError(f"pretrain reads exactly one NWB file, got {len(paths)}")
    p, d = Path(paths[0]), dict(data)
    unknown = sorted(set(d) - set(DATA_KEYS))
    if unknown:
        raise PretrainInputError(f"data: unknown key(s) {unknown}; valid: {sorted(DATA_KEYS)}")
    spikes = read_spike_times(p)
    if d.get("units") is not None:
        miss = [u for u in d["units"] if u not in spikes]
        if miss:
            raise PretrainInputError(f"data.units: unit id(s) {miss} not in {p.name}")
        spikes = {u: spikes[u] for u in d["units"]}
    start, stop = d.get("start"), d.get("stop")
    if d.get("interval") is not None:
        if start is not None or stop is not None:
            raise PretrainInputError("data: give either interval or start/stop, not both")
        table, tag = d["interval"]
        iv = read_intervals(p, table)
        if isinstance(tag, int):
            rows = iv.iloc[[tag]] if -len(iv) <= tag < len(iv) else iv.iloc[[]]
        else:
            tags = iv["tags"] if "tags" in iv else [[]] * len(iv)
            rows = iv[[tag in list(t) for t in tags]]
        if len(rows) != 1:
            raise PretrainInputError(
                f"data.interval: {len(rows)} rows of table {table!r} match {tag!r} in {p.name}; "
                "expected exactly one"
            )
        start, stop = float(rows.iloc[0]["start_time"]), float(rows.iloc[0]["stop_time"])
    allt = np.concatenate([np.asarray(v) for v in spikes.values()]) if spikes else np.zeros(0)
    if allt.size == 0:
        raise PretrainInputError(f"{p.name}: no spikes in the units table")
    t0 = float(allt.min()) if start is None else float(start)
    t1 = float(allt.max()) + 1e-3 if stop is None else float(stop)
    if not t1 > t0:
        raise PretrainInputError(f"data: empty interval [{t0}, {t1})")
    return {"spikes": spikes, "t_start": t0, "t_stop": t1}


def results(estimator, inputs: Mapping[str, Any]) -> tuple[xr.Dataset, dict[str, Any]]:
    """Coupling kernels, per-unit fit and training history -> (Dataset, summary).

    The Dataset holds ``coupling_weight (target, source)`` (the kernel's signed peak; no held-out
    data is touched here: run :func:`~neuroana.pretrain.model_connectivity` on held-out windows for
    the read-out with p-values), ``bits_per_spike (unit)`` on the validation part of the fitted
    interval, and the per-epoch ``history_*`` variables.
    """
    m = estimator
    net = m.net_
    units = list(m.units_)
    t0, t1 = m.fit_interval_
    v0 = t1 - max(m.val_fraction, 0.05) * (t1 - t0)
    bps = m.bits_per_spike(inputs["spikes"], v0, t1)
    data = {"bits_per_spike": bps.rename(None)}
    if "coupling" in net.pathways:
        kern = np.einsum("jsk,kl->jsl", net.coupling.detach().numpy(), net.basis.numpy())
        peak = np.take_along_axis(kern, np.abs(kern).argmax(-1)[..., None], -1)[..., 0]
        data["coupling_weight"] = xr.DataArray(
            peak, dims=("target", "source"), coords={"target": units, "source": units}
        )
    ds = xr.Dataset(data)
    for k, v in m.history_.data_vars.items():
        ds[f"history_{k}"] = v  # dims ``l2`` (GLM stage) and ``epoch`` (attention stage)
    summary = {
        "validation_bits_per_spike": float(bps.attrs["population"]),
        "validation_interval": [float(v0), float(t1)],
        "n_epochs": int(m.n_epochs_),
        "n_units": len(units),
        "pathways": list(net.pathways),
    }
    return ds, summary
