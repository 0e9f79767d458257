"""``neuroana run CONFIG.yaml``: one analysis on the user's files, configured by a YAML file.

A thin client of the analysis registry (:mod:`neuroana.analysis`): it validates the configuration,
reads the inputs with the analysis's pipeline (``read_inputs``), fits its estimator with the
parameters given verbatim, turns it into results with the pipeline (``results``) and writes them
atomically. It names no analysis; nothing here computes anything the pipelines do not.

Configuration
-------------
Top-level keys (any other key is an error):

``analysis`` (required)
    The name of a registered analysis (:func:`neuroana.analysis.names`).
``inputs`` (required)
    One path or a list of paths. Relative paths are resolved against the YAML file's folder. Every
    file must exist; inputs are opened read-only. An analysis may take exactly one
    (``Analysis.n_inputs``).
``data`` (optional mapping)
    How to read the inputs: the keys are the analysis pipeline's ``DATA_KEYS`` (unknown keys are
    an error that lists the valid ones; see each ``neuroana.<analysis>.pipeline.read_inputs``).
``params`` (optional mapping)
    Passed verbatim as keyword arguments to the analysis's estimator. A key the estimator does
    not have is an error listing its valid parameters (``get_params``).
``output`` (required)
    A folder (created when missing; relative to the YAML's folder). The run writes ``results.nc``
    (the estimator's fitted xarray attributes and derived arrays, e.g. the Viterbi states) and
    ``summary.json`` (analysis, inputs, data options, all estimator parameters, fitted scalars,
    scores, files, time). An analysis whose pipeline has ``run`` writes the files it names
    instead of ``results.nc`` (e.g. one ``<sample>.nc`` per segmented input).

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ConfigError", "RunConfig", "RunResult", "fit_analysis", "load_config", "run_config"]

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


# --------------------------------------------------------------------------- validation
def load_config(path: str | os.PathLike, *, check_inputs: bool = True) -> RunConfig:
    """Read and validate a run configuration; nothing is fitted or written.

    Parameters
    ----------
    path : str or os.PathLike
        The YAML file (see the module documentation for its keys).
    check_inputs : bool
        Check that the input files (and those the pipeline's ``input_files`` names) exist; ``False``
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

    from neuroana import analysis as registry

    name = raw["analysis"]
    if not isinstance(name, str) or name not in registry.names():
        raise ConfigError(f"{path}: analysis={name!r}; expected one of {registry.names()}")
    entry = registry.get(name)
    pipeline = entry.pipeline_module()
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
    if entry.n_inputs is not None and len(resolved) != entry.n_inputs:
        raise ConfigError(
            f"{path}: inputs: analysis {name!r} takes exactly {entry.n_inputs} input file(s); "
            f"got {len(resolved)}"
        )

    data = _mapping(raw.get("data"), "data", path)
    spec = pipeline.DATA_KEYS
    bad = sorted(set(data) - set(spec))
    if bad:
        raise ConfigError(
            f"{path}: data: unknown key(s) {bad} for analysis {name!r}; valid: {sorted(spec)}"
        )
    need = [k for k, req in spec.items() if req and data.get(k) is None]
    if need:
        raise ConfigError(f"{path}: data: missing key(s) {need} for analysis {name!r}")
    if hasattr(pipeline, "check_data"):
        try:
            data = pipeline.check_data(data, len(resolved), lambda p: _resolve(base, p))
        except ValueError as err:
            raise ConfigError(f"{path}: {err}") from None
    if check_inputs and hasattr(pipeline, "input_files"):
        for option, p in pipeline.input_files(data):
            if not Path(p).exists():
                raise ConfigError(f"{path}: {option}: file {str(p)!r} not found")

    params = _mapping(raw.get("params"), "params", path)
    if not entry.takes_params(data):
        if params:
            raise ConfigError(
                f"{path}: params: these data options ({sorted(data)}) run no estimator and take "
                f"no estimator parameters; got {sorted(params)}"
            )
    else:
        cls = entry.estimator_class()
        valid = sorted(cls().get_params(deep=False))
        for key in params:
            if key not in valid:
                raise ConfigError(
                    f"{path}: params: unknown parameter {key!r} for {cls.__name__}; valid: {valid}"
                )

    output = raw["output"]
    if not isinstance(output, str):
        raise ConfigError(f"{path}: output={output!r}; expected a folder path")
    return RunConfig(path, name, resolved, data, params, _resolve(base, output))


def _resolve(base: Path, p: str) -> Path:
    q = Path(os.path.expanduser(p))
    return q if q.is_absolute() else base / q


def _mapping(value, key: str, path: Path) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {key} must be a mapping; got {type(value).__name__}")
    return {str(k): v for k, v in value.items()}


def fit_analysis(name: str, inputs: dict[str, Any], params: dict[str, Any] | None = None):
    """Fit analysis ``name``'s estimator on pipeline ``inputs``; returns it, the results Dataset
    and the summary part (``{"fitted": ..., "scores": ...}``).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neuroana.datasets.hmmglm_sim import simulate_hmmglm
    >>> sim = simulate_hmmglm(2, 3, n_trials=2, n_time=100, random_state=0)
    >>> est, ds, info = fit_analysis(
    ...     "hmmglm", {"spikes": sim.spikes}, {"n_states": 2, "max_iter": 2, "n_restarts": 1})
    >>> ds["states"].dims, "train_log_lik_per_bin" in info["scores"]
    (('trial', 'time'), True)
    """
    from neuroana.analysis import get

    entry = get(name)
    est = entry.estimator_class()(**(params or {}))
    est.fit(**inputs)
    ds, info = entry.pipeline_module().results(est, inputs)
    ds.attrs.update(analysis=name, estimator=type(est).__name__)
    return est, ds, info


def _run(cfg: RunConfig, stage: Path) -> tuple[Any, dict[str, Any], list[str]]:
    from neuroana.analysis import get
    from neuroana.io.fitted import netcdf_safe
    from neuroana.io.results import write_netcdf_atomic

    pipeline = get(cfg.analysis).pipeline_module()
    if hasattr(pipeline, "run"):
        return pipeline.run(cfg.inputs, cfg.data, cfg.params, stage)
    inputs = pipeline.read_inputs(cfg.inputs, cfg.data)
    est, ds, info = fit_analysis(cfg.analysis, inputs, cfg.params)
    write_netcdf_atomic(netcdf_safe(ds), stage / "results.nc")
    return est, info, ["results.nc"]


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
    ('state', 'target', 'source')
    """
    from neuroana import __version__
    from neuroana.io.results import to_jsonable, write_json_atomic

    cfg = load_config(path)
    t0 = time.perf_counter()
    cfg.output.mkdir(parents=True, exist_ok=True)
    stage = cfg.output / f".neuroana-run-{uuid.uuid4().hex[:8]}"
    stage.mkdir()
    try:
        est, info, files = _run(cfg, stage)
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
