"""Non-negative tensor factorisation (CP / PARAFAC with non-negative factors) by batched torch HALS.

The functional core works on torch tensors of any order; the kernels (dimension tree with two
passes over the data per iteration, no Khatri-Rao product of the largest mode, loss from Grams,
exact weighted / masked normal equations, accelerated HALS, extrapolation with restarts, batched
restarts) are described in :mod:`neuroana.connectome._hals`.

* **Initialisation** uniform random, or NNDSVD-style from a randomised truncated SVD of each
  unfolding (``torch.svd_lowrank``; never a full SVD); both are rescaled to the least-squares scale.
* **Convergence** when every restart's relative loss change is below ``tol`` (checked through
  :func:`neuroana.backend.fit_loop`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
import xarray as xr

from neuroana.backend import fit_loop, make_generators, resolve_device, resolve_dtype
from neuroana.backend.threads import fit_threads, limit_threads
from neuroana.connectome._hals import _EPS, Problem, State, iterate, rebalance
from neuroana.errors import ConnectomeInputError


class NTFFit(NamedTuple):
    """Result of :func:`ntf` (numpy arrays on the CPU).

    Attributes
    ----------
    factors : list of ndarray
        Best restart, one ``(I_n, R)`` array per mode, unit-norm columns, components sorted by weight.
    weights : ndarray
        ``(R,)`` component weights (product of the column norms).
    rel_error : float
        ``sqrt(sum W (X - Xhat)^2 / sum W X^2)`` of the best restart.
    restart_rel_errors : ndarray
        ``(B,)`` relative error of every restart.
    restart_factors : list of ndarray
        ``(B, I_n, R)`` per mode, every restart (unnormalised, as fitted).
    best_restart : int
        Index of the best restart.
    n_iter : int
        Outer iterations run.
    converged : bool
        Whether every restart met the relative loss-change tolerance.
    history : xarray.Dataset
        Per-iteration metrics (``loss``, ``rel_error``, ``max_rel_change``), dim ``iteration``.
    """

    factors: list
    weights: np.ndarray
    rel_error: float
    restart_rel_errors: np.ndarray
    restart_factors: list
    best_restart: int
    n_iter: int
    converged: bool
    history: xr.Dataset


# --------------------------------------------------------------------------------------------
# tensor-level core (kernels in neuroana.connectome._hals)
# --------------------------------------------------------------------------------------------


def _scale_to_data(prob: Problem, factors: list[torch.Tensor]) -> None:
    """Multiply the model by the least-squares scalar ``<X, Xhat> / ||Xhat||^2`` (per restart)."""
    inner, model = prob.inner_and_norm(factors)
    lam = (inner / model.clamp_min(1e-300)).clamp_min(1e-12)
    per_mode = lam ** (1.0 / prob.order)
    for f in factors:
        f.mul_(per_mode.to(f.dtype).view(-1, 1, 1))


def _random_init(
    shape: Sequence[int], rank: int, n_restarts: int, gen: torch.Generator, device, dtype
) -> list[torch.Tensor]:
    return [
        torch.rand((n_restarts, s, rank), generator=gen, device=device, dtype=dtype) for s in shape
    ]


def _randomized_svd(a: torch.Tensor, q: int, gen: torch.Generator, n_iter: int = 3):
    """Rank-``q`` truncated SVD of ``a`` by a randomised range finder drawing from ``gen``."""
    g = torch.randn((a.shape[1], q), generator=gen, device=a.device, dtype=a.dtype)
    basis = torch.linalg.qr(a @ g).Q
    for _ in range(n_iter):
        basis = torch.linalg.qr(a @ torch.linalg.qr(a.T @ basis).Q).Q
    ub, s, vh = torch.linalg.svd(basis.T @ a, full_matrices=False)
    return basis @ ub, s, vh.T


def _nndsvd_init(
    x: torch.Tensor,
    w: torch.Tensor | None,
    rank: int,
    n_restarts: int,
    gen: torch.Generator,
) -> list[torch.Tensor]:
    """NNDSVD-style factors from a randomised truncated SVD of every unfolding (no full SVD).

    Restart 0 is the deterministic NNDSVD; the others multiply it by uniform(0.5, 1.5) noise and add
    a small uniform fill so they explore different basins.
    """
    if w is not None:
        mean = float((w * x).sum() / w.sum().clamp_min(1.0))
        x = torch.where(w > 0, x, torch.full_like(x, mean))
    order = x.ndim
    factors = []
    for n in range(order):
        unf = x.movedim(n, 0).reshape(x.shape[n], -1)
        q = min(rank + 4, min(unf.shape))
        u, s, v = _randomized_svd(unf, q, gen)
        cols = []
        for k in range(rank):
            if k >= u.shape[1]:
                cols.append(torch.rand(x.shape[n], generator=gen, device=x.device, dtype=x.dtype))
                continue
            uk, vk = u[:, k], v[:, k]
            up, un = uk.clamp_min(0), (-uk).clamp_min(0)
            vp, vn = vk.clamp_min(0), (-vk).clamp_min(0)
            mp, mn = up.norm() * vp.norm(), un.norm() * vn.norm()
            col = up / up.norm().clamp_min(_EPS) if mp >= mn else un / un.norm().clamp_min(_EPS)
            cols.append(col * (s[k] * max(float(mp), float(mn))).clamp_min(_EPS) ** (1.0 / order))
        base = torch.stack(cols, dim=1)  # (I_n, R)
        out = base.unsqueeze(0).repeat(n_restarts, 1, 1)
        if n_restarts > 1:
            jitter = 0.5 + torch.rand(out[1:].shape, generator=gen, device=x.device, dtype=x.dtype)
            fill = torch.rand(out[1:].shape, generator=gen, device=x.device, dtype=x.dtype)
            out[1:] = out[1:] * jitter + 0.1 * fill * base.mean(0, keepdim=True)
        factors.append(out)
    return factors


def _fit_core(
    x: torch.Tensor,
    w: torch.Tensor | None,
    factors: list[torch.Tensor],
    *,
    max_iter: int,
    tol: float,
    n_inner: int,
    extrapolate: bool = True,
    callbacks: Sequence[Any] = (),
    verbose: bool = False,
) -> tuple[list[torch.Tensor], torch.Tensor, float, Any, bool]:
    """Run HALS from ``factors`` (in place): factors, per-restart loss, norm2, FitResult, converged."""
    prob = Problem(x, w)
    _scale_to_data(prob, factors)
    st = State(factors, extrapolate)
    rebalance(st)
    state: dict[str, Any] = {"converged": False}

    def step(it: int) -> dict[str, float]:
        prev = st.loss
        loss = iterate(prob, st, n_inner)
        if prev is None:
            change = float("inf")
        else:
            change = float(((prev - loss).abs() / prev.clamp_min(1e-300)).max())
        best = float(loss.min())
        return {
            "loss": best,
            "rel_error": float(np.sqrt(max(best, 0.0) / prob.norm2)),
            "max_rel_change": change,
        }

    def converged(it: int, metrics) -> bool:
        state["converged"] = tol > 0 and metrics["max_rel_change"] <= tol
        return state["converged"]

    res = fit_loop(
        step,
        max_iter=max_iter,
        tol=0.0,
        monitor="loss",
        callbacks=[converged, *callbacks],
        verbose=verbose,
        desc="ntf",
    )
    loss = st.loss
    if loss is None:
        inner, model = prob.inner_and_norm(st.point)
        loss = (prob.norm2 - 2 * inner + model).clamp_min(0.0)
    return st.point, loss, prob.norm2, res, bool(state["converged"])


def _normalise_sorted(factors: Sequence[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    norms = [np.linalg.norm(f, axis=0) for f in factors]
    weights = np.prod(norms, axis=0)
    out = [f / np.where(nm > 0, nm, 1.0) for f, nm in zip(factors, norms, strict=True)]
    order = np.argsort(-weights, kind="stable")
    return [f[:, order] for f in out], weights[order]


# --------------------------------------------------------------------------------------------
# public functional API
# --------------------------------------------------------------------------------------------


def _as_tensor_and_weights(
    tensor, mask, weights
) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...] | None]:
    dims = None
    if isinstance(tensor, xr.DataArray):
        dims = tuple(str(d) for d in tensor.dims)
        tensor = tensor.values
    arr = np.asarray(tensor)
    if not (np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)):
        raise ConnectomeInputError(f"tensor has dtype {arr.dtype}; expected a numeric tensor")
    arr = arr.astype(float)
    if np.isinf(arr).any():
        raise ConnectomeInputError(
            "tensor has infinite entries; expected finite values (NaN marks a missing entry)"
        )
    if arr.ndim < 2:
        raise ConnectomeInputError(
            f"tensor has {arr.ndim} dim(s) (shape {arr.shape}); expected at least 2 modes"
        )
    w = None
    for name, extra in (("mask", mask), ("weights", weights)):
        if extra is None:
            continue
        e = extra
        if isinstance(e, xr.DataArray) and dims is not None:
            if set(e.dims) != set(dims):
                raise ConnectomeInputError(f"{name} has dims {tuple(e.dims)}; expected {dims}")
            e = e.transpose(*dims)
        e = np.asarray(e, dtype=float)
        if e.shape != arr.shape:
            raise ConnectomeInputError(
                f"{name} has shape {e.shape}; expected the tensor's shape {arr.shape}"
            )
        if not np.all(np.isfinite(e)) or np.any(e < 0):
            raise ConnectomeInputError(f"{name} must be finite and >= 0 everywhere")
        w = e if w is None else w * e
    finite = np.isfinite(arr)
    all_finite = bool(finite.all())
    if not all_finite:
        w = finite.astype(float) if w is None else w * finite
    if w is None:
        low = arr.min() if arr.size else 0.0
    else:
        observed = arr[(w > 0) & finite]
        low = observed.min() if observed.size else 0.0
    if low < 0:
        raise ConnectomeInputError(
            f"tensor has negative entries (min {low:.4g}); non-negative tensor "
            "factorisation expects a tensor >= 0 (mask or clip the negative entries)"
        )
    if not all_finite:
        arr = np.where(finite, arr, 0.0)
    if w is not None:
        arr = np.where(w > 0, arr, 0.0)
    return arr, w, dims


def ntf(
    tensor,
    rank: int,
    *,
    mask=None,
    weights=None,
    n_restarts: int = 1,
    init: str | Sequence = "random",
    max_iter: int = 500,
    tol: float = 1e-6,
    n_inner: int = 8,
    extrapolate: bool = True,
    device: str = "auto",
    dtype: str | None = None,
    random_state: int | np.random.Generator | None = None,
    callbacks: Sequence = (),
    verbose: bool = False,
) -> NTFFit:
    """Non-negative CP decomposition of a tensor of any order by batched HALS.

    Minimises ``sum W (X - [[A_1, ..., A_N]])^2`` over ``A_n >= 0`` with ``W`` the product of
    ``mask``, ``weights`` and the finite entries of ``X`` (NaN entries are missing).

    Parameters
    ----------
    tensor : array_like or xarray.DataArray
        Non-negative data with at least 2 modes; NaN marks missing entries.
    rank : int
        Number of components ``R``.
    mask : array_like of bool, optional
        True where an entry is observed; same shape as ``tensor``.
    weights : array_like, optional
        Non-negative per-entry weights, same shape as ``tensor``.
    n_restarts : int
        Restarts, fitted together in one batched tensor; the lowest-loss one is returned.
    init : {"random", "nndsvd"} or sequence of arrays
        Uniform random, NNDSVD-style from a randomised truncated SVD, or explicit factors (one
        ``(I_n, R)`` or ``(n_restarts, I_n, R)`` array per mode; warm start).
    max_iter : int
        Maximum outer iterations (one update of every mode).
    tol : float
        Stop when every restart's relative loss change is ``<= tol``.
    n_inner : int
        HALS sweeps over the columns per mode update (cheap next to the passes over the data, so
        several per update; Gillis and Glineur's accelerated HALS).
    extrapolate : bool
        Extrapolate every factor after its update and restart the extrapolation of a restart
        whose loss went up (HER, Ang et al. 2019); typically 2-4x fewer iterations. ``False`` gives
        plain HALS, whose loss never increases.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    dtype : str, optional
        ``"float32"`` or ``"float64"``; default float64 on CPU, float32 on CUDA. In float32 the
        passes over the data run in float32 (half the memory traffic) while the tensor's norm, the
        loss and the relative error are accumulated in float64.
    random_state : int or numpy Generator, optional
        Seed for the initialisation.
    callbacks : sequence of callable
        Passed to :func:`neuroana.backend.fit_loop` (``cb(iteration, metrics) -> bool``).
    verbose : bool
        Progress bar.

    Notes
    -----
    Threads: on the CPU a fit with fewer than ``2**22`` tensor entries x rank x restarts, or one
    started while the 1-minute load average is at least the usable cores, runs on one torch
    intra-op thread; otherwise on torch's setting capped at the cores the process may use
    (:func:`neuroana.backend.threads.fit_threads`). The setting is restored afterwards.

    Returns
    -------
    NTFFit

    Raises
    ------
    ConnectomeInputError
        Negative entries, mask or weights of the wrong shape, rank < 1, unknown init.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.connectome.ntf import ntf
    >>> rng = np.random.default_rng(0)
    >>> a, b, c = rng.random((20, 2)), rng.random((15, 2)), rng.random((10, 2))
    >>> x = np.einsum("ir,jr,kr->ijk", a, b, c)
    >>> fit = ntf(x, 2, n_restarts=4, random_state=0, device="cpu")
    >>> fit.rel_error < 1e-3
    True
    """
    if not isinstance(rank, int | np.integer) or rank < 1:
        raise ConnectomeInputError(f"rank={rank!r}; expected a positive integer")
    if n_restarts < 1:
        raise ConnectomeInputError(f"n_restarts={n_restarts!r}; expected >= 1")
    if n_inner < 1:
        raise ConnectomeInputError(f"n_inner={n_inner!r}; expected >= 1")
    arr, w, _ = _as_tensor_and_weights(tensor, mask, weights)
    n_obs = arr.size if w is None else int((w > 0).sum())
    n_par = rank * sum(arr.shape)
    if n_obs < n_par:
        raise ConnectomeInputError(
            f"tensor of shape {arr.shape} has {n_obs} observed entries, fewer than the "
            f"{n_par} free parameters of a rank-{rank} model; expected more data or a lower rank"
        )
    dev = resolve_device(device)
    dt = (
        resolve_dtype(dtype)
        if dtype is not None
        else (torch.float64 if dev.type == "cpu" else torch.float32)
    )
    _, gen = make_generators(random_state, dev)
    x = torch.as_tensor(arr, dtype=dt, device=dev)
    wt = None if w is None else torch.as_tensor(w, dtype=dt, device=dev)
    if isinstance(init, str):
        if init == "random":
            factors = _random_init(x.shape, int(rank), n_restarts, gen, dev, dt)
        elif init == "nndsvd":
            factors = _nndsvd_init(x, wt, int(rank), n_restarts, gen)
        else:
            raise ConnectomeInputError(
                f"init={init!r}; expected 'random', 'nndsvd' or a list of factor arrays"
            )
    else:
        factors = _explicit_init(init, x.shape, int(rank), n_restarts, dev, dt)
    with _cpu_threads(dev, x.numel() * int(rank) * n_restarts):
        factors, loss, norm2, res, conv = _fit_core(
            x,
            wt,
            factors,
            max_iter=max_iter,
            tol=tol,
            n_inner=n_inner,
            extrapolate=extrapolate,
            callbacks=callbacks,
            verbose=verbose,
        )
    rel = np.sqrt(np.maximum(loss.cpu().numpy(), 0.0) / norm2)
    best = int(np.argmin(rel))
    restart_factors = [f.detach().cpu().numpy().astype(float) for f in factors]
    fac, wts = _normalise_sorted([f[best] for f in restart_factors])
    return NTFFit(
        factors=fac,
        weights=wts,
        rel_error=float(rel[best]),
        restart_rel_errors=rel,
        restart_factors=restart_factors,
        best_restart=best,
        n_iter=res.n_iter,
        converged=conv,
        history=res.history,
    )


#: below this many tensor entries x rank x restarts a CPU fit runs on one torch thread
_SMALL_WORK = 1 << 22


@contextlib.contextmanager
def _cpu_threads(dev: torch.device, work: int):
    """Run a CPU fit on :func:`neuroana.backend.threads.fit_threads` threads (one below
    ``2**22`` entries x rank x restarts or on a saturated machine); restored afterwards."""
    if dev.type != "cpu":
        yield
        return
    with limit_threads(fit_threads(work, small=_SMALL_WORK)):
        yield


def _explicit_init(init, shape, rank, n_restarts, dev, dt) -> list[torch.Tensor]:
    init = list(init)
    if len(init) != len(shape):
        raise ConnectomeInputError(
            f"init has {len(init)} factor arrays; expected one per mode ({len(shape)})"
        )
    out = []
    for n, f in enumerate(init):
        a = np.asarray(f, dtype=float)
        if a.ndim == 2:
            a = np.broadcast_to(a, (n_restarts, *a.shape))
        if a.shape != (n_restarts, shape[n], rank):
            raise ConnectomeInputError(
                f"init factor {n} has shape {a.shape}; expected ({shape[n]}, {rank}) or "
                f"({n_restarts}, {shape[n]}, {rank})"
            )
        if np.any(a < 0) or not np.all(np.isfinite(a)):
            raise ConnectomeInputError(f"init factor {n} must be finite and >= 0")
        out.append(torch.as_tensor(np.array(a), dtype=dt, device=dev).clone())
    return out


def refit_factor(
    tensor: np.ndarray, factors: Sequence[np.ndarray], weights: np.ndarray, mode: int
) -> tuple[np.ndarray, np.ndarray]:
    """Re-estimate one mode's factor by non-negative least squares, the other modes fixed.

    ``tensor`` may be signed and holds NaN where unobserved; ``factors`` are the ``(I_n, R)``
    unit-norm factors of a CP model with ``weights``. Every slice ``tensor[..., i, ...]`` of
    ``mode`` is fitted as a non-negative combination of the components' fixed outer products
    (over its observed entries). Returns the new unit-norm factor and the new weights
    (``weights`` times the norm of each refitted column; 0 for a column refitted to 0).

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.connectome.ntf import refit_factor
    >>> a, b = np.array([[1.0], [0.0]]), np.array([[0.6], [0.8]])
    >>> x = np.einsum("ir,jr->ij", a, b * 2.0) - 0.1  # signed: a floor below zero
    >>> f, w = refit_factor(x, [a, b], np.array([1.0]), mode=1)
    >>> np.round(f.ravel(), 2).tolist(), bool(w[0] > 1)
    ([0.59, 0.81], True)
    """
    from scipy.optimize import nnls

    x = np.moveaxis(np.asarray(tensor, dtype=float), mode, -1)
    others = [np.asarray(f, dtype=float) for n, f in enumerate(factors) if n != mode]
    design = others[0] * np.asarray(weights, dtype=float)
    for f in others[1:]:
        design = (design[:, None, :] * f[None, :, :]).reshape(-1, f.shape[1])
    flat = x.reshape(-1, x.shape[-1])
    out = np.zeros((x.shape[-1], design.shape[1]))
    for i in range(x.shape[-1]):
        ok = np.isfinite(flat[:, i])
        if ok.any():
            out[i] = nnls(design[ok], flat[ok, i])[0]
    norm = np.linalg.norm(out, axis=0)
    unit = out / np.where(norm > 0, norm, 1.0)
    return unit, np.asarray(weights, dtype=float) * norm
