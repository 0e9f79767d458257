"""Run the same fit over many sessions or a hyper-parameter grid on a dask cluster.

The user passes a ``dask.distributed.Client`` (a ``LocalCluster`` on a laptop, a
``dask_jobqueue.SLURMCluster`` on a cluster, see :func:`slurm_cluster`); dask schedules, retries tasks
whose worker died, and moves data. This module only builds the task list, collects every outcome and
assembles the results into one labelled Dataset with the sweep dims. A task that fails is reported with
its inputs in :attr:`SweepResult.failures`, never dropped silently, and the results of the tasks that
finished are kept.

:func:`sweep_analysis` runs a registered analysis (:mod:`neuroana.analysis`) by name over session
files: each task reads its files with the analysis's pipeline, fits its estimator with the grid
point's parameters and returns the pipeline's results Dataset. It names no analysis.
"""

from __future__ import annotations

import functools
import itertools
import traceback
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["SweepFailure", "SweepResult", "slurm_cluster", "sweep", "sweep_analysis"]


@dataclass(frozen=True)
class SweepFailure:
    """One task that did not produce a result: its inputs and what went wrong."""

    session: Hashable
    params: dict[str, Any]
    error: str
    traceback: str = field(repr=False, default="")


@dataclass(frozen=True)
class SweepResult:
    """What :func:`sweep` returns.

    Attributes
    ----------
    results : xarray.Dataset
        Every finished task's output, with dims ``session`` and one per grid parameter (in grid order)
        in front of the output's own dims; cells of failed tasks are NaN.
    failures : list of SweepFailure
        Each failed task with its session, parameters and error.
    """

    results: xr.Dataset
    failures: list[SweepFailure]

    def raise_failures(self) -> None:
        """Raise a ``RuntimeError`` listing the failed tasks, if any."""
        if self.failures:
            lines = [f"session={f.session!r} params={f.params}: {f.error}" for f in self.failures]
            raise RuntimeError(f"{len(self.failures)} sweep task(s) failed:\n" + "\n".join(lines))


def _grid_points(grid: Mapping[str, Sequence[Any]] | None) -> list[dict[str, Any]]:
    if not grid:
        return [{}]
    for name, values in grid.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
            raise ValueError(f"grid[{name!r}] must be a non-empty list of values, got {values!r}")
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]


_LOST_RESULT_RETRIES = 2


def _failure(session: Hashable, params: dict[str, Any], err: BaseException) -> SweepFailure:
    return SweepFailure(
        session=session,
        params=dict(params),
        error=f"{type(err).__name__}: {err}",
        traceback="".join(traceback.format_exception(err)),
    )


def _run_task(fit: Callable[..., Any], data: Any, params: dict[str, Any]) -> xr.Dataset:
    out = fit(data, **params)
    if isinstance(out, xr.DataArray):
        out = out.to_dataset(name=out.name if out.name is not None else "result")
    if not isinstance(out, xr.Dataset):
        raise TypeError(
            f"the fit function must return an xarray Dataset or DataArray, got {type(out).__name__}"
        )
    return out


def sweep(
    fit: Callable[..., xr.Dataset | xr.DataArray],
    sessions: Mapping[Hashable, Any],
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    client: Any,
) -> SweepResult:
    """Run ``fit(data, **params)`` for every session and every point of ``grid`` on ``client``.

    Parameters
    ----------
    fit : callable
        ``fit(data, **params)`` returning an ``xarray.Dataset`` or ``DataArray``; it must be picklable
        (a module-level function), and so must the session data (or pass file paths and load inside
        ``fit``).
    sessions : mapping
        Session name -> data (or a path).
    grid : mapping, optional
        Parameter name -> list of values; the sweep runs the cartesian product.
    client : dask.distributed.Client
        Where to run. Dask retries a task whose worker died while running it (up to the
        scheduler's ``distributed.scheduler.allowed-failures``); a finished result lost with its
        worker before it was gathered is computed again (twice at most).

    Returns
    -------
    SweepResult
        The assembled results and the failures. A warning is issued when any task failed.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from dask.distributed import Client, LocalCluster
    >>> from neuroana.parallel import sweep
    >>> def fit(x, scale):
    ...     return xr.Dataset({"mean": scale * float(np.mean(x))})
    >>> with LocalCluster(n_workers=1, processes=False) as cluster, Client(cluster) as client:
    ...     out = sweep(fit, {"a": [1, 2], "b": [3, 5]}, {"scale": [1, 10]}, client=client)
    >>> out.results["mean"].sel(session="b", scale=10).item()
    40.0
    """
    from concurrent.futures import CancelledError

    from dask.distributed import as_completed
    from distributed.client import FutureCancelledError

    if not sessions:
        raise ValueError("sessions is empty: pass a mapping of session name -> data")
    points = _grid_points(grid)
    reserved = {"session"} & set(points[0])
    if reserved:
        raise ValueError("'session' cannot be a grid parameter name")

    futures = {}
    for name, data in sessions.items():
        # replicated on every worker, so a worker that dies does not take a session's data with it
        data_future = (
            client.scatter(data, broadcast=True) if not isinstance(data, (str, bytes)) else data
        )
        for params in points:
            fut = client.submit(_run_task, fit, data_future, params, pure=False)
            futures[fut] = (name, data_future, params, 0)

    finished: list[xr.Dataset] = []
    failures: list[SweepFailure] = []
    n_tasks = len(futures)
    pending = as_completed(list(futures))
    for fut in pending:
        name, data_future, params, attempt = futures.pop(fut)
        try:
            out = fut.result()
        except (CancelledError, FutureCancelledError) as err:
            # a finished result can be lost with the worker that held it: run the task again
            if attempt < _LOST_RESULT_RETRIES:
                again = client.submit(_run_task, fit, data_future, params, pure=False)
                futures[again] = (name, data_future, params, attempt + 1)
                pending.add(again)
                continue
            failures.append(_failure(name, params, err))
            continue
        except Exception as err:  # every failure is reported with its inputs
            failures.append(_failure(name, params, err))
            continue
        labels = {"session": [name], **{k: [v] for k, v in params.items()}}
        finished.append(out.expand_dims(labels))

    order = ["session", *points[0].keys()]
    if finished:
        results = xr.merge(
            finished, join="outer", compat="no_conflicts", combine_attrs="drop_conflicts"
        )
        results = results.transpose(*order, ...)
        results = results.reindex(
            session=list(sessions), **({k: list(v) for k, v in grid.items()} if grid else {})
        )
    else:
        results = xr.Dataset()
    if failures:
        warnings.warn(
            f"{len(failures)} of {n_tasks} sweep tasks failed; see SweepResult.failures",
            RuntimeWarning,
            stacklevel=2,
        )
    return SweepResult(results=results, failures=failures)


def sweep_analysis(
    analysis: str,
    sessions: Mapping[Hashable, Any],
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    client: Any,
    data: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
) -> SweepResult:
    """Fit a registered analysis on every session's files for every point of ``grid``.

    Parameters
    ----------
    analysis : str
        A registered analysis name (:func:`neuroana.analysis.names`).
    sessions : mapping
        Session name -> one input path or a list of paths (as ``inputs`` of ``neuroana run``).
    grid : mapping, optional
        Estimator parameter -> list of values; the sweep runs the cartesian product.
    client : dask.distributed.Client
        Where to run (see :func:`sweep`). The analysis's modules must be importable on the
        workers.
    data : mapping, optional
        Reading options (the pipeline's ``DATA_KEYS``, as ``data:`` of ``neuroana run``).
    params : mapping, optional
        Estimator parameters shared by every task (a grid value overrides them).

    Returns
    -------
    SweepResult
        The pipeline's results Datasets with the sweep dims, and the failures. Dims without a
        coordinate get ``0..n-1``, so results of different sizes align (padded with NaN), and
        non-index coordinates become variables.

    Raises
    ------
    KeyError
        ``analysis`` is not registered.
    ValueError
        A ``data`` key the pipeline does not take, or a grid or ``params`` key the estimator does
        not have (both checked before anything is submitted).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from dask.distributed import Client, LocalCluster
    >>> from neuroana.datasets import make_session
    >>> from neuroana.io import write_session_nwb
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> files = {k: write_session_nwb(make_session(random_state=k, duration=20.0, n_units=3),
    ...                               d / f"s{k}.nwb") for k in (0, 1)}
    >>> with LocalCluster(n_workers=1, processes=False) as cluster, Client(cluster) as client:
    ...     out = sweep_analysis("hmmglm", files, {"n_states": [1, 2]}, client=client,
    ...                          data={"bin_size": 0.1, "trial_length": 5},
    ...                          params={"max_iter": 2, "n_restarts": 1, "device": "cpu"})
    >>> out.results["transition"].dims[:2], out.failures
    (('session', 'n_states'), [])
    """
    from neuroana.analysis import get

    entry = get(analysis)
    pipeline = entry.pipeline_module()
    data = dict(data or {})
    bad = sorted(set(data) - set(pipeline.DATA_KEYS))
    if bad:
        raise ValueError(
            f"data: unknown key(s) {bad} for analysis {analysis!r}; valid: {sorted(pipeline.DATA_KEYS)}"
        )
    valid = set(entry.estimator_class()().get_params(deep=False))
    unknown = sorted((set(params or {}) | set(grid or {})) - valid)
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {unknown} for {entry.estimator.rpartition(':')[2]}; "
            f"valid: {sorted(valid)}"
        )
    fit = functools.partial(_fit_analysis, entry, data, dict(params or {}))
    return sweep(fit, sessions, grid, client=client)


def _fit_analysis(entry, data: dict, base: dict, paths, **grid_params) -> xr.Dataset:
    from pathlib import Path

    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    pipeline = entry.pipeline_module()
    if hasattr(pipeline, "check_data"):
        data = pipeline.check_data(data, len(paths), Path)
    inputs = pipeline.read_inputs([Path(p) for p in paths], data)
    est = entry.estimator_class()(**{**base, **grid_params})
    est.fit(**inputs)
    ds, _ = pipeline.results(est, inputs)
    # dims without a coordinate get 0..n-1, so that results of different sizes (e.g. n_states)
    # align across tasks, padded with NaN; other coordinates become variables (they differ
    # between sessions, e.g. the file each trial came from, and so take the sweep dims)
    ds = ds.reset_coords()
    return ds.assign_coords({d: np.arange(n) for d, n in ds.sizes.items() if d not in ds.coords})


def slurm_cluster(
    *,
    cores: int = 8,
    memory: str = "32GB",
    walltime: str = "02:00:00",
    queue: str | None = None,
    account: str | None = None,
    gpus: int = 0,
    job_extra_directives: Sequence[str] = (),
    **kwargs: Any,
):
    """A ``dask_jobqueue.SLURMCluster`` with the settings a neuroana sweep needs.

    Each Slurm job runs one dask worker with ``cores`` threads. ``gpus > 0`` adds
    ``--gres=gpu:N``. Scale with ``cluster.scale(jobs=N)`` or ``cluster.adapt(maximum_jobs=N)`` and
    pass ``Client(cluster)`` to :func:`sweep`. Needs the ``distributed`` extra.

    Examples
    --------
    >>> from neuroana.parallel import slurm_cluster
    >>> cluster = slurm_cluster(cores=4, memory="16GB", queue="gpu", gpus=1)  # doctest: +SKIP
    >>> print(cluster.job_script())  # doctest: +SKIP
    """
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "slurm_cluster needs dask-jobqueue: pip install 'neuroana[distributed]'"
        ) from err
    directives = list(job_extra_directives)
    if gpus:
        directives.append(f"--gres=gpu:{gpus}")
    return SLURMCluster(
        cores=cores,
        processes=1,
        memory=memory,
        walltime=walltime,
        queue=queue,
        account=account,
        job_extra_directives=directives,
        **kwargs,
    )
