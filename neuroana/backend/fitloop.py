"""The one fit loop every estimator uses.

A model supplies ``step(iteration) -> dict`` of scalar metrics (an EM model runs its E-step and
M-step inside it, a gradient model one or more optimiser steps). The loop owns iteration,
convergence on the relative change of a monitored metric, early stopping on a held-out metric,
callbacks, a ``tqdm.auto`` progress bar, the history, and atomic checkpoints with resume.

A client that did not call the estimator's ``fit`` itself (a GUI) observes and cancels every
``fit_loop`` run inside a block through :func:`observe_fits`, a context-local hook: estimators'
signatures stay as they are.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

StepFn = Callable[[int], Mapping[str, float]]
Callback = Callable[[int, Mapping[str, float]], "bool | None"]


@dataclass(frozen=True)
class FitResult:
    """What :func:`fit_loop` returns.

    Attributes
    ----------
    n_iter : int
        Iterations run in total (including those before a resume).
    converged : bool
        True when the monitored metric's relative change fell below ``tol``.
    stop_reason : str
        ``"converged"``, ``"max_iter"``, ``"early_stop"`` or ``"callback"``.
    history : xarray.Dataset
        One variable per metric, dim ``iteration``.
    best_iteration : int or None
        Iteration with the best early-stopping metric (None without early stopping).
    best_state : Any
        A deep copy of ``get_state()`` at ``best_iteration`` (None without early stopping or
        ``get_state``).
    """

    n_iter: int
    converged: bool
    stop_reason: str
    history: xr.Dataset
    best_iteration: int | None = None
    best_state: Any = field(default=None, repr=False)


class FitCancelled(Exception):
    """Raised by :func:`fit_loop` when the ``cancel`` test of :func:`observe_fits` turns true."""


@dataclass(frozen=True)
class FitProgress:
    """One report of :func:`observe_fits`: a ``fit_loop`` run's position.

    Attributes
    ----------
    desc : str
        The run's label (``fit_loop``'s ``desc``).
    run : int
        1 for the first ``fit_loop`` run inside the ``observe_fits`` block, 2 for the next (an
        estimator with restarts runs several).
    iteration : int
        Iterations done in this run (counted across resumes): 0 at the start, ``max_iter`` at most.
    max_iter : int
        The run's upper bound on iterations.
    metrics : mapping
        The latest iteration's metrics (empty at the start).
    monitor : str
        The metric the run's convergence test watches (its loss or log-likelihood).
    """

    desc: str
    run: int
    iteration: int
    max_iter: int
    metrics: Mapping[str, float]
    monitor: str = "loss"

    @property
    def value(self) -> float | None:
        """The monitored metric's latest value (None at the start)."""
        return self.metrics.get(self.monitor)


class _Observation:
    def __init__(self, callback, cancel):
        self.callback, self.cancel, self.runs = callback, cancel, 0


_OBSERVER: contextvars.ContextVar[_Observation | None] = contextvars.ContextVar(
    "neuroana_fit_observer", default=None
)


@contextlib.contextmanager
def observe_fits(
    callback: Callable[[FitProgress], None], cancel: Callable[[], bool] | None = None
) -> Iterator[None]:
    """Report every :func:`fit_loop` run inside the block to ``callback``; stop them on ``cancel``.

    The hook is context-local (:mod:`contextvars`): it sees the fits run by this thread (or task)
    inside the block, not those of other threads, and no estimator's signature carries it.

    Parameters
    ----------
    callback : callable
        ``callback(FitProgress)``: at the start of each run (``iteration`` 0) and after each
        iteration. Called in the fitting thread; keep it quick.
    cancel : callable, optional
        Asked before each iteration; when it returns True, ``fit_loop`` writes its checkpoint (when
        it has one, so ``resume`` continues) and raises :class:`FitCancelled`, which ends the
        estimator's ``fit`` as a whole.

    Examples
    --------
    >>> from neuroana.backend import FitCancelled, fit_loop, observe_fits
    >>> seen = []
    >>> with observe_fits(lambda p: seen.append((p.run, p.iteration, p.max_iter))):
    ...     _ = fit_loop(lambda i: {"loss": 1.0 / (i + 1)}, max_iter=2, verbose=False)
    ...     _ = fit_loop(lambda i: {"loss": 1.0}, max_iter=1, verbose=False)
    >>> seen
    [(1, 0, 2), (1, 1, 2), (1, 2, 2), (2, 0, 1), (2, 1, 1)]
    >>> with observe_fits(lambda p: None, cancel=lambda: True):
    ...     fit_loop(lambda i: {"loss": 1.0}, max_iter=5, verbose=False)
    Traceback (most recent call last):
    ...
    neuroana.backend.fitloop.FitCancelled: fit cancelled before iteration 0 of 5
    """
    token = _OBSERVER.set(_Observation(callback, cancel))
    try:
        yield
    finally:
        _OBSERVER.reset(token)


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """Write ``obj`` with ``torch.save`` to a temporary file beside ``path`` and rename it.

    An interrupted write leaves the old file (or none), never half a file.
    """
    import torch

    from neuroana._atomic import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(obj, fh)
    return path


def _history_dataset(history: list[dict[str, float]]) -> xr.Dataset:
    keys: list[str] = []
    for row in history:
        keys.extend(k for k in row if k not in keys)
    data = {
        k: ("iteration", np.array([row.get(k, np.nan) for row in history], dtype=float))
        for k in keys
    }
    return xr.Dataset(data, coords={"iteration": np.arange(len(history))})


def fit_loop(
    step: StepFn,
    *,
    max_iter: int,
    tol: float = 0.0,
    monitor: str = "loss",
    min_iter: int = 1,
    early_stop: str | None = None,
    patience: int = 10,
    get_state: Callable[[], Any] | None = None,
    set_state: Callable[[Any], None] | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    verbose: bool = True,
    desc: str = "fit",
) -> FitResult:
    """Run ``step`` until convergence, early stop, a callback's stop, or ``max_iter``.

    Parameters
    ----------
    step : callable
        ``step(iteration)`` runs one iteration and returns a mapping of scalar metrics. It must
        include ``monitor`` (and ``early_stop`` when given).
    max_iter : int
        Upper bound on iterations (counted across resumes).
    tol : float
        Converged when ``|m_t - m_{t-1}| <= tol * max(|m_{t-1}|, 1e-12)`` for the ``monitor`` metric,
        after ``min_iter`` iterations. ``0`` disables the test.
    monitor : str
        Metric whose relative change decides convergence (a loss or a log-likelihood alike).
    min_iter : int
        Iterations before convergence may be declared.
    early_stop : str, optional
        A metric to minimise on held-out data (e.g. ``"val_nll"``); the loop stops after ``patience``
        iterations without improvement and reports the best iteration and state.
    patience : int
        See ``early_stop``.
    get_state, set_state : callable, optional
        Snapshot and restore the model's state (any ``torch.save``-able object). Needed for
        checkpoints and for ``best_state``.
    checkpoint : path, optional
        Where to write the checkpoint every ``checkpoint_every`` iterations (atomically) and on
        ``KeyboardInterrupt``.
    resume : bool
        When True and ``checkpoint`` exists, restore it with ``set_state`` and continue from the next
        iteration; the history continues too.
    callbacks : sequence of callable
        ``cb(iteration, metrics)``; returning True stops the fit.
    verbose : bool
        Show a ``tqdm.auto`` progress bar with the latest metrics.
    desc : str
        Progress bar label.

    Returns
    -------
    FitResult

    Raises
    ------
    ValueError
        When a metric is missing from ``step``'s result or is NaN, or the arguments are invalid.

    Examples
    --------
    Minimise ``(x - 3)^2`` by gradient descent:

    >>> from neuroana.backend import fit_loop
    >>> state = {"x": 0.0}
    >>> def step(i):
    ...     state["x"] -= 0.25 * 2 * (state["x"] - 3.0)
    ...     return {"loss": (state["x"] - 3.0) ** 2}
    >>> res = fit_loop(step, max_iter=100, tol=1e-6, verbose=False)
    >>> res.converged, round(state["x"], 3)
    (True, 3.0)
    """
    if max_iter < 0:
        raise ValueError(f"max_iter must be >= 0, got {max_iter}")
    if tol < 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    if (checkpoint is not None or resume) and (get_state is None or set_state is None):
        raise ValueError("checkpoint/resume need both get_state and set_state")
    if early_stop is not None and patience < 1:
        raise ValueError(f"patience must be >= 1, got {patience}")

    history: list[dict[str, float]] = []
    start = 0
    best_value = math.inf
    best_iteration: int | None = None
    best_state: Any = None
    if resume and checkpoint is not None and Path(checkpoint).exists():
        import torch

        saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
        set_state(saved["state"])  # type: ignore[misc]
        history = list(saved["history"])
        start = int(saved["iteration"]) + 1
        best_value = saved.get("best_value", math.inf)
        best_iteration = saved.get("best_iteration")
        best_state = saved.get("best_state")

    def save(iteration: int) -> None:
        if checkpoint is None:
            return
        atomic_save(
            {
                "iteration": iteration,
                "history": history,
                "state": get_state(),  # type: ignore[misc]
                "best_value": best_value,
                "best_iteration": best_iteration,
                "best_state": best_state,
            },
            checkpoint,
        )

    from tqdm.auto import tqdm

    bar = tqdm(total=max_iter, initial=start, desc=desc, disable=not verbose, leave=False)
    observer = _OBSERVER.get()
    if observer is not None:
        observer.runs += 1
        run = observer.runs

        def report(iteration: int, metrics: Mapping[str, float]) -> None:
            observer.callback(FitProgress(desc, run, iteration, max_iter, metrics, monitor))

        report(start, {})
    converged = False
    stop_reason = "max_iter"
    try:
        for it in range(start, max_iter):
            if observer is not None and observer.cancel is not None and observer.cancel():
                raise FitCancelled(f"fit cancelled before iteration {it} of {max_iter}")
            metrics = {k: float(v) for k, v in step(it).items()}
            for key in (monitor, early_stop):
                if key is None:
                    continue
                if key not in metrics:
                    raise ValueError(
                        f"step() returned metrics {sorted(metrics)}; the monitored {key!r} is missing"
                    )
                if not math.isfinite(metrics[key]):
                    raise ValueError(
                        f"{key} became {metrics[key]} at iteration {it}: the fit diverged"
                    )
            prev = history[-1][monitor] if history else None
            history.append(metrics)
            bar.update(1)
            bar.set_postfix({k: f"{v:.4g}" for k, v in list(metrics.items())[:4]}, refresh=False)
            if observer is not None:
                report(it + 1, metrics)

            if early_stop is not None:
                if metrics[early_stop] < best_value:
                    best_value = metrics[early_stop]
                    best_iteration = it
                    if get_state is not None:
                        best_state = copy.deepcopy(get_state())
            if checkpoint is not None and (it + 1) % checkpoint_every == 0:
                save(it)

            if any(cb(it, metrics) for cb in callbacks):
                stop_reason = "callback"
                break
            if (
                early_stop is not None
                and best_iteration is not None
                and it - best_iteration >= patience
            ):
                stop_reason = "early_stop"
                break
            if (
                tol > 0
                and prev is not None
                and len(history) >= min_iter
                and abs(metrics[monitor] - prev) <= tol * max(abs(prev), 1e-12)
            ):
                converged = True
                stop_reason = "converged"
                break
    except (KeyboardInterrupt, FitCancelled):
        # the interrupted iteration is not in the history: resume repeats it
        if history:
            save(len(history) - 1)
        raise
    finally:
        bar.close()
    if checkpoint is not None and history:
        save(len(history) - 1)
    return FitResult(
        n_iter=len(history),
        converged=converged,
        stop_reason=stop_reason,
        history=_history_dataset(history),
        best_iteration=best_iteration,
        best_state=best_state,
    )
