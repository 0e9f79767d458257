"""Kernels of the NTF solver (:func:`neuroana.connectome.ntf`): dimension tree, HALS sweeps, extrapolation.

What makes one outer iteration cheap, for a tensor of any order:

* **Dimension tree, two passes over the data.** The *pivot* is the largest mode ``p``. Its MTTKRP
  is one GEMM of the unfolding ``X_(p)`` (a view when ``p`` is the first mode) with the Khatri-Rao
  product of the *other* modes' factors, which has ``size(X) * R / I_p`` entries (0.5 % of the
  tensor for 1770 x 600 x 20 at rank 8); the Khatri-Rao product involving the pivot is never formed.
  After the pivot's update one more GEMM gives the partial contraction ``T = X x_p A_p``
  (``size(X) * R / I_p`` entries); every other mode's MTTKRP is a small contraction of ``T``.
* **Grams reused, loss for free.** ``||X - [[A]]||^2 = ||X||^2 - 2 <M_n, A_n> + <G_n, A_n^T A_n>``
  from the last mode's MTTKRP ``M_n`` and Gram product ``G_n``; no reconstruction is formed.
* **Exact weighted / masked fitting.** With weights ``W`` every row of mode ``n`` has its own normal
  equations ``H_i = sum W_i.. (kr kr^T)`` (a tree contraction of ``W`` with the factors' packed row
  outer products, ``R (R + 1) / 2`` columns) and right-hand side ``sum W_i.. X_i.. kr`` (the tree on
  ``W * X``), so HALS minimises ``sum W (X - [[A]])^2`` exactly; masked entries carry weight 0 and
  are zeroed, so they have no influence. ``W`` is stored reduced along every mode it is constant
  on (a neuron missing in one animal masks whole fibres): that mode then enters through its Gram.
* **Accelerated HALS** (Gillis and Glineur 2012): ``n_inner`` column sweeps per mode update, which
  cost ``O(I_n R^2)`` against the ``O(size(X) R)`` of the passes over the data.
* **Extrapolation with restarts** (HER; Ang, Cohen, Hien and Gillis 2019): after each mode's update
  the factor is extrapolated, ``A + beta (A - A_prev)`` (projected on ``>= 0``), and the next updates
  start from and contract with the extrapolated factors. The loss of the point returned is computed
  exactly every iteration; a restart whose loss went up drops the extrapolation (``beta / eta``),
  otherwise ``beta`` grows (``gamma``, capped by ``beta_bar``). Every restart of a batch keeps its own
  ``beta``; the bookkeeping is branch-free tensor arithmetic (no host round trip on a GPU).
* **Restarts batched.** Factors are ``(B, I_n, R)``; every restart runs in the same kernels.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import torch

from neuroana.connectome.errors import ConnectomeInputError

_EPS = 1e-12
#: HER constants (Ang et al. 2019): initial beta, shrink on a failed step, growth, cap growth
_BETA0, _ETA, _GAMMA, _GAMMA_BAR = 0.5, 1.5, 1.05, 1.01


class _Tree:
    """A tensor unfolded at the pivot mode, with the tree's two GEMMs and the small contractions.

    ``t`` may have size-1 dims (a weight tensor reduced along the modes it is constant on); the
    matrices passed for such a mode must then have size 1 along their row dim too.
    """

    def __init__(self, t: torch.Tensor, pivot: int):
        self.order = t.ndim
        self.pivot = pivot
        self.rest = [m for m in range(t.ndim) if m != pivot]
        self.rest_shape = [t.shape[m] for m in self.rest]
        self.size_p = t.shape[pivot]
        self.mat = t.movedim(pivot, 0).reshape(self.size_p, -1)
        if not self.mat.is_contiguous():
            self.mat = self.mat.contiguous()

    def pivot_mttkrp(self, mats: Sequence[torch.Tensor]) -> torch.Tensor:
        """``(B, I_p, K)``: the pivot's MTTKRP with ``mats[m]`` ``(B, I_m, K)`` for the other modes."""
        kr = None
        for i, m in enumerate(self.rest):
            view = [mats[m].shape[0]] + [1] * len(self.rest) + [mats[m].shape[2]]
            view[1 + i] = mats[m].shape[1]
            f = mats[m].reshape(view)
            kr = f if kr is None else kr * f
        bsz, k = kr.shape[0], kr.shape[-1]
        kr = kr.expand([bsz, *self.rest_shape, k]).reshape(bsz, -1, k)
        kr2 = kr.permute(1, 0, 2).reshape(-1, bsz * k)  # (rest, B*K)
        out = kr2.T @ self.mat.T  # (B*K, I_p): the layout BLAS handles best for a thin product
        return out.reshape(bsz, k, self.size_p).transpose(1, 2)

    def partial(self, a_p: torch.Tensor) -> torch.Tensor:
        """``T = X x_p a_p``: ``(B, K, *rest_shape)`` from the pivot's ``(B, I_p, K)`` matrix."""
        bsz, _, k = a_p.shape
        a2 = a_p.expand(bsz, self.size_p, k).permute(1, 0, 2).reshape(self.size_p, bsz * k)
        return (a2.T @ self.mat).reshape(bsz, k, *self.rest_shape)

    def mode_mttkrp(self, t: torch.Tensor, mats: Sequence[torch.Tensor], n: int) -> torch.Tensor:
        """``(B, I_n, K)``: MTTKRP of non-pivot mode ``n`` from ``T`` and the other modes' mats."""
        letters = string.ascii_letters
        dims = {m: letters[2 + i] for i, m in enumerate(self.rest)}
        operands, subs = [t], ["bz" + "".join(dims[m] for m in self.rest)]
        for m in self.rest:
            if m != n:
                operands.append(mats[m])
                subs.append("b" + dims[m] + "z")
        out = torch.einsum(",".join(subs) + "->b" + dims[n] + "z", *operands)
        return out.expand(t.shape[0], self.rest_shape[self.rest.index(n)], t.shape[1])


def _triu(r: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    return tuple(torch.triu_indices(r, r, device=device))


def _packed_outer(f: torch.Tensor, iu) -> torch.Tensor:
    """``(B, I, R) -> (B, I, R(R+1)/2)`` upper triangles of the row outer products."""
    return f[..., iu[0]] * f[..., iu[1]]


def _unpack(h: torch.Tensor, iu, r: int) -> torch.Tensor:
    """``(B, I, R(R+1)/2) -> (B, I, R, R)`` symmetric."""
    out = h.new_zeros(*h.shape[:-1], r, r)
    out[..., iu[0], iu[1]] = h
    out[..., iu[1], iu[0]] = h
    return out


def _sum_sq(a: torch.Tensor, b: torch.Tensor | None = None, chunk: int = 1 << 20) -> float:
    """``sum(a * b)`` (``b = a`` by default) accumulated in float64, a chunk at a time."""
    a = a.reshape(-1)
    b = a if b is None else b.reshape(-1)
    if a.dtype == torch.float64:
        return float(torch.dot(a, b))
    return float(
        sum(
            torch.dot(a[i : i + chunk].double(), b[i : i + chunk].double())
            for i in range(0, a.numel(), chunk)
        )
    )


def _gram(f: torch.Tensor) -> torch.Tensor:
    return f.transpose(1, 2) @ f


class Problem:
    """The data of one fit: tensor (times weights) and reduced weights, unfolded at the pivot."""

    def __init__(self, x: torch.Tensor, w: torch.Tensor | None):
        self.order = x.ndim
        self.shape = tuple(x.shape)
        self.pivot = max(range(x.ndim), key=lambda m: x.shape[m])
        self.weighted = w is not None
        if w is None:
            self.norm2 = _sum_sq(x)
            self.xt = _Tree(x, self.pivot)
            self.wt = None
        else:
            wx = w * x
            self.norm2 = _sum_sq(wx, x)
            self.xt = _Tree(wx, self.pivot)  # the weighted right-hand sides
            for m in range(x.ndim):  # keep W only along the modes it varies on
                first = w.narrow(m, 0, 1)
                if w.shape[m] > 1 and bool((w == first).all()):
                    w = first
            self.w_shape = tuple(w.shape)
            self.wt = _Tree(w, self.pivot)
        if self.norm2 <= 0:
            raise ConnectomeInputError(
                "the (observed part of the) tensor is all zeros; expected some positive entries"
            )

    # ---- weighted normal equations -------------------------------------------------------
    def wmat(self, f: torch.Tensor, m: int) -> torch.Tensor:
        """Mode ``m``'s matrix for the weight tree: packed row outers, or their sum (the packed
        Gram) where ``W`` is constant along ``m``."""
        r = f.shape[2]
        if getattr(self, "_iu_r", None) != r:
            self.iu, self._iu_r = _triu(r, f.device), r
        po = _packed_outer(f, self.iu)
        return po if self.w_shape[m] > 1 else po.sum(1, keepdim=True)

    def _wmats(self, factors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [self.wmat(f, m) for m, f in enumerate(factors)]

    def _unpack(self, h: torch.Tensor, r: int) -> torch.Tensor:
        return _unpack(h, self.iu, r)

    def inner_and_norm(self, factors: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``<X, Xhat>_W`` and ``||Xhat||_W^2`` per restart (shape ``(B,)``, float64)."""
        p = self.pivot
        a = factors[p]
        m = self.xt.pivot_mttkrp(factors)
        inner = (m.double() * a.double()).sum(dim=(1, 2))
        if not self.weighted:
            g = torch.ones_like(_gram(a))
            for f in factors:
                g = g * _gram(f)
            return inner, g.double().sum(dim=(1, 2))
        h = self._unpack(self.wt.pivot_mttkrp(self._wmats(factors)), a.shape[2])
        model = torch.einsum("bir,birs,bis->b", a.double(), h.double(), a.double())
        return inner, model


# --------------------------------------------------------------------------------------------
# HALS sweeps
# --------------------------------------------------------------------------------------------


def hals_shared(a: torch.Tensor, m: torch.Tensor, g: torch.Tensor, n_inner: int) -> torch.Tensor:
    """HALS sweeps for ``min_{a>=0} <a, a g> - 2 <m, a>`` with one Gram ``g`` (B, R, R); new ``a``.

    Works on the transposed ``(B, R, I)`` layout so that every column is contiguous.
    """
    at = a.transpose(1, 2).contiguous()
    mt = m.transpose(1, 2)
    inv = 1.0 / torch.diagonal(g, dim1=1, dim2=2).clamp_min(_EPS)  # (B, R)
    r = at.shape[1]
    for _ in range(n_inner):
        for k in range(r):
            # a_k <- max(0, a_k + (m_k - g_k. a) / g_kk)
            upd = torch.baddbmm(mt[:, k : k + 1], g[:, k : k + 1], at, alpha=-1.0)
            at[:, k : k + 1].addcmul_(upd, inv[:, k].view(-1, 1, 1)).clamp_(min=0.0)
    return at.transpose(1, 2)


def hals_rowwise(a: torch.Tensor, m: torch.Tensor, h: torch.Tensor, n_inner: int) -> torch.Tensor:
    """HALS sweeps with one Gram per row: ``h`` is (B, I, R, R); returns the new ``a``."""
    a = a.clone()
    r = a.shape[2]
    diag = torch.diagonal(h, dim1=2, dim2=3)  # (B, I, R)
    for _ in range(n_inner):
        for k in range(r):
            upd = m[:, :, k] - (h[:, :, :, k] * a).sum(-1)
            d = diag[:, :, k]
            step = torch.where(d > _EPS, upd / d.clamp_min(_EPS), torch.zeros_like(upd))
            a[:, :, k] = (a[:, :, k] + step).clamp_min(0.0)
    return a


# --------------------------------------------------------------------------------------------
# one outer iteration with extrapolation
# --------------------------------------------------------------------------------------------


class State:
    """Iterates of a batched fit: ``prev`` (last HALS outputs), ``hat`` (extrapolated, where the next
    updates start), ``point`` (the factors whose exact loss is ``loss``), and HER's per-restart
    ``beta``, ``beta_bar``."""

    def __init__(self, factors: list[torch.Tensor], extrapolate: bool):
        bsz = factors[0].shape[0]
        dev = factors[0].device
        self.prev = list(factors)
        self.hat = list(factors)
        self.point = list(factors)
        self.loss: torch.Tensor | None = None
        self.extrapolate = extrapolate
        f64 = dict(device=dev, dtype=torch.float64)
        self.beta = torch.full((bsz,), _BETA0 if extrapolate else 0.0, **f64)
        self.beta_bar = torch.ones(bsz, **f64)


def _extrapolated(new: torch.Tensor, old: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    b = beta.to(new.dtype).view(-1, 1, 1)
    return (new + b * (new - old)).clamp_min(0.0)


def _hals_mode(prob: Problem, n: int, start, hats, t_x, t_w, n_inner: int):
    """Update mode ``n`` from ``start``; returns ``(new, mttkrp, gram_or_rowgram)``."""
    p = prob.pivot
    if n == p:
        m = prob.xt.pivot_mttkrp(hats)
    else:
        m = prob.xt.mode_mttkrp(t_x, hats, n)
    r = start.shape[2]
    if not prob.weighted:
        g = None
        for j, f in enumerate(hats):
            if j != n:
                g = _gram(f) if g is None else g * _gram(f)
        return hals_shared(start, m, g, n_inner), m, g
    wm = prob._wmats(hats)
    if n == p:
        hp = prob.wt.pivot_mttkrp(wm)
    else:
        hp = prob.wt.mode_mttkrp(t_w, wm, n)
    h = prob._unpack(hp, r)
    if h.shape[1] == 1:
        return hals_shared(start, m, h[:, 0], n_inner), m, h
    return hals_rowwise(start, m, h, n_inner), m, h


def iterate(prob: Problem, st: State, n_inner: int) -> torch.Tensor:
    """One outer iteration (every mode once); updates ``st`` and returns the loss ``(B,)``."""
    p, order = prob.pivot, prob.order
    modes = [p] + [m for m in range(order) if m != p]
    hats = list(st.hat)
    new = list(st.prev)
    t_x = t_w = None
    for i, n in enumerate(modes):
        a, m, g = _hals_mode(prob, n, hats[n], hats, t_x, t_w, n_inner)
        new[n] = a
        last = i == order - 1
        if not last:
            hats[n] = _extrapolated(a, st.prev[n], st.beta) if st.extrapolate else a
        if n == p:
            t_x = prob.xt.partial(hats[p])
            if prob.weighted:
                t_w = prob.wt.partial(prob.wmat(hats[p], p))
    # exact loss of the point (extrapolated modes, last mode as updated)
    n = modes[-1]
    a = new[n].double()
    inner = (m.double() * a).sum(dim=(1, 2))
    if prob.weighted:
        model = torch.einsum("bir,birs,bis->b", a, g.expand(-1, a.shape[1], -1, -1).double(), a)
    else:
        model = (g.double() * _gram(a)).sum(dim=(1, 2))
    loss = (prob.norm2 - 2.0 * inner + model).clamp_min(0.0)
    point = hats[:n] + [new[n]] + hats[n + 1 :]
    if st.extrapolate:
        ok = loss <= st.loss if st.loss is not None else torch.ones_like(loss, dtype=torch.bool)
        hats[n] = _extrapolated(new[n], st.prev[n], st.beta)
        okf = ok.view(-1, 1, 1)
        hats = [torch.where(okf, h, a_) for h, a_ in zip(hats, new, strict=True)]
        grown = torch.minimum(st.beta_bar, _GAMMA * st.beta)
        st.beta_bar = torch.where(ok, (_GAMMA_BAR * st.beta_bar).clamp_max(1.0), st.beta)
        st.beta = torch.where(ok, grown, st.beta / _ETA)
    else:
        hats = list(new)
    st.prev, st.hat, st.point, st.loss = new, hats, point, loss
    rebalance(st)
    return loss


def rebalance(st: State) -> None:
    """Same per-column scales on ``prev``, ``hat`` and ``point`` so every mode's column of ``hat``
    has the geometric-mean norm; no model changes (the scales multiply to one across modes)."""
    norms = [f.norm(dim=1) for f in st.hat]  # (B, R)
    logs = torch.stack([torch.log(nm.clamp_min(1e-300)) for nm in norms])
    target = torch.exp(logs.mean(0))
    alive = torch.stack([nm > 0 for nm in norms]).all(0)
    scales = [torch.where(alive, target / nm.clamp_min(1e-300), 1.0).unsqueeze(1) for nm in norms]
    st.prev = [f * s for f, s in zip(st.prev, scales, strict=True)]
    st.hat = [f * s for f, s in zip(st.hat, scales, strict=True)]
    st.point = [f * s for f, s in zip(st.point, scales, strict=True)]
