"""``NonNegativeTensorFactorization``: the scikit-learn style estimator over :func:`ntf`."""

from __future__ import annotations

import numpy as np
import xarray as xr
from sklearn.base import BaseEstimator

from neuroana.connectome.errors import ConnectomeInputError
from neuroana.connectome.ntf import ntf


class NonNegativeTensorFactorization(BaseEstimator):
    """Non-negative CP decomposition of a labelled tensor (batched torch HALS, exact masking).

    Parameters
    ----------
    n_components : int
        Rank ``R``.
    n_restarts : int
        Restarts fitted together in one batched tensor; the best is kept.
    max_iter : int
        Maximum outer iterations.
    tol : float
        Relative loss-change tolerance (every restart).
    init : {"random", "nndsvd"}
        Initialisation (see :func:`neuroana.connectome.ntf`).
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    dtype : str, optional
        ``"float32"``/``"float64"``; default float64 on CPU, float32 on CUDA.
    random_state : int, optional
        Seed.
    verbose : bool
        Progress bar.

    Attributes
    ----------
    factors_ : xarray.Dataset
        One variable ``<dim>_factor`` per mode with dims ``(dim, "component")`` (unit-norm columns)
        and ``weights`` with dim ``component``.
    reconstruction_error_ : float
        Relative error ``||W (X - Xhat)|| / ||W X||`` of the best restart.
    restart_errors_ : xarray.DataArray
        Relative error of every restart (dim ``restart``).
    history_ : xarray.Dataset
        Per-iteration metrics from :func:`neuroana.backend.fit_loop`.
    n_iter_ : int
    converged_ : bool

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from neuroana.connectome import NonNegativeTensorFactorization
    >>> rng = np.random.default_rng(0)
    >>> x = np.einsum("ir,jr,kr->ijk", rng.random((12, 2)), rng.random((9, 2)), rng.random((4, 2)))
    >>> da = xr.DataArray(x, dims=("pair", "window", "animal"))
    >>> est = NonNegativeTensorFactorization(2, n_restarts=3, random_state=0, device="cpu").fit(da)
    >>> est.factors_["window_factor"].dims
    ('window', 'component')
    >>> est.reconstruction_error_ < 1e-3
    True
    """

    def __init__(
        self,
        n_components: int = 2,
        *,
        n_restarts: int = 4,
        max_iter: int = 500,
        tol: float = 1e-6,
        init: str = "random",
        device: str = "auto",
        dtype: str | None = None,
        random_state: int | None = None,
        verbose: bool = False,
    ):
        self.n_components = n_components
        self.n_restarts = n_restarts
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y=None, *, mask=None, weights=None, init_factors=None):
        """Fit on ``X`` (DataArray with any dims, or an array: dims ``mode_0, mode_1, ...``).

        NaN entries and ``mask == False`` entries are missing and have no influence. ``init_factors``
        (one array per mode) overrides ``init`` for a warm start.
        """
        if not isinstance(X, xr.DataArray):
            arr = np.asarray(X)
            X = xr.DataArray(arr, dims=tuple(f"mode_{n}" for n in range(arr.ndim)))
        if "component" in X.dims:
            raise ConnectomeInputError(
                f"X has dims {tuple(X.dims)}; 'component' is reserved for the factors"
            )
        fit = ntf(
            X,
            self.n_components,
            mask=mask,
            weights=weights,
            n_restarts=self.n_restarts,
            init=self.init if init_factors is None else init_factors,
            max_iter=self.max_iter,
            tol=self.tol,
            device=self.device,
            dtype=self.dtype,
            random_state=self.random_state,
            verbose=self.verbose,
        )
        comp = np.arange(self.n_components)
        data = {}
        for dim, f in zip(X.dims, fit.factors, strict=True):
            coords = {dim: X.coords[dim].values} if dim in X.coords else {}
            data[f"{dim}_factor"] = xr.DataArray(
                f, dims=(dim, "component"), coords={**coords, "component": comp}
            )
            # keep non-index coords along this dim (e.g. roi_i / roi_j on "pair")
            for name, c in X.coords.items():
                if name != dim and c.dims == (dim,):
                    data[f"{dim}_factor"] = data[f"{dim}_factor"].assign_coords({name: c})
        data["weights"] = xr.DataArray(fit.weights, dims=("component",), coords={"component": comp})
        self.factors_ = xr.Dataset(data)
        self.factors_.attrs["modes"] = list(X.dims)
        self.reconstruction_error_ = fit.rel_error
        self.restart_errors_ = xr.DataArray(fit.restart_rel_errors, dims=("restart",))
        self.history_ = fit.history
        self.n_iter_ = fit.n_iter
        self.converged_ = fit.converged
        self.restart_factors_ = fit.restart_factors
        self.best_restart_ = fit.best_restart
        return self

    def factor_list(self) -> list[np.ndarray]:
        """Fitted factors as a list of ``(I_n, R)`` arrays (weights folded into the first mode)."""
        modes = self.factors_.attrs["modes"]
        out = [self.factors_[f"{d}_factor"].values.copy() for d in modes]
        out[0] = out[0] * self.factors_["weights"].values
        return out

    def reconstruct(self) -> xr.DataArray:
        """The fitted model as a dense DataArray with the input's dims."""
        modes = self.factors_.attrs["modes"]
        facs = self.factor_list()
        letters = "abcdefghijklmnopqrstuvwxy"[: len(facs)]
        expr = ",".join(f"{c}z" for c in letters) + "->" + letters
        return xr.DataArray(np.einsum(expr, *facs), dims=tuple(modes))
