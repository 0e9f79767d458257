"""``HMMGLM``: switching-state coupled Poisson GLMs with no, Gaussian or one-hot weight priors.

Implements the models of Li, Kim, Rodgers, Choi & Wu, "One-hot Generalized Linear Model for
Switching Brain State Discovery" (ICLR 2024) with exact batched EM (see :mod:`.inference`),
Newton (Fisher-scoring) M-steps (:mod:`.emissions`) and closed-form prior updates (:mod:`.priors`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
import xarray as xr
from sklearn.base import BaseEstimator

from neuroana.backend import fit_loop, make_generators, resolve_device, resolve_dtype
from neuroana.hmmglm.data import HMMGLMInputError, SpikeBatch, padded_dataarray, prepare_spikes
from neuroana.hmmglm.emissions import (
    LINKS,
    emission_loglik,
    exp_filter,
    newton_mstep,
    raised_cosine_basis,
)
from neuroana.hmmglm.inference import forward_backward, forward_backward_scan, viterbi
from neuroana.hmmglm.priors import CLASS_NAMES, gaussian_prior_update, onehot_update

PRIORS = ("none", "gaussian", "onehot")
_SCAN_MIN_T = 512  # on CUDA, sequences at least this long use the associative scan


def _basis(history) -> np.ndarray:
    if isinstance(history, str):
        if history == "exp":
            return exp_filter()
        if history == "raised_cosine":
            return raised_cosine_basis()
        raise ValueError(
            f"history={history!r} is not supported; expected 'exp', 'raised_cosine' or an array "
            "(n_basis, window)"
        )
    b = np.asarray(history, dtype=float)
    if b.ndim == 1:
        b = b[None, :]
    if b.ndim != 2 or b.shape[1] < 1 or not np.isfinite(b).all():
        raise ValueError(f"history array has shape {b.shape}; expected finite (n_basis, window)")
    return b


def _inverse_link(rate: torch.Tensor, link: str) -> torch.Tensor:
    rate = rate.clamp(1e-3, 0.999 if link == "sigmoid" else 1e6)
    if link == "sigmoid":
        return torch.log(rate / (1 - rate))
    if link == "softplus":
        return rate + torch.log(-torch.expm1(-rate))
    return rate.log()


class _Flat(NamedTuple):
    batch: SpikeBatch
    Xf: torch.Tensor
    Yf: torch.Tensor
    mask: torch.Tensor
    M: int
    P: int


def _flat(batch: SpikeBatch) -> _Flat:
    B, T, N = batch.Y.shape
    P = batch.X.shape[-1]
    mask = (torch.arange(T, device=batch.Y.device)[None, :] < batch.lengths[:, None]).reshape(-1)
    return _Flat(batch, batch.X.reshape(B * T, P), batch.Y.reshape(B * T, N), mask, B * T, P)


def _subset(batch: SpikeBatch, idx: np.ndarray) -> SpikeBatch:
    i = torch.as_tensor(idx, device=batch.Y.device)
    T = int(batch.lengths[i].max())
    return SpikeBatch(
        batch.Y[i, :T], batch.X[i, :T], batch.lengths[i], batch.lgam[i, :T], batch.unit, None
    )


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
        ``("state", "post", "pre")`` coupling weights (summed over the basis when it has several
        functions; the full filters are in ``coupling_``).
    bias_ : xarray.DataArray
        ``("state", "unit")``.
    transition_ : xarray.DataArray
        ``("state", "state_next")``.
    adjacency_ : xarray.DataArray
        ``("state", "post", "pre")`` in {-1, 0, 1}.
    prior_adjacency_ : xarray.DataArray
        ``("post", "pre")`` state-constant ("anatomical") connectome.
    prior_prob_ : xarray.DataArray
        ``("post", "pre", "class")`` shared class probabilities (one-hot) or the fraction of states
        in each class (other priors).
    history_ : xarray.Dataset
        Fit trace (dim ``iteration``).

    Examples
    --------
    >>> from neuroana.datasets.hmmglm_sim import simulate_hmmglm
    >>> from neuroana.hmmglm import HMMGLM
    >>> sim = simulate_hmmglm(2, 4, n_trials=4, n_time=300, random_state=0)
    >>> m = HMMGLM(2, link="sigmoid", n_restarts=2, max_iter=20, random_state=0).fit(sim.spikes)
    >>> m.weights_.dims, m.predict_states(sim.spikes).dims
    (('state', 'post', 'pre'), ('trial', 'time'))
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
    def _check_params(self):
        if not isinstance(self.n_states, (int, np.integer)) or self.n_states < 1:
            raise ValueError(f"n_states={self.n_states!r}; expected an int >= 1")
        if self.prior not in PRIORS:
            raise ValueError(f"prior={self.prior!r} is not supported; expected one of {PRIORS}")
        if self.link not in LINKS:
            raise ValueError(f"link={self.link!r} is not supported; expected one of {LINKS}")
        if not isinstance(self.n_restarts, (int, np.integer)) or self.n_restarts < 1:
            raise ValueError(f"n_restarts={self.n_restarts!r}; expected an int >= 1")
        for name in ("sticky", "strength_floor", "tol"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v >= 0 and math.isfinite(v)):
                raise ValueError(f"{name}={v!r}; expected a finite number >= 0")
        basis = _basis(self.history)
        if self.prior == "onehot" and basis.shape[0] != 1:
            raise ValueError(
                f"prior='onehot' needs a single history filter; history has {basis.shape[0]} "
                "basis functions"
            )
        return basis

    def _setup(self):
        basis = self._check_params()
        self._device = resolve_device(self.device)
        self._dtype = resolve_dtype(self.dtype)
        self.history_basis_ = xr.DataArray(basis, dims=("basis", "lag"), name="history_basis")
        return basis

    def _batch(self, spikes) -> SpikeBatch:
        return prepare_spikes(spikes, self.history_basis_.values, self._device, self._dtype)

    # ------------------------------------------------------------------ E-step
    def _estep(self, batch: SpikeBatch, theta, log_A, log_pi0):
        R, K = theta.shape[:2]
        B, T, _ = batch.Y.shape
        log_e = emission_loglik(batch.X, batch.Y, theta, self.link, batch.lgam)
        log_e = log_e.reshape(R * B, T, K)
        lA = log_A[:, None].expand(R, B, K, K).reshape(R * B, K, K)
        lp = log_pi0[:, None].expand(R, B, K).reshape(R * B, K)
        lengths = batch.lengths.repeat(R)
        fb = (
            forward_backward_scan
            if self._device.type == "cuda" and T >= _SCAN_MIN_T
            else forward_backward
        )
        post = fb(log_e, lA, lp, lengths)
        return (
            post.log_lik.reshape(R, B),
            post.gamma.reshape(R, B, T, K),
            post.xi_sum.reshape(R, B, K, K).sum(1),
        )

    def _transition_update(self, xi):
        K = xi.shape[-1]
        counts = xi.double() + self.sticky * torch.eye(K, dtype=torch.float64, device=xi.device)
        counts = counts + 1e-10
        A = counts / counts.sum(-1, keepdim=True)
        return A.log().to(self._dtype)

    # ------------------------------------------------------------------ fit
    def fit(self, spikes, y=None) -> HMMGLM:
        """Fit by EM on spike counts ``("trial", "time", "unit")`` or a list of ``(time, unit)``.

        Raises
        ------
        ValueError
            On invalid parameters or spikes (see :class:`~neuroana.hmmglm.data.HMMGLMInputError`),
            or when there are more states than time bins.
        """
        self._setup()
        batch = self._batch(spikes)
        n_bins = int(batch.lengths.sum())
        K, R = int(self.n_states), int(self.n_restarts)
        if K > n_bins:
            raise HMMGLMInputError(f"n_states={K} is more than the {n_bins} time bins in spikes")
        rng, _ = make_generators(self.random_state, "cpu")
        dev, dt = self._device, self._dtype
        select = dev.type == "cpu"
        full = _flat(batch)
        B, T, N = batch.Y.shape
        # restarts explore on a random subset of trials (about a third, >= 20000 bins), batched
        explore = full
        if R > 1 and n_bins >= 40000:
            order = rng.permutation(B)
            cum = np.cumsum(batch.lengths.cpu().numpy()[order])
            n_sub = int(np.searchsorted(cum, max(20000, n_bins // 3))) + 1
            explore = _flat(_subset(batch, np.sort(order[:n_sub])))

        # initialisation: per restart, random blocks of bins assigned to random states, one M-step
        eb = explore.batch
        mean_rate = (full.Yf[full.mask].mean(0) + 1e-3).to(dt)
        theta = torch.zeros(R, K, N, full.P, dtype=dt, device=dev)
        theta[..., -1] = _inverse_link(mean_rate, self.link)
        Be, Te = eb.Y.shape[:2]
        G = np.zeros((R, K, Be, Te))
        block = max(int(eb.lengths.min()) // 8, 1)
        for r in range(R):
            for b in range(Be):
                for s0 in range(0, Te, block):
                    k = rng.integers(K)
                    G[r, :, b, s0 : s0 + block] = 0.1 / K
                    G[r, k, b, s0 : s0 + block] += 0.9
        G = torch.as_tensor(G, dtype=dt, device=dev).reshape(R, K, explore.M) * explore.mask
        theta = newton_mstep(
            explore.Xf, explore.Yf, G, theta, self.link, n_iter=2, select=select
        ).theta
        stay = 0.95 if K > 1 else 1.0
        A0 = torch.full((K, K), (1 - stay) / max(K - 1, 1), dtype=torch.float64)
        A0.fill_diagonal_(stay)
        log_A = A0.log().to(dt).to(dev).expand(R, K, K).clone()
        log_pi0 = torch.full((R, K), -math.log(K), dtype=dt, device=dev)
        self._log_pi0 = log_pi0[:1]
        state = {"theta": theta, "log_A": log_A, "log_pi0": log_pi0, "gprior": None}
        histories = []

        def em_step(it, with_prior: bool):
            data = explore if state["theta"].shape[0] > 1 else full
            ll, gamma, xi = self._estep(
                data.batch, state["theta"], state["log_A"], state["log_pi0"]
            )
            ll = ll.sum(1)
            objective = ll.clone()
            gp = state["gprior"] if with_prior else None
            if gp is not None:
                d = (state["theta"] - gp.mean)[..., :-1]
                npar = d[0].numel()
                objective = (
                    objective
                    + (
                        -0.5 * (gp.prec.reshape(-1) * d.pow(2).sum((1, 2, 3)))
                        + 0.5 * npar * torch.log(gp.prec.reshape(-1) / (2 * math.pi))
                    ).double()
                )
            state["log_A"] = self._transition_update(xi)
            Gm = gamma.permute(0, 3, 1, 2).reshape(gamma.shape[0], K, data.M)
            kw = {}
            if gp is not None:
                kw = {
                    "prior_mean": gp.mean.expand_as(state["theta"]),
                    "prior_prec": gp.prec.expand(-1, K, -1, -1),
                }
            state["theta"] = newton_mstep(
                data.Xf, data.Yf, Gm, state["theta"], self.link, n_iter=1, select=select, **kw
            ).theta
            if with_prior:
                state["gprior"] = gaussian_prior_update(state["theta"])
            best = int(torch.argmax(objective))
            nb = int(data.batch.lengths.sum())
            out = {
                "log_lik": float(ll[best]) / nb,
                "objective": float(objective[best]) / nb,
                "n_active_restarts": float(ll.shape[0]),
            }
            if state["theta"].shape[0] > 1 and it + 1 >= self.n_explore:
                keep = slice(best, best + 1)
                for key in ("theta", "log_A", "log_pi0"):
                    state[key] = state[key][keep]
                if state["gprior"] is not None:
                    state["gprior"] = type(state["gprior"])(*(v[keep] for v in state["gprior"]))
            return out

        res = fit_loop(
            lambda it: em_step(it, False),
            max_iter=self.max_iter,
            tol=self.tol,
            monitor="objective",
            min_iter=self.n_explore + 1 if R > 1 else 1,
            verbose=self.verbose,
            desc="HMM-GLM (no prior)",
        )
        histories.append(res.history.assign(stage=("iteration", [0] * res.n_iter)))
        if state["theta"].shape[0] > 1:  # max_iter < n_explore: keep the best restart now
            ll, _, _ = self._estep(explore.batch, state["theta"], state["log_A"], state["log_pi0"])
            best = int(torch.argmax(ll.sum(1)))
            for key in ("theta", "log_A", "log_pi0"):
                state[key] = state[key][best : best + 1]
        converged = res.converged
        self._classes = None
        self._log_prior = None
        if self.prior == "gaussian":
            state["gprior"] = gaussian_prior_update(state["theta"])
            res = fit_loop(
                lambda it: em_step(it, True),
                max_iter=self.max_iter,
                tol=self.tol,
                monitor="objective",
                verbose=self.verbose,
                desc="HMM-GLM (Gaussian prior)",
            )
            histories.append(res.history.assign(stage=("iteration", [1] * res.n_iter)))
            self._gprior = state["gprior"]
            converged = res.converged
        elif self.prior == "onehot":
            res = self._fit_onehot(batch, state, full.Xf, full.Yf, full.M, n_bins, select)
            histories.append(res.history.assign(stage=("iteration", [1] * res.n_iter)))
            converged = res.converged
        hist = xr.concat(histories, dim="iteration")
        self.history_ = hist.assign_coords(iteration=np.arange(hist.sizes["iteration"]))
        self.n_iter_ = int(hist.sizes["iteration"])
        self.converged_ = bool(converged)
        self._theta = state["theta"]
        self._log_A = state["log_A"]
        self.n_units_ = N
        self._unit = batch.unit
        self._set_attributes()
        self.train_log_lik_ = float(self.history_["log_lik"].values[-1])
        return self

    def _fit_onehot(self, batch, state, Xf, Yf, M, n_bins, select):
        K = int(self.n_states)
        theta_free = state["theta"]
        N = theta_free.shape[2]
        st = {
            "free": theta_free,
            "theta": theta_free,
            "log_prior": torch.full(
                (1, N, N, 3), -math.log(3), dtype=theta_free.dtype, device=theta_free.device
            ),
            "classes": None,
        }

        def step(it):
            ll, gamma, xi = self._estep(batch, st["theta"], state["log_A"], state["log_pi0"])
            ll = ll.sum(1)
            state["log_A"] = self._transition_update(xi)
            Gm = gamma.permute(0, 3, 1, 2).reshape(1, K, M)
            nr = newton_mstep(Xf, Yf, Gm, st["free"], self.link, n_iter=1, select=select)
            st["free"] = nr.theta
            oh = onehot_update(
                nr.theta, nr.fisher, st["theta"], st["log_prior"], float(self.strength_floor)
            )
            st["theta"], st["log_prior"], st["classes"] = oh.theta, oh.log_prior, oh.classes
            return {
                "log_lik": float(ll[0]) / n_bins,
                "objective": float(ll[0] + oh.elbo_prior[0]) / n_bins,
                "n_active_restarts": 1.0,
            }

        res = fit_loop(
            step,
            max_iter=self.max_iter,
            tol=self.tol,
            monitor="objective",
            min_iter=3,
            verbose=self.verbose,
            desc="HMM-GLM (one-hot prior)",
        )
        state["theta"] = st["theta"]
        self._classes = st["classes"]
        self._log_prior = st["log_prior"]
        return res

    # ------------------------------------------------------------------ attributes
    def _set_attributes(self):
        theta = self._theta[0].detach().cpu().double().numpy()  # (K, N, P)
        K, N, P = theta.shape
        L = self.history_basis_.shape[0]
        coup = theta[..., :-1].reshape(K, N, N, L)
        unit = self._unit
        c2 = {"post": unit, "pre": unit} if unit is not None else {}
        self.coupling_ = xr.DataArray(coup, dims=("state", "post", "pre", "basis"), coords=c2)
        W = coup.sum(-1) if L > 1 else coup[..., 0]
        self.weights_ = xr.DataArray(W, dims=("state", "post", "pre"), coords=c2, name="weights")
        self.bias_ = xr.DataArray(
            theta[..., -1],
            dims=("state", "unit"),
            coords={"unit": unit} if unit is not None else {},
        )
        self.transition_ = xr.DataArray(
            self._log_A[0].detach().cpu().double().exp().numpy(), dims=("state", "state_next")
        )
        self.initial_ = xr.DataArray(
            self._log_pi0[0].detach().cpu().double().exp().numpy(), dims=("state",)
        )
        floor = float(self.strength_floor)
        if getattr(self, "_classes", None) is not None:
            adj = self._classes[0].cpu().numpy() - 1
            pp = self._log_prior[0].detach().cpu().double().exp().numpy()
        else:
            adj = np.sign(W) * (np.abs(W) >= floor)
            pp = np.stack([(adj == c).mean(0) for c in (-1, 0, 1)], -1)
        self.adjacency_ = xr.DataArray(
            adj.astype(np.int64), dims=("state", "post", "pre"), coords=c2, name="adjacency"
        )
        self.prior_prob_ = xr.DataArray(
            pp, dims=("post", "pre", "class"), coords={**c2, "class": list(CLASS_NAMES)}
        )
        if self.prior == "gaussian" and getattr(self, "_gprior", None) is not None:
            mean = self._gprior.mean[0, 0, :, :-1].cpu().double().numpy().reshape(N, N, L).sum(-1)
            self.prior_mean_ = xr.DataArray(mean, dims=("post", "pre"), coords=c2)
            self.prior_std_ = float(self._gprior.prec.reshape(-1)[0].double().rsqrt())
            padj = np.sign(mean) * (np.abs(mean) >= floor)
        else:
            padj = pp.argmax(-1) - 1
        self.prior_adjacency_ = xr.DataArray(
            padj.astype(np.int64), dims=("post", "pre"), coords=c2, name="prior_adjacency"
        )

    # ------------------------------------------------------------------ use a fitted model
    def _check_fitted_batch(self, spikes) -> SpikeBatch:
        if not hasattr(self, "_theta"):
            raise ValueError("this HMMGLM is not fitted yet; call fit or from_params first")
        batch = self._batch(spikes)
        if batch.Y.shape[-1] != self.n_units_:
            raise HMMGLMInputError(
                f"spikes has {batch.Y.shape[-1]} units but the model was fitted on {self.n_units_}"
            )
        return batch

    def _posterior_parts(self, spikes):
        batch = self._check_fitted_batch(spikes)
        theta = self._theta.to(self._device, self._dtype)
        log_A = self._log_A.to(self._device, self._dtype)
        log_pi0 = self._log_pi0.to(self._device, self._dtype)
        return batch, theta, log_A, log_pi0

    def score_trials(self, spikes) -> np.ndarray:
        """Log-likelihood ``log p(x_b)`` of each trial (float64 array)."""
        batch, theta, log_A, log_pi0 = self._posterior_parts(spikes)
        ll, _, _ = self._estep(batch, theta, log_A, log_pi0)
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
        batch = self._check_fitted_batch(spikes)
        return float(self.score_trials(spikes).sum() / int(batch.lengths.sum()))

    def posterior(self, spikes) -> xr.DataArray:
        """State posteriors ``("trial", "time", "state")`` (NaN on padded bins of short trials)."""
        batch, theta, log_A, log_pi0 = self._posterior_parts(spikes)
        _, gamma, _ = self._estep(batch, theta, log_A, log_pi0)
        return padded_dataarray(
            gamma[0].double().cpu().numpy(),
            batch,
            ("trial", "time", "state"),
            np.nan,
            "posterior",
        )

    def predict_states(self, spikes) -> xr.DataArray:
        """Viterbi state path ``("trial", "time")`` (-1 on padded bins of short trials)."""
        batch, theta, log_A, log_pi0 = self._posterior_parts(spikes)
        log_e = emission_loglik(batch.X, batch.Y, theta, self.link, batch.lgam)[0]
        vp = viterbi(log_e, log_A[0], log_pi0[0], batch.lengths)
        return padded_dataarray(vp.path.cpu().numpy(), batch, ("trial", "time"), -1, "states")

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
        weights : array (state, post, pre) or (state, post, pre, basis)
        bias : array (unit,) shared by all states, or (state, unit)
        transition : array (state, state_next), rows summing to 1
        initial : array (state,), optional
            Initial-state distribution (default uniform, as in the paper's likelihood).
        prior_prob : array (post, pre, 3), optional
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
            raise ValueError(f"weights has shape {np.shape(weights)}; expected (state, post, pre)")
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
        basis = m._setup()
        if basis.shape[0] != L:
            raise ValueError(
                f"weights have {L} basis coefficients but history has {basis.shape[0]}"
            )
        theta = np.concatenate([W.reshape(K, N, N * L), b[..., None]], -1)
        m._theta = torch.as_tensor(theta[None], dtype=m._dtype, device=m._device)
        with np.errstate(divide="ignore"):
            m._log_A = torch.as_tensor(np.log(A)[None], dtype=m._dtype, device=m._device)
            m._log_pi0 = torch.as_tensor(np.log(pi0)[None], dtype=m._dtype, device=m._device)
        m.n_units_ = N
        m._unit = None
        if prior_prob is not None:
            pp = np.asarray(prior_prob, dtype=float)
            m._classes = torch.as_tensor(np.sign(W.sum(-1)).astype(np.int64) + 1)[None]
            m._log_prior = torch.as_tensor(np.log(pp))[None]
        m._set_attributes()
        return m
