"""Linear recurrent network whose single-neuron gains scale the feed-forward drive.

Model (reconstructed from the abstract of Duong, Bredenberg, Heeger & Simoncelli 2023; the paper body
could not be read, see ``../shared/research/gain_control.md``):

    tau dr/dt = -r + W r + diag(g) f(theta)            (input-gain placement)
    r*(theta) = M diag(g) f(theta),   M = (I - W)^-1

``f_i(theta)`` is the feed-forward tuning of neuron ``i`` (von Mises or Gaussian), ``W`` the fixed
recurrent weights, ``g > 0`` the adaptive gains. The steady state is linear in ``g``; that is what
makes the optimal gains analytic for some objectives (:mod:`neuroana.adaptation.objectives`). The
dynamics are stable when the spectral radius of ``W`` is below 1 (a sufficient condition that the
constructor enforces).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import xarray as xr

from neuroana.adaptation.errors import AdaptationInputError, UnstableNetworkError

_TUNINGS = ("von_mises", "gaussian")
_GEOMETRIES = ("ring", "line")


# --------------------------------------------------------------------------- functional core
def wrapped_difference(a: np.ndarray, b: np.ndarray, period: float | None) -> np.ndarray:
    """``a - b``, wrapped into ``[-period/2, period/2)`` on a ring (no wrap when period is None)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if period is None:
        return d
    return (d + period / 2.0) % period - period / 2.0


def tuning_matrix(
    preferred: np.ndarray,
    stimuli: np.ndarray,
    *,
    kind: str,
    width: float,
    amplitude: float,
    baseline: float,
    period: float | None,
) -> np.ndarray:
    """Feed-forward drive ``F[i, k] = f_i(stimuli[k])``, shape (neuron, stimulus).

    von Mises (ring only): ``amplitude * exp((cos(2 pi d / period) - 1) / w^2) + baseline`` with
    ``w = 2 pi width / period`` (so ``width`` is approximately the Gaussian s.d. in stimulus units for
    narrow tuning). Gaussian: ``amplitude * exp(-d^2 / (2 width^2)) + baseline`` with ``d`` the wrapped
    difference on a ring and the plain difference on a line.
    """
    d = wrapped_difference(stimuli[None, :], preferred[:, None], period)
    if kind == "von_mises":
        if period is None:
            raise AdaptationInputError(
                "von Mises tuning needs a ring geometry; use tuning='gaussian'"
            )
        w = 2 * np.pi * width / period
        shape = np.exp((np.cos(2 * np.pi * d / period) - 1.0) / w**2)
    else:
        shape = np.exp(-(d**2) / (2.0 * width**2))
    return amplitude * shape + baseline


def ring_kernel_weights(
    preferred: np.ndarray,
    *,
    recurrence: float,
    kernel_width: float,
    inhibition: float,
    period: float | None,
) -> np.ndarray:
    """Recurrent weights from a distance kernel, scaled to spectral radius ``|recurrence|``.

    ``k(d) = exp(-d^2 / (2 kernel_width^2)) - inhibition * mean_d exp(...)`` (``d`` wrapped on a ring,
    which makes ``W`` symmetric circulant), then ``W = recurrence * K / rho(K)``. Negative
    ``recurrence`` flips the sign of the whole kernel (net inhibitory recurrence).
    """
    d = wrapped_difference(preferred[:, None], preferred[None, :], period)
    k = np.exp(-(d**2) / (2.0 * kernel_width**2))
    k = k - inhibition * k.mean()
    rho = np.max(np.abs(np.linalg.eigvalsh(0.5 * (k + k.T))))
    if rho == 0 or recurrence == 0:
        return np.zeros_like(k)
    return recurrence * k / rho


def spectral_radius(W: np.ndarray) -> float:
    """Largest absolute eigenvalue of ``W``."""
    return float(np.max(np.abs(np.linalg.eigvals(W)))) if W.size else 0.0


def steady_state_dense(W: torch.Tensor, g: torch.Tensor, F: torch.Tensor) -> torch.Tensor:
    """``r = (I - W)^-1 diag(g) F`` by an LU solve; batch dims lead (``W [..., N, N]``, ``g [..., N]``,
    ``F [..., N, K]``)."""
    eye = torch.eye(W.shape[-1], dtype=W.dtype, device=W.device)
    return torch.linalg.solve(eye - W, g[..., :, None] * F)


def circulant_first_column(W: np.ndarray, atol: float = 1e-10) -> np.ndarray | None:
    """First column ``c`` of ``W`` when ``W[i, j] = c[(i - j) mod N]`` (circulant), else None."""
    n = W.shape[0]
    c = W[:, 0]
    idx = (np.arange(n)[:, None] - np.arange(n)[None, :]) % n
    return c.copy() if np.allclose(W, c[idx], atol=atol, rtol=0) else None


def steady_state_fft(c: torch.Tensor, g: torch.Tensor, F: torch.Tensor) -> torch.Tensor:
    """Steady state for circulant ``W`` with first column ``c``: ``r = ifft(fft(gF) / (1 - fft(c)))``
    along the neuron axis (``F [..., N, K]``); O(N log N) per stimulus instead of an N^3 solve."""
    x = g[..., :, None] * F
    spec = 1.0 - torch.fft.fft(c, dim=-1)
    r = torch.fft.ifft(torch.fft.fft(x, dim=-2) / spec[..., :, None], dim=-2)
    return r.real


class Trajectory(NamedTuple):
    """Result of :meth:`RecurrentGainNetwork.simulate` as plain arrays (time, neuron, stimulus)."""

    time: np.ndarray
    rates: np.ndarray


# --------------------------------------------------------------------------- public network
class RecurrentGainNetwork:
    """N neurons with preferred stimuli on a ring or a line, fixed recurrence, adaptive gains.

    Parameters
    ----------
    n_neurons : int
        Number of neurons; preferred stimuli evenly spaced over ``[-period/2, period/2)`` on a ring,
        or over ``line_range`` on a line. Ignored when ``preferred`` is given.
    stimuli : array_like or int
        Stimulus grid (stimulus units, degrees by default) or the number of evenly spaced stimuli.
    geometry : {"ring", "line"}
        Ring (orientation, periodic with ``period``) or line (no wrap-around).
    period : float
        Period of the ring in stimulus units (180 for orientation in degrees).
    tuning : {"von_mises", "gaussian"}
        Feed-forward tuning shape (see :func:`tuning_matrix`).
    tuning_width, amplitude, baseline : float
        Tuning parameters: width in stimulus units, peak height above baseline, untuned offset.
    recurrence : float
        Spectral radius of the kernel-built ``W`` (signed; |recurrence| < 1 for stability).
    kernel_width, inhibition : float
        Width of the recurrent kernel (stimulus units) and the fraction of its mean subtracted.
    W : array_like, optional
        Explicit recurrent weights (N x N); overrides the kernel.
    gains : array_like, optional
        Initial gains (positive), default all ones.
    tau : float
        Time constant of the rate dynamics.
    preferred : array_like, optional
        Explicit preferred stimuli.
    line_range : (float, float)
        Span of preferred stimuli on a line.

    Raises
    ------
    UnstableNetworkError
        When the spectral radius of ``W`` is >= 1.
    AdaptationInputError
        For bad sizes, widths, gains or geometry.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.adaptation import RecurrentGainNetwork
    >>> net = RecurrentGainNetwork(n_neurons=12, stimuli=24, recurrence=0.5)
    >>> r_dense = net.steady_state(method="dense")
    >>> bool(np.allclose(r_dense, net.steady_state(method="fft")))
    True
    """

    def __init__(
        self,
        n_neurons: int = 36,
        stimuli: np.ndarray | int = 72,
        *,
        geometry: str = "ring",
        period: float = 180.0,
        tuning: str = "von_mises",
        tuning_width: float = 20.0,
        amplitude: float = 1.0,
        baseline: float = 0.05,
        recurrence: float = 0.6,
        kernel_width: float = 20.0,
        inhibition: float = 0.0,
        W: np.ndarray | None = None,
        gains: np.ndarray | None = None,
        tau: float = 1.0,
        preferred: np.ndarray | None = None,
        line_range: tuple[float, float] = (-90.0, 90.0),
    ) -> None:
        if geometry not in _GEOMETRIES:
            raise AdaptationInputError(f"geometry={geometry!r}; expected one of {_GEOMETRIES}")
        if tuning not in _TUNINGS:
            raise AdaptationInputError(f"tuning={tuning!r}; expected one of {_TUNINGS}")
        for name, val in (
            ("tuning_width", tuning_width),
            ("kernel_width", kernel_width),
            ("tau", tau),
        ):
            if not np.isfinite(val) or val <= 0:
                raise AdaptationInputError(f"{name}={val!r}; expected a positive number")
        if geometry == "ring" and (not np.isfinite(period) or period <= 0):
            raise AdaptationInputError(f"period={period!r}; expected a positive number")
        self.geometry = geometry
        self.period = float(period) if geometry == "ring" else None
        self.tuning_kind = tuning
        self.tuning_width = float(tuning_width)
        self.amplitude = float(amplitude)
        self.baseline = float(baseline)
        self.tau = float(tau)
        lo, hi = (-period / 2.0, period / 2.0) if geometry == "ring" else line_range
        if preferred is None:
            if int(n_neurons) < 1:
                raise AdaptationInputError(f"n_neurons={n_neurons!r}; expected a positive integer")
            n = int(n_neurons)
            preferred = (
                lo + (hi - lo) * np.arange(n) / n if geometry == "ring" else np.linspace(lo, hi, n)
            )
        self.preferred = np.asarray(preferred, dtype=float).ravel()
        if np.isscalar(stimuli) or np.ndim(stimuli) == 0:
            k = int(stimuli)
            if k < 1:
                raise AdaptationInputError(
                    f"stimuli={stimuli!r}; expected a positive count or a grid"
                )
            stimuli = (
                lo + (hi - lo) * np.arange(k) / k if geometry == "ring" else np.linspace(lo, hi, k)
            )
        self.stimuli = np.asarray(stimuli, dtype=float).ravel()
        if not np.all(np.isfinite(self.stimuli)):
            raise AdaptationInputError("stimuli contain non-finite values")
        n = self.preferred.size
        self.F = tuning_matrix(
            self.preferred,
            self.stimuli,
            kind=tuning,
            width=self.tuning_width,
            amplitude=self.amplitude,
            baseline=self.baseline,
            period=self.period,
        )
        if W is None:
            W = ring_kernel_weights(
                self.preferred,
                recurrence=float(recurrence),
                kernel_width=float(kernel_width),
                inhibition=float(inhibition),
                period=self.period,
            )
        W = np.asarray(W, dtype=float)
        if W.shape != (n, n):
            raise AdaptationInputError(
                f"W has shape {W.shape}; expected ({n}, {n}) to match {n} preferred stimuli"
            )
        if not np.all(np.isfinite(W)):
            raise AdaptationInputError("W contains non-finite values")
        rho = spectral_radius(W)
        if rho >= 1.0:
            raise UnstableNetworkError(
                f"recurrent weights have spectral radius {rho:.4g} >= 1: the dynamics "
                "tau dr/dt = -r + W r + G f are not guaranteed stable; expected spectral radius < 1"
            )
        self.W = W
        self.spectral_radius_ = rho
        self._circ = circulant_first_column(W)
        self.gains = np.ones(n) if gains is None else self._check_gains(gains)

    # ------------------------------------------------------------------ helpers
    @property
    def n_neurons(self) -> int:
        return self.preferred.size

    @property
    def is_circulant(self) -> bool:
        """True when ``W`` is circulant (the FFT path applies)."""
        return self._circ is not None

    def _check_gains(self, gains: np.ndarray) -> np.ndarray:
        g = np.asarray(gains, dtype=float)
        if g.shape != (self.n_neurons,):
            raise AdaptationInputError(
                f"gains have shape {g.shape}; expected ({self.n_neurons},), one per neuron"
            )
        if not np.all(np.isfinite(g)) or np.any(g <= 0):
            bad = g[~(np.isfinite(g) & (g > 0))]
            raise AdaptationInputError(f"gains must be finite and positive; got values {bad[:5]}")
        return g

    def resolvent(self) -> np.ndarray:
        """``M = (I - W)^-1`` (dense)."""
        return np.linalg.inv(np.eye(self.n_neurons) - self.W)

    def with_gains(self, gains: np.ndarray) -> RecurrentGainNetwork:
        """A copy sharing tuning and ``W`` with different gains."""
        new = object.__new__(RecurrentGainNetwork)
        new.__dict__.update(self.__dict__)
        new.gains = self._check_gains(gains)
        return new

    def torch_tensors(
        self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float64
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W, F)`` as tensors."""
        return (
            torch.as_tensor(self.W, dtype=dtype, device=device),
            torch.as_tensor(self.F, dtype=dtype, device=device),
        )

    # ------------------------------------------------------------------ responses
    def steady_state(self, gains: np.ndarray | None = None, *, method: str = "auto") -> np.ndarray:
        """Steady-state responses ``r[i, k]`` (neuron, stimulus) for ``gains`` (default ``self.gains``).

        ``method``: ``"dense"`` (LU solve), ``"fft"`` (circulant ``W`` only) or ``"auto"`` (FFT when
        circulant).
        """
        g = self.gains if gains is None else self._check_gains(gains)
        if method not in ("auto", "dense", "fft"):
            raise AdaptationInputError(f"method={method!r}; expected 'auto', 'dense' or 'fft'")
        if method == "fft" and self._circ is None:
            raise AdaptationInputError(
                "method='fft' needs a circulant W (ring kernel); use 'dense'"
            )
        gt = torch.as_tensor(g, dtype=torch.float64)
        Ft = torch.as_tensor(self.F, dtype=torch.float64)
        if method == "fft" or (method == "auto" and self._circ is not None):
            r = steady_state_fft(torch.as_tensor(self._circ, dtype=torch.float64), gt, Ft)
        else:
            r = steady_state_dense(torch.as_tensor(self.W, dtype=torch.float64), gt, Ft)
        return r.numpy()

    def tuning_curves(self, gains: np.ndarray | None = None) -> xr.DataArray:
        """Steady-state tuning curves as a DataArray with dims ``("neuron", "stimulus")``."""
        return xr.DataArray(
            self.steady_state(gains),
            dims=("neuron", "stimulus"),
            coords={"neuron": self.preferred, "stimulus": self.stimuli},
            name="response",
        )

    def simulate(
        self,
        t: np.ndarray | float,
        *,
        gains: np.ndarray | None = None,
        r0: np.ndarray | None = None,
        dt: float | None = None,
    ) -> xr.DataArray:
        """Integrate ``tau dr/dt = -r + W r + diag(g) f`` with classical RK4 from ``r0`` (default 0).

        Parameters
        ----------
        t : float or array_like
            End time, or the increasing times at which to report the state (start at ``t[0]``,
            default 0 when a scalar is given).
        gains : array_like, optional
            Gains held fixed during the run.
        r0 : array_like, optional
            Initial state, shape (neuron, stimulus) or (neuron,).
        dt : float, optional
            RK4 step (default ``tau / 20``).

        Returns
        -------
        xarray.DataArray
            Rates with dims ``("time", "neuron", "stimulus")``; its last time slice approaches
            :meth:`steady_state` as ``t -> inf``.
        """
        g = self.gains if gains is None else self._check_gains(gains)
        times = np.atleast_1d(np.asarray(t, dtype=float))
        if times.size == 1:
            times = np.array([0.0, float(times[0])])
        if np.any(np.diff(times) < 0):
            raise AdaptationInputError("t must be increasing")
        h = self.tau / 20.0 if dt is None else float(dt)
        if h <= 0:
            raise AdaptationInputError(f"dt={dt!r}; expected a positive step")
        drive = g[:, None] * self.F
        A = self.W - np.eye(self.n_neurons)
        r = (
            np.zeros_like(drive)
            if r0 is None
            else np.broadcast_to(
                np.asarray(r0, float).reshape(self.n_neurons, -1), drive.shape
            ).copy()
        )

        def rhs(x):
            return (A @ x + drive) / self.tau

        out = [r.copy()]
        for t0, t1 in zip(times[:-1], times[1:], strict=True):
            n_steps = max(1, int(np.ceil((t1 - t0) / h)))
            hh = (t1 - t0) / n_steps
            for _ in range(n_steps):
                k1 = rhs(r)
                k2 = rhs(r + 0.5 * hh * k1)
                k3 = rhs(r + 0.5 * hh * k2)
                k4 = rhs(r + hh * k3)
                r = r + hh / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
            out.append(r.copy())
        return xr.DataArray(
            np.stack(out),
            dims=("time", "neuron", "stimulus"),
            coords={"time": times, "neuron": self.preferred, "stimulus": self.stimuli},
            name="rate",
        )

    def __repr__(self) -> str:
        return (
            f"RecurrentGainNetwork(n_neurons={self.n_neurons}, n_stimuli={self.stimuli.size}, "
            f"geometry={self.geometry!r}, spectral_radius={self.spectral_radius_:.3g})"
        )
