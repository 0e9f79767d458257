"""``HMMGLM``: switching-state coupled Poisson GLMs with no, Gaussian or one-hot weight priors.

Implements the models of Li, Kim, Rodgers, Choi & Wu, "One-hot Generalized Linear Model for
Switching Brain State Discovery" (ICLR 2024). The estimator is a thin shell: initialisation is in
:mod:`.init`, EM in :mod:`.em` (exact batched E-steps from :mod:`.inference`, Newton M-steps from
:mod:`.emissions`, closed-form prior updates from :mod:`.priors`). A fitted estimator holds CPU NumPy
and xarray state only, so it pickles and ships to workers without CUDA.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
import xarray as xr
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from neuroana.backend import make_generators, resolve_device, resolve_dtype
from neuroana.backend.threads import fit_threads, limit_threads
from neuroana.dims import BASIS, CLASS, LAG, SOURCE, STATE, STATE_NEXT, TARGET, TIME, TRIAL, UNIT
from neuroana.hmmglm.data import SpikeBatch, padded_dataarray, prepare_spikes
from neuroana.hmmglm.em import EMFit, estep, fit_em
from neuroana.hmmglm.emissions import LINKS, emission_loglik
from neuroana.hmmglm.errors import HMMGLMInputError
from neuroana.hmmglm.inference import viterbi
from neuroana.hmmglm.init import EMParams, explore_subset, flatten, history_basis, initial_params
from neuroana.hmmglm.priors import CLASS_NAMES

PRIORS = ("none", "gaussian", "onehot")
_CONN = (TARGET, SOURCE)


class HMMGLM(BaseEstimator):
    """Hidden-Markov switching between coupled Poisson GLMs (HMM-GLM), optionally with a prior.

    In state ``k`` the rate of neuron ``n`` at bin ``t`` is
    ``link(bias[k, n] + sum_j W[k, n, j] * h[t, j])`` where ``h`` is the spike history of neuron
    ``j`` filtered by ``history``. States follow a Markov chain that restarts from a uniform initial
    distribution at the start of every trial.

    Parameters
    ----------
    n_states : int
        Number of hidden states (``1`` gives the single-state GLM baseline).
    prior : {"none", "gaussian", "onehot"}
        ``"gaussian"``: ``W[k] ~ N(W_bar, sigma^2)`` with ``W_bar`` and ``sigma`` learned.
        ``"onehot"``: each connection's class (inhibitory, none, excitatory) has a categorical prior
        shared by all states and a strength of at least ``strength_floor``; fitted by variational
        EM warm-started from the no-prior fit (needs a single history filter).
    link : {"sigmoid", "softplus", "exp"}
        ``"sigmoid"`` is the paper's capped link (rate <= 1 spike per bin).
    history : "exp", "raised_cosine" or array (n_basis, window)
        History basis: the paper's 5-bin exponential filter, 4 raised cosines over 20 bins, or your
        own (row ``l``, column ``k-1`` weights the count ``k`` bins back).
    n_restarts : int
        Random initialisations, run batched for ``n_explore`` EM iterations; the one with the best
        training objective is then run to convergence.
    max_iter : int
        Maximum EM iterations (per stage; the one-hot model runs a no-prior stage first).
    tol : float
        Relative change of the training objective that counts as converged.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    random_state : int, numpy Generator or None
    sticky : float
        Dirichlet pseudo-count added to the diagonal of the expected transition counts.
    strength_floor : float
        Minimum connection strength ``s_min`` of the one-hot model; also the threshold that turns
        the weights of the other models into ``adjacency_``.
    n_explore : int
        EM iterations run on all restarts before the best is kept.
    dtype : str
        Working dtype (normalisers are always accumulated in float64).
    verbose : bool
        Progress bar.

    Attributes
    ----------
    weights_ : xarray.DataArray
        ``("state", "target", "source")`` coupling weights (summed over the basis when it has several
        functions; the full filters are in ``coupling_``).
    bias_ : xarray.DataArray
        ``("state", "unit")``.
    transition_ : xarray.DataArray
        ``("state", "state_next")``.
    adjacency_ : xarray.DataArray
        ``("state", "target", "source")`` in {-1, 0, 1}.
    prior_adjacency_ : xarray.DataArray
        ``("target", "source")`` state-constant ("anatomical") connectome.
    prior_prob_ : xarray.DataArray
        ``("target", "source", "class")`` shared class probabilities (one-hot) or the fraction of states
        in each class (other priors).
    history_ : xarray.Dataset
        Fit trace (dim ``iteration``).

    Notes
    -----
    Trials of unequal length: pass a list of ``("time", "unit")`` arrays or DataArrays (one per
    trial or session). They are padded to the longest; every trial starts from the initial
    distribution with an empty spike history, and padded bins carry no weight in the E-step (both
    the sequential and the associative-scan forward-backward reset at each trial's start and treat
    padding as inert) or the M-step. Posteriors are NaN and Viterbi states -1 on padded bins.

    Threads: on the CPU, ``fit`` and the scoring methods run with
    :func:`neuroana.backend.threads.fit_threads` torch intra-op threads for a work size of
    bins x states x units x features (one thread for the paper-sized problems, at most the cores the
    process may use otherwise), restoring the previous setting afterwards.

    Examples
    --------
    >>> from neuroana.datasets.hmmglm_sim import simulate_hmmglm
    >>> from neuroana.hmmglm import HMMGLM
    >>> sim = simulate_hmmglm(2, 4, n_trials=4, n_time=300, random_state=0)
    >>> m = HMMGLM(2, link="sigmoid", n_restarts=2, max_iter=20, random_state=0).fit(sim.spikes)
    >>> m.weights_.dims, m.predict_states(sim.spikes).dims
    (('state', 'target', 'source'), ('trial', 'time'))
    """

    def __init__(
        self,
        n_states: int = 2,
        prior: str = "none",
        link: str = "softplus",
        history="exp",
        n_restarts: int = 4,
        max_iter: int = 100,
        tol: float = 1e-5,
        device: str = "auto",
        random_state=None,
        sticky: float = 0.0,
        strength_floor: float = 0.15,
        n_explore: int = 5,
        dtype: str = "float32",
        verbose: bool = False,
    ):
        self.n_states = n_states
        self.prior = prior
        self.link = link
        self.history = history
        self.n_restarts = n_restarts
        self.max_iter = max_iter
        self.tol = tol
        self.device = device
        self.random_state = random_state
        self.sticky = sticky
        self.strength_floor = strength_floor
        self.n_explore = n_explore
        self.dtype = dtype
        self.verbose = verbose

    # ------------------------------------------------------------------ validation and setup
    def _check_params(self) -> np.ndarray:
        if not isinstance(self.n_states, (int, np.integer)) or self.n_states < 1:
            raise ValueError(f"n_states={self.n_states!r}; expected an int >= 1")
        if self.prior not in PRIORS:
            raise ValueError(f"prior={self.prior!r} is not supported; expected one of {PRIORS}")
        if self.link not in LINKS:
            raise ValueError(f"link={self.link!r} is not supported; expected one of {LINKS}")
        for name in ("n_restarts", "max_iter", "n_explore"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name}={v!r}; expected an int >= 1")
        for name in ("sticky", "strength_floor", "tol"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v >= 0 and math.isfinite(v)):
                raise ValueError(f"{name}={v!r}; expected a finite number >= 0")
        basis = history_basis(self.history)
        if self.prior == "onehot" and basis.shape[0] != 1:
            raise ValueError(
                f"prior='onehot' needs a single history filter; history has {basis.shape[0]} "
                "basis functions"
            )
        return basis

    def _work(self) -> tuple[torch.device, torch.dtype]:
        return resolve_device(self.device), resolve_dtype(self.dtype)

    def _batch(self, spikes) -> SpikeBatch:
        dev, dt = self._work()
        return prepare_spikes(spikes, self.history_basis_.values, dev, dt)

    def _threads(self, batch: SpikeBatch):
        """The thread rule (class Notes) for work on ``batch``; a no-op off the CPU."""
        if batch.Y.device.type != "cpu":
            return contextlib.nullcontext()
        B, T, N = batch.Y.shape
        work = int(batch.lengths.sum()) * int(self.n_states) * N * batch.X.shape[-1]
        return limit_threads(fit_threads(work))

    # ------------------------------------------------------------------ fit
    def fit(self, spikes, y=None) -> HMMGLM:
        """Fit by EM on spike counts ``("trial", "time", "unit")`` or a list of ``(time, unit)``.

        Raises
        ------
        ValueError
            On invalid parameters.
        HMMGLMInputError
            On invalid spikes (NaN, negative or non-integer counts, trials not longer than the
            history window, ...) or when there are more states than time bins.
        """
        basis = self._check_params()
        self.history_basis_ = xr.DataArray(basis, dims=(BASIS, LAG), name="history_basis")
        batch = self._batch(spikes)
        n_bins = int(batch.lengths.sum())
        K = int(self.n_states)
        if K > n_bins:
            raise HMMGLMInputError(f"n_states={K} is more than the {n_bins} time bins in spikes")
        with self._threads(batch):
            res = self._fit_em(batch)
        self.history_ = res.history
        self.n_iter_ = int(res.history.sizes["iteration"])
        self.converged_ = bool(res.converged)
        self._store(res.params, batch.unit, res.classes, res.log_prior, res.gprior)
        self.train_log_lik_ = float(self.history_["log_lik"].values[-1])
        return self

    def _fit_em(self, batch: SpikeBatch) -> EMFit:
        K, R = int(self.n_states), int(self.n_restarts)
        rng, _ = make_generators(self.random_state, "cpu")
        full = flatten(batch)
        explore = explore_subset(full, R, rng)
        select = full.Xf.device.type == "cpu"
        params = initial_params(full, explore, K, R, self.link, rng, select=select)
        res = fit_em(
            full,
            explore,
            params,
            link=self.link,
            prior=self.prior,
            sticky=float(self.sticky),
            strength_floor=float(self.strength_floor),
            n_explore=int(self.n_explore),
            max_iter=int(self.max_iter),
            tol=float(self.tol),
            verbose=bool(self.verbose),
        )
        return res

    # ------------------------------------------------------------------ attributes
    def _store(self, params: EMParams, unit, classes=None, log_prior=None, gprior=None) -> None:
        """Keep the parameters as CPU NumPy arrays (in the working precision) and set attributes."""

        def cpu(t):
            return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)

        # private state, restart axis dropped: theta (K, N, P), log_A (K, K), log_pi0 (K,)
        self._theta = cpu(params.theta[0])
        self._log_A = cpu(params.log_A[0])
        self._log_pi0 = cpu(params.log_pi0[0])
        theta = self._theta.astype(np.float64)
        K, N, P = theta.shape
        self.n_units_ = N
        L = self.history_basis_.shape[0]
        coup = theta[..., :-1].reshape(K, N, N, L)
        c2 = {TARGET: unit, SOURCE: unit} if unit is not None else {}
        self.coupling_ = xr.DataArray(coup, dims=(STATE, *_CONN, BASIS), coords=c2)
        W = coup.sum(-1) if L > 1 else coup[..., 0]
        self.weights_ = xr.DataArray(W, dims=(STATE, *_CONN), coords=c2, name="weights")
        self.bias_ = xr.DataArray(
            theta[..., -1], dims=(STATE, UNIT), coords={UNIT: unit} if unit is not None else {}
        )
        self.transition_ = xr.DataArray(
            np.exp(self._log_A.astype(np.float64)), dims=(STATE, STATE_NEXT)
        )
        self.initial_ = xr.DataArray(np.exp(self._log_pi0.astype(np.float64)), dims=(STATE,))
        floor = float(self.strength_floor)
        if classes is not None:
            adj = cpu(classes[0]) - 1
            pp = np.exp(cpu(log_prior[0]).astype(np.float64))
        else:
            adj = np.sign(W) * (np.abs(W) >= floor)
            pp = np.stack([(adj == c).mean(0) for c in (-1, 0, 1)], -1)
        self.adjacency_ = xr.DataArray(
            adj.astype(np.int64), dims=(STATE, *_CONN), coords=c2, name="adjacency"
        )
        self.prior_prob_ = xr.DataArray(
            pp, dims=(*_CONN, CLASS), coords={**c2, CLASS: list(CLASS_NAMES)}
        )
        if self.prior == "gaussian" and gprior is not None:
            mean = cpu(gprior.mean[0, 0, :, :-1]).astype(np.float64).reshape(N, N, L).sum(-1)
            self.prior_mean_ = xr.DataArray(mean, dims=_CONN, coords=c2)
            self.prior_std_ = float(cpu(gprior.prec.reshape(-1)[0]).astype(np.float64) ** -0.5)
            padj = np.sign(mean) * (np.abs(mean) >= floor)
        else:
            padj = pp.argmax(-1) - 1
        self.prior_adjacency_ = xr.DataArray(
            padj.astype(np.int64), dims=_CONN, coords=c2, name="prior_adjacency"
        )

    # ------------------------------------------------------------------ use a fitted model
    def _posterior_parts(self, spikes) -> tuple[SpikeBatch, EMParams]:
        if not hasattr(self, "_theta"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet; call 'fit' or "
                "'from_params' first"
            )
        batch = self._batch(spikes)
        if batch.Y.shape[-1] != self.n_units_:
            raise HMMGLMInputError(
                f"spikes has {batch.Y.shape[-1]} units but the model was fitted on {self.n_units_}"
            )
        dev, dt = self._work()
        params = EMParams(
            *(
                torch.as_tensor(v, dtype=dt, device=dev)[None]
                for v in (self._theta, self._log_A, self._log_pi0)
            )
        )
        return batch, params

    def score_trials(self, spikes) -> np.ndarray:
        """Log-likelihood ``log p(x_b)`` of each trial (float64 array)."""
        batch, params = self._posterior_parts(spikes)
        with self._threads(batch):
            ll, _, _ = estep(batch, params, self.link)
        return ll[0].cpu().numpy()

    def score(self, spikes, y=None) -> float:
        """Mean log-likelihood per time bin (nats per bin for the whole population).

        Examples
        --------
        >>> import numpy as np
        >>> from neuroana.hmmglm import HMMGLM
        >>> m = HMMGLM.from_params(np.zeros((1, 2, 2)), np.zeros(2), np.ones((1, 1)), link="exp")
        >>> round(m.score(np.zeros((1, 10, 2), dtype=int)), 6)  # rate 1, no spikes: -2 per bin
        -2.0
        """
        batch, params = self._posterior_parts(spikes)
        with self._threads(batch):
            ll, _, _ = estep(batch, params, self.link)
        return float(ll[0].sum() / int(batch.lengths.sum()))

    def posterior(self, spikes) -> xr.DataArray:
        """State posteriors ``("trial", "time", "state")`` (NaN on padded bins of short trials)."""
        batch, params = self._posterior_parts(spikes)
        with self._threads(batch):
            _, gamma, _ = estep(batch, params, self.link)
        return padded_dataarray(
            gamma[0].double().cpu().numpy(), batch, (TRIAL, TIME, STATE), np.nan, "posterior"
        )

    def predict_states(self, spikes) -> xr.DataArray:
        """Viterbi state path ``("trial", "time")`` (-1 on padded bins of short trials)."""
        batch, params = self._posterior_parts(spikes)
        with self._threads(batch):
            log_e = emission_loglik(batch.X, batch.Y, params.theta, self.link, batch.lgam)[0]
            vp = viterbi(log_e, params.log_A[0], params.log_pi0[0], batch.lengths)
        return padded_dataarray(vp.path.cpu().numpy(), batch, (TRIAL, TIME), -1, "states")

    @classmethod
    def from_params(
        cls,
        weights,
        bias,
        transition,
        *,
        initial=None,
        link: str = "sigmoid",
        history="exp",
        prior_prob=None,
        device: str = "cpu",
        dtype: str = "float64",
    ) -> HMMGLM:
        """Build a fitted model from known parameters (to score data under the true parameters).

        Parameters
        ----------
        weights : array (state, target, source) or (state, target, source, basis)
        bias : array (unit,) shared by all states, or (state, unit)
        transition : array (state, state_next), rows summing to 1
        initial : array (state,), optional
            Initial-state distribution (default uniform, as in the paper's likelihood).
        prior_prob : array (target, source, 3), optional
            One-hot class prior; sets ``prior="onehot"`` and the adjacency from the weights' signs.

        Examples
        --------
        >>> import numpy as np
        >>> from neuroana.hmmglm import HMMGLM
        >>> m = HMMGLM.from_params(np.zeros((2, 3, 3)), np.zeros(3), np.full((2, 2), 0.5))
        >>> m.transition_.dims
        ('state', 'state_next')
        """
        W = np.asarray(weights, dtype=float)
        if W.ndim == 3:
            W = W[..., None]
        if W.ndim != 4 or W.shape[1] != W.shape[2]:
            raise ValueError(
                f"weights has shape {np.shape(weights)}; expected (state, target, source)"
            )
        K, N, _, L = W.shape
        b = np.broadcast_to(np.asarray(bias, dtype=float), (K, N))
        A = np.asarray(transition, dtype=float)
        if A.shape != (K, K) or (A < 0).any() or not np.allclose(A.sum(1), 1, atol=1e-5):
            raise ValueError(
                f"transition has shape {A.shape} or rows not summing to 1; expected a ({K}, {K}) "
                "row-stochastic matrix"
            )
        pi0 = np.full(K, 1.0 / K) if initial is None else np.asarray(initial, dtype=float)
        m = cls(
            n_states=K,
            prior="onehot" if prior_prob is not None else "none",
            link=link,
            history=history,
            device=device,
            dtype=dtype,
        )
        basis = m._check_params()
        if basis.shape[0] != L:
            raise ValueError(
                f"weights have {L} basis coefficients but history has {basis.shape[0]}"
            )
        m.history_basis_ = xr.DataArray(basis, dims=(BASIS, LAG), name="history_basis")
        np_dtype = torch.empty(0, dtype=resolve_dtype(dtype)).numpy().dtype
        theta = np.concatenate([W.reshape(K, N, N * L), b[..., None]], -1)
        with np.errstate(divide="ignore"):
            params = EMParams(
                *(np.asarray(v, dtype=np_dtype)[None] for v in (theta, np.log(A), np.log(pi0)))
            )
        classes = log_prior = None
        if prior_prob is not None:
            classes = (np.sign(W.sum(-1)).astype(np.int64) + 1)[None]
            log_prior = np.log(np.asarray(prior_prob, dtype=float))[None]
        m._store(params, None, classes, log_prior)
        return m
