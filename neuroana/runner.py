"""``neuroana run CONFIG.yaml``: one analysis on the user's files, configured by a YAML file.

A thin client of the public API: it validates the configuration, reads the inputs with
:mod:`neuroana.io`, fits the analysis's estimator with the parameters given verbatim, and writes the
fitted results atomically. Nothing here computes anything the estimators do not.

Configuration
-------------
Top-level keys (any other key is an error):

``analysis`` (required)
    One of ``connectome``, ``hmmglm``, ``adaptation``, ``pretrain``, ``segmentation``.
``inputs`` (required)
    One path or a list of paths. Relative paths are resolved against the YAML file's folder. Every
    file must exist; inputs are opened read-only.
``data`` (optional mapping)
    How to read the inputs; the keys depend on the analysis (unknown keys are an error that lists
    the valid ones):

    - ``hmmglm``: ``bin_size`` (s, required); ``interval: [epochs, wake]`` (an interval-table row)
      or ``start``/``stop`` (s); ``trial_length`` (s: cut the binned spikes into trials of that
      length, the remainder dropped; default one trial per file); ``units`` (unit ids to keep).
      Files must hold the same units; their trials are stacked.
    - ``connectome``: ``name`` (the RoiResponseSeries; default the only one); ``drop_constant``
      (drop ROIs whose trace never changes, default ``false``). Each file is one animal.
    - ``adaptation``: ``adaptor_probability`` (per-session list for a ``.mat`` file). One input: the
      Benucci ``.mat`` file or a netCDF file holding a Benucci-layout DataArray.
    - ``pretrain``: ``start``/``stop`` (s) or ``interval``; ``units``. One NWB file with units.
    - ``segmentation``: ``pred`` (predicted FISBe zarr samples, one per input: the inputs are then
      ground truth and the official metrics are computed, no estimator and no ``params``);
      ``split_file``, ``labeling``. Without ``pred`` the inputs are segmented with
      :class:`~neuroana.segmentation.ColourClustering` and scored against their ``gt`` when present.
``params`` (optional mapping)
    Passed verbatim as keyword arguments to the estimator (``HMMGLM``, ``DynamicConnectome``,
    ``GainAdaptationModel``, ``SpikeFormer``, ``ColourClustering``). A key the estimator does not
    have is an error listing its valid parameters (``get_params``).
``output`` (required)
    A folder (created when missing; relative to the YAML's folder). The run writes ``results.nc``
    (the estimator's fitted xarray attributes and derived arrays, e.g. the Viterbi states) and
    ``summary.json`` (analysis, inputs, data options, all estimator parameters, fitted scalars,
    scores, files, time). Segmentation by colour clustering writes one ``<sample>.nc`` per input.

Everything is first written, with the atomic writers of :mod:`neuroana.io.results`, to a hidden
staging folder inside ``output`` and moved into place only when every file is complete; a failing
run leaves no new file behind.

Example
-------
.. code-block:: yaml

    analysis: hmmglm
    inputs: pynapple_neurosuite_A2929-200711.nwb
    data: {bin_size: 0.25, interval: [epochs, wake], trial_length: 60}
    params: {n_states: 2, prior: onehot, n_restarts: 2, random_state: 0, device: cpu}
    output: results/a2929_hmmglm
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["ANALYSES", "ConfigError", "RunConfig", "RunResult", "load_config", "run_config"]

ANALYSES = ("connectome", "hmmglm", "adaptation", "pretrain", "segmentation")
_TOP_KEYS = ("analysis", "inputs", "data", "params", "output")
_REQUIRED = ("analysis", "inputs", "output")


class ConfigError(ValueError):
    """The run configuration is malformed: the message names the file, the key and what is expected."""


@dataclass(frozen=True)
class RunConfig:
    """A validated configuration (paths resolved)."""

    path: Path
    analysis: str
    inputs: tuple[Path, ...]
    data: dict[str, Any]
    params: dict[str, Any]
    output: Path


@dataclass(frozen=True)
class RunResult:
    """What a run wrote: the output folder, the files in it and the summary (as in ``summary.json``)."""

    output: Path
    files: tuple[Path, ...]
    summary: dict[str, Any] = field(repr=False)


# --------------------------------------------------------------------------- per-analysis specs
# data keys -> whether required
_DATA_KEYS: dict[str, dict[str, bool]] = {
    "hmmglm": {
        "bin_size": True,
        "interval": False,
        "start": False,
        "stop": False,
        "trial_length": False,
        "units": False,
    },
    "connectome": {"name": False, "drop_constant": False},
    "adaptation": {"adaptor_probability": False},
    "pretrain": {"interval": False, "start": False, "stop": False, "units": False},
    "segmentation": {"pred": False, "split_file": False, "labeling": False},
}


def _estimator_class(analysis: str, data: Mapping[str, Any]) -> type | None:
    if analysis == "hmmglm":
        from neuroana.hmmglm import HMMGLM

        return HMMGLM
    if analysis == "connectome":
        from neuroana.connectome import DynamicConnectome

        return DynamicConnectome
    if analysis == "adaptation":
        from neuroana.adaptation.model import GainAdaptationModel

        return GainAdaptationModel
    if analysis == "pretrain":
        from neuroana.pretrain import SpikeRateModel

        return SpikeRateModel
    if data.get("pred") is not None:  # segmentation: evaluation of given predictions
        return None
    from neuroana.segmentation import ColourClustering

    return ColourClustering


# --------------------------------------------------------------------------- validation
def load_config(path: str | os.PathLike, *, check_inputs: bool = True) -> RunConfig:
    """Read and validate a run configuration; nothing is fitted or written.

    Parameters
    ----------
    path : str or os.PathLike
        The YAML file (see the module documentation for its keys).
    check_inputs : bool
        Check that the input files (and ``data.pred``, ``data.split_file``) exist; ``False``
        validates the configuration alone, e.g. an example whose data are not downloaded yet.

    Returns
    -------
    RunConfig
        With ``inputs`` and ``output`` resolved against the YAML file's folder.

    Raises
    ------
    ConfigError
        A missing or unknown key, an unknown analysis, a missing input file, a parameter the
        estimator does not have, or a file that is not YAML; the message names the key or file.
    FileNotFoundError
        ``path`` does not exist.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "s.nwb").write_bytes(b"")
    >>> _ = (d / "run.yaml").write_text(
    ...     "analysis: hmmglm\\ninputs: s.nwb\\ndata: {bin_size: 0.1}\\n"
    ...     "params: {n_states: 3}\\noutput: out\\n"
    ... )
    >>> cfg = load_config(d / "run.yaml")
    >>> cfg.analysis, cfg.params, cfg.output == d / "out"
    ('hmmglm', {'n_states': 3}, True)
    >>> _ = (d / "bad.yaml").write_text(
    ...     "analysis: hmmglm\\ninputs: s.nwb\\ndata: {bin_size: 0.1}\\n"
    ...     "params: {n_state: 3}\\noutput: out\\n"
    ... )
    >>> load_config(d / "bad.yaml")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    neuroana.runner.ConfigError: ...: params: unknown parameter 'n_state' for HMMGLM; valid: ...
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"run configuration {path} not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: expected a mapping with keys {list(_REQUIRED)} at the top level; "
            f"got {type(raw).__name__}"
        )
    unknown = sorted(set(map(str, raw)) - set(_TOP_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {unknown}; valid: {list(_TOP_KEYS)}")
    missing = [k for k in _REQUIRED if raw.get(k) in (None, "", [])]
    if missing:
        raise ConfigError(f"{path}: missing required key(s) {missing}")

    analysis = raw["analysis"]
    if analysis not in ANALYSES:
        raise ConfigError(f"{path}: analysis={analysis!r}; expected one of {list(ANALYSES)}")
    base = path.resolve().parent

    inputs = raw["inputs"]
    if isinstance(inputs, str | os.PathLike):
        inputs = [inputs]
    if not isinstance(inputs, list) or not all(isinstance(p, str) for p in inputs):
        raise ConfigError(f"{path}: inputs={inputs!r}; expected a path or a list of paths")
    resolved = tuple(_resolve(base, p) for p in inputs)
    for given, p in zip(inputs, resolved, strict=True):
        if check_inputs and not p.exists():
            raise ConfigError(f"{path}: inputs: file {given!r} not found (looked for {p})")
    if analysis in ("adaptation", "pretrain") and len(resolved) != 1:
        raise ConfigError(
            f"{path}: inputs: analysis {analysis!r} takes exactly one input file; got {len(resolved)}"
        )

    data = _mapping(raw.get("data"), "data", path)
    spec = _DATA_KEYS[analysis]
    bad = sorted(set(data) - set(spec))
    if bad:
        raise ConfigError(
            f"{path}: data: unknown key(s) {bad} for analysis {analysis!r}; valid: {sorted(spec)}"
        )
    need = [k for k, req in spec.items() if req and data.get(k) is None]
    if need:
        raise ConfigError(f"{path}: data: missing key(s) {need} for analysis {analysis!r}")
    data = _check_data(analysis, data, base, len(resolved), path, check_inputs)

    params = _mapping(raw.get("params"), "params", path)
    cls = _estimator_class(analysis, data)
    if cls is None:
        if params:
            raise ConfigError(
                f"{path}: params: evaluating given predictions (data.pred) takes no estimator "
                f"parameters; got {sorted(params)}"
            )
    else:
        valid = sorted(cls().get_params(deep=False))
        for key in params:
            if key not in valid:
                raise ConfigError(
                    f"{path}: params: unknown parameter {key!r} for {cls.__name__}; valid: {valid}"
                )

    output = raw["output"]
    if not isinstance(output, str):
        raise ConfigError(f"{path}: output={output!r}; expected a folder path")
    return RunConfig(path, analysis, resolved, data, params, _resolve(base, output))


def _resolve(base: Path, p: str) -> Path:
    q = Path(os.path.expanduser(p))
    return q if q.is_absolute() else base / q


def _mapping(value, key: str, path: Path) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {key} must be a mapping; got {type(value).__name__}")
    return {str(k): v for k, v in value.items()}


def _check_data(
    analysis: str, data: dict, base: Path, n_inputs: int, path: Path, check_inputs: bool
) -> dict:
    data = dict(data)

    def positive(key):
        v = data.get(key)
        if v is None:
            return
        if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
            raise ConfigError(f"{path}: data.{key}={v!r}; expected a positive number of seconds")

    for key in ("bin_size", "trial_length"):
        positive(key)
    if data.get("interval") is not None:
        iv = data["interval"]
        if not (isinstance(iv, list) and len(iv) == 2 and isinstance(iv[0], str)):
            raise ConfigError(
                f"{path}: data.interval={iv!r}; expected [table, tag or row], e.g. [epochs, wake]"
            )
        if data.get("start") is not None or data.get("stop") is not None:
            raise ConfigError(f"{path}: data: give either interval or start/stop, not both")
        data["interval"] = (iv[0], iv[1])
    if data.get("units") is not None and not isinstance(data["units"], list):
        raise ConfigError(f"{path}: data.units={data['units']!r}; expected a list of unit ids")
    if analysis == "segmentation":
        pred = data.get("pred")
        if pred is not None:
            pred = [pred] if isinstance(pred, str) else pred
            if not isinstance(pred, list) or len(pred) != n_inputs:
                raise ConfigError(
                    f"{path}: data.pred: expected one prediction per input ({n_inputs}); got {pred!r}"
                )
            data["pred"] = [_resolve(base, p) for p in pred]
            for given, p in zip(pred, data["pred"], strict=True):
                if check_inputs and not p.exists():
                    raise ConfigError(
                        f"{path}: data.pred: file {given!r} not found (looked for {p})"
                    )
        if data.get("split_file") is not None:
            data["split_file"] = _resolve(base, data["split_file"])
            if check_inputs and not data["split_file"].exists():
                raise ConfigError(f"{path}: data.split_file {data['split_file']} not found")
    return data


# --------------------------------------------------------------------------- readers
def _read_hmmglm(cfg: RunConfig) -> xr.DataArray:
    from neuroana.io import read_spike_counts

    d = cfg.data
    trials, sources, starts, units = [], [], [], None
    for p in cfg.inputs:
        counts = read_spike_counts(
            p, d["bin_size"], start=d.get("start"), stop=d.get("stop"), interval=d.get("interval")
        )
        counts = _select_units(counts, d.get("units"), p)
        if units is None:
            units = counts["unit"].values
        elif not np.array_equal(units, counts["unit"].values):
            raise ConfigError(
                f"{cfg.path}: inputs: {p.name} has units {counts['unit'].values.tolist()}, the first "
                f"file has {units.tolist()}; select common ones with data.units"
            )
        n = counts.sizes["time"]
        tb = n
        if d.get("trial_length") is not None:
            tb = int(round(d["trial_length"] / d["bin_size"]))
            if tb < 1 or tb > n:
                raise ConfigError(
                    f"{cfg.path}: data.trial_length={d['trial_length']} s gives {tb} bins; "
                    f"{p.name} has {n} bins of {d['bin_size']} s in the chosen range"
                )
        for i in range(n // tb):
            seg = counts.isel(time=slice(i * tb, (i + 1) * tb))
            trials.append(seg.values)
            sources.append(p.name)
            starts.append(float(seg["time"].values[0]) - d["bin_size"] / 2)
    return xr.DataArray(
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


def _select_units(da: xr.DataArray, units, p: Path) -> xr.DataArray:
    if units is None:
        return da
    have = set(da["unit"].values.tolist())
    miss = [u for u in units if u not in have]
    if miss:
        raise ConfigError(f"data.units: unit id(s) {miss} not in {p.name} (has {sorted(have)})")
    return da.sel(unit=list(units))


def _read_connectome(cfg: RunConfig):
    from neuroana.io import read_roi_traces

    animals = {}
    for p in cfg.inputs:
        tr = read_roi_traces(p, cfg.data.get("name"))
        if cfg.data.get("drop_constant"):
            std = tr.std("time").values
            keep = std > 1e-12 * max(1.0, float(np.abs(tr).max()))
            tr = tr.isel(roi=np.flatnonzero(keep))
        key = p.stem if p.stem not in animals else str(p)
        animals[key] = tr
    return next(iter(animals.values())) if len(animals) == 1 else animals


def _read_adaptation(cfg: RunConfig) -> xr.DataArray:
    p = cfg.inputs[0]
    if p.suffix == ".mat":
        from neuroana.io.benucci import read_benucci

        ap = cfg.data.get("adaptor_probability")
        return read_benucci(p, adaptor_probability=None if ap is None else tuple(ap))
    with xr.open_dataarray(p) as da:
        return da.load()


def _read_pretrain(cfg: RunConfig):
    from neuroana.pretrain.pipeline import PretrainInputError, read_inputs

    try:
        return read_inputs(cfg.inputs, cfg.data)
    except PretrainInputError as e:
        raise ConfigError(f"{cfg.path}: {e}") from e


_READERS: dict[str, Callable[[RunConfig], Any]] = {
    "hmmglm": _read_hmmglm,
    "connectome": _read_connectome,
    "adaptation": _read_adaptation,
    "pretrain": _read_pretrain,
}


# --------------------------------------------------------------------------- results
def _netcdf_attr(v):
    if isinstance(v, bool | np.bool_):
        return int(v)
    if isinstance(v, str | int | float | np.number):
        return v
    if isinstance(v, list | tuple | np.ndarray):
        a = np.asarray(v)
        if a.dtype.kind in "iuf" and a.ndim == 1:
            return a
    import json

    from neuroana.io.results import to_jsonable

    return json.dumps(to_jsonable(v), default=str)


def _clean_attrs(ds: xr.Dataset) -> xr.Dataset:
    """Attributes netCDF can store (bools as ints, the rest as JSON text); ``None`` dropped."""
    ds = ds.copy()
    for obj in [ds, *ds.variables.values()]:
        obj.attrs = {k: _netcdf_attr(v) for k, v in obj.attrs.items() if v is not None}
    return ds


def fitted_dataset(estimator) -> tuple[xr.Dataset, dict[str, Any]]:
    """The estimator's fitted xarray attributes as one Dataset, and its fitted scalars.

    A fitted DataArray ``weights_`` becomes the variable ``weights``; a fitted Dataset ``result_``
    contributes its variables (those of ``history_`` prefixed ``history_``). An array whose dims
    clash with earlier ones (same name, other length or coordinates) gets its dims prefixed with
    its attribute name.

    Examples
    --------
    >>> from neuroana.hmmglm import HMMGLM
    >>> m = HMMGLM.from_params([[[0.5]], [[-0.5]]], [0.0], [[0.9, 0.1], [0.1, 0.9]])
    >>> ds, scalars = fitted_dataset(m)
    >>> sorted(ds.data_vars)[:3], ds["weights"].dims
    (['adjacency', 'bias', 'coupling'], ('state', 'post', 'pre'))
    """
    ds = xr.Dataset()
    scalars: dict[str, Any] = {}
    for attr in sorted(vars(estimator)):
        if not attr.endswith("_") or attr.startswith("_"):
            continue
        value = getattr(estimator, attr)
        name = attr[:-1]
        if isinstance(value, bool | int | float | str | np.number | np.bool_):
            scalars[name] = value.item() if isinstance(value, np.generic) else value
            continue
        if isinstance(value, xr.DataArray):
            parts = xr.Dataset({name: value.rename(None)})
        elif isinstance(value, xr.Dataset):
            parts = value
            if name == "history":
                parts = value.rename({v: f"history_{v}" for v in value.data_vars})
        else:
            continue
        ds = _merge(ds, parts, name)
    return ds, scalars


def _merge(ds: xr.Dataset, part: xr.Dataset, name: str) -> xr.Dataset:
    part = part.drop_vars([v for v in part.data_vars if v in ds.data_vars])
    try:
        return xr.merge([ds, part], compat="no_conflicts", join="exact", combine_attrs="drop")
    except (ValueError, xr.MergeError):
        renamed = part.rename({d: f"{name}_{d}" for d in part.dims})
        return xr.merge([ds, renamed], compat="no_conflicts", join="exact", combine_attrs="drop")


def _fit(cfg: RunConfig, X) -> tuple[Any, xr.Dataset, dict[str, Any]]:
    """Fit the estimator; returns it, the results Dataset and the scores for the summary."""
    cls = _estimator_class(cfg.analysis, cfg.data)
    est = cls(**cfg.params)
    scores: dict[str, Any] = {}
    extra: dict[str, xr.DataArray] = {}
    if cfg.analysis == "hmmglm":
        est.fit(X)
        extra["states"] = est.predict_states(X).assign_coords(
            {c: X[c] for c in ("trial_source", "trial_start")}
        )
        scores["train_log_lik_per_bin"] = float(est.score(X))
        scores["n_trials"], scores["n_bins"], scores["n_units"] = (
            X.sizes["trial"],
            X.sizes["time"],
            X.sizes["unit"],
        )
    elif cfg.analysis == "connectome":
        est.fit(X)
        scores["n_components"] = int(est.ntf_.n_components)
        scores["reconstruction_error"] = float(est.ntf_.reconstruction_error_)
        scores["n_communities"] = np.asarray(est.result_["n_communities"]).tolist()
    elif cfg.analysis == "adaptation":
        from neuroana.adaptation.model import r2_scores

        est.fit(X)
        extra["prediction"] = est.predict(X)
        extra["response"] = X.rename(None)
        scores.update(r2_scores(extra["prediction"], X))
    elif cfg.analysis == "pretrain":
        from neuroana.pretrain.pipeline import results

        est.fit(**X)
        ds, summary = results(est, X)
        return est, ds, {"fitted": {}, "scores": summary}
    ds, scalars = fitted_dataset(est)
    for name, da in extra.items():
        ds = _merge(ds, xr.Dataset({name: da}), name)
    return est, ds, {"fitted": scalars, "scores": scores}


def _run_segmentation(cfg: RunConfig, stage: Path) -> tuple[Any, dict[str, Any], list[str]]:
    from neuroana.io import read_fisbe
    from neuroana.io.results import write_netcdf_atomic
    from neuroana.segmentation import aggregate, evaluate_files, evaluate_instances, key_metrics

    d = cfg.data
    if d.get("pred") is not None:
        per = {}
        for gt, pred in zip(cfg.inputs, d["pred"], strict=True):
            res = evaluate_files(
                gt, pred, split_file=d.get("split_file"), labeling=d.get("labeling")
            )
            per[gt.stem] = res
        keys = [k for k, v in next(iter(per.values()))["summary"].items() if _is_number(v)]
        ds = xr.Dataset(
            {k: ("sample", [float(r["summary"][k]) for r in per.values()]) for k in keys},
            coords={"sample": list(per)},
        )
        write_netcdf_atomic(ds, stage / "results.nc")
        return None, {"scores": {"per_sample": per}}, ["results.nc"]
    cls = _estimator_class("segmentation", d)
    est = cls(**cfg.params)
    files, per, results = [], {}, []
    for p in cfg.inputs:
        sample = read_fisbe(p, split_file=d.get("split_file"))
        if "raw" not in sample:
            raise ConfigError(f"{cfg.path}: inputs: {p.name} has no volumes/raw to segment")
        est.fit(sample["raw"].values)
        inst = est.instances_
        inst = inst.assign_coords({c: sample[c].values for c in ("z", "y", "x")})
        out = xr.Dataset({"instances": inst})
        if "gt" in sample:
            res = evaluate_instances(sample["gt"].values, inst.values)
            results.append(res)
            per[p.stem] = key_metrics(res)
        write_netcdf_atomic(_clean_attrs(out), stage / f"{p.stem}.nc")
        files.append(f"{p.stem}.nc")
    scores: dict[str, Any] = {"per_sample": per}
    if results:
        scores["combined"] = aggregate(results)["summary"]["combined"]
    return est, {"scores": scores}, files


def _is_number(v) -> bool:
    return isinstance(v, int | float | np.number) and not isinstance(v, bool)


def run_config(path: str | os.PathLike) -> RunResult:
    """Run the analysis a YAML configuration describes and write its results atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The configuration (keys ``analysis``, ``inputs``, ``data``, ``params``, ``output``; see the
        module documentation).

    Returns
    -------
    RunResult
        The output folder, the files written there (``results.nc`` or one ``<sample>.nc`` per
        segmented input, and ``summary.json``), and the summary.

    Raises
    ------
    ConfigError
        The configuration is invalid (see :func:`load_config`).

    Examples
    --------
    >>> import pathlib, tempfile, xarray as xr
    >>> from neuroana.datasets import make_session
    >>> from neuroana.io import write_session_nwb
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = write_session_nwb(make_session(random_state=0, duration=20.0, n_units=3), d / "s.nwb")
    >>> _ = (d / "run.yaml").write_text(
    ...     "analysis: hmmglm\\ninputs: s.nwb\\ndata: {bin_size: 0.1, trial_length: 5}\\n"
    ...     "params: {n_states: 2, n_restarts: 1, max_iter: 3, device: cpu, random_state: 0}\\n"
    ...     "output: out\\n"
    ... )
    >>> res = run_config(d / "run.yaml")
    >>> sorted(p.name for p in res.files)
    ['results.nc', 'summary.json']
    >>> xr.open_dataset(res.output / "results.nc")["weights"].dims
    ('state', 'post', 'pre')
    """
    from neuroana import __version__
    from neuroana.io.results import to_jsonable, write_json_atomic, write_netcdf_atomic

    cfg = load_config(path)
    t0 = time.perf_counter()
    cfg.output.mkdir(parents=True, exist_ok=True)
    stage = cfg.output / f".neuroana-run-{uuid.uuid4().hex[:8]}"
    stage.mkdir()
    try:
        if cfg.analysis == "segmentation":
            est, info, files = _run_segmentation(cfg, stage)
        else:
            X = _READERS[cfg.analysis](cfg)
            est, ds, info = _fit(cfg, X)
            ds.attrs.update(analysis=cfg.analysis, estimator=type(est).__name__)
            write_netcdf_atomic(_clean_attrs(ds), stage / "results.nc")
            files = ["results.nc"]
        summary = {
            "analysis": cfg.analysis,
            "config": str(cfg.path.resolve()),
            "inputs": [str(p) for p in cfg.inputs],
            "data": cfg.data,
            "estimator": None if est is None else type(est).__name__,
            "params": {} if est is None else est.get_params(deep=False),
            **info,
            "files": [*files, "summary.json"],
            "elapsed_s": time.perf_counter() - t0,
            "neuroana_version": __version__,
        }
        summary = to_jsonable(_json_safe(summary))
        write_json_atomic(summary, stage / "summary.json")
        for name in summary["files"]:  # every file is complete: move them into place
            os.replace(stage / name, cfg.output / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return RunResult(cfg.output, tuple(cfg.output / f for f in summary["files"]), summary)


def _json_safe(obj):
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if obj is None or isinstance(obj, bool | int | float | str | np.generic | np.ndarray | Path):
        return obj
    return repr(obj)
