"""The spike-token transformer: fusion blocks, continuous-time embedding, factorised heads, KV cache.

Tensor-level core. A batch is a dict of tensors (see :func:`neuroana.pretrain.train.to_batch`):

- ``cur_unit (B, Lc)`` vocabulary index, -1 padding; ``cur_bin (B, Lc)`` time-bin class;
  ``cur_len (B,)``;
- ``past_unit (B, Lp)``, ``past_offset (B, Lp)`` seconds from the current-window start (negative);
- optional ``mod_<name>_values (B, M, d)``, ``mod_<name>_offset (B, M)``, ``mod_<name>_valid (B, M)``.

The model reads ``[SOS] + current tokens`` with causal self-attention and cross-attends to a memory of
``[null ‖ past tokens ‖ modality tokens]``. Output position ``i`` predicts current token ``i`` as
``p(bin) * p(unit | bin)``; the bin head has one extra class, *end of window*, predicted after the
last token. A token's input embedding uses its bin start (current window; so the sequence likelihood
is the likelihood of the window's count matrix) or its continuous offset (past window, modalities).
Classes that would break the canonical (bin, unit) order are masked (:func:`canonical_order_mask`),
so the model is a normalised distribution over count matrices, comparable with a Poisson GLM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

SIZES: dict[str, dict[str, int]] = {
    "tiny": {"d_model": 64, "n_heads": 4, "n_blocks": 2},
    "base": {"d_model": 384, "n_heads": 8, "n_blocks": 8},  # ~19 M parameters
    "large": {"d_model": 768, "n_heads": 12, "n_blocks": 12},  # ~115 M parameters
}


@dataclass(frozen=True)
class ModelConfig:
    """Architecture hyper-parameters (``n_units`` grows with the vocabulary)."""

    n_units: int
    n_dt: int
    resolution: float
    window_cur: float
    window_past: float
    d_model: int = 64
    n_heads: int = 4
    n_blocks: int = 2
    mlp_ratio: int = 4
    dropout: float = 0.0
    modality_dims: tuple = field(default_factory=tuple)  # ((name, dim), ...)
    behaviour_dim: int = 0
    poisson_head: bool = False
    contrastive_dim: int = 32

    @classmethod
    def from_size(cls, size: str, **kw) -> ModelConfig:
        if size not in SIZES:
            raise ValueError(f"size={size!r}; expected one of {sorted(SIZES)}")
        return cls(**{**SIZES[size], **kw})


class ModelOutput(NamedTuple):
    h: torch.Tensor  # (B, Lc+1, d) final states
    dt_logits: torch.Tensor  # (B, Lc+1, n_dt+1)
    id_logits: torch.Tensor  # (B, Lc+1, n_units), conditioned on the teacher-forced bin
    pooled: torch.Tensor  # (B, d) masked mean of the final states
    behaviour: torch.Tensor | None  # (B, behaviour_dim)
    poisson_lograte: torch.Tensor | None  # (B, n_dt, n_units)
    contrastive: tuple | None  # (neural (B, c), modality (B, c), logit_scale)
    attention: list | None  # per block: cross-attention probs (B, h, Lc+1, M)


class TimeEmbedding(nn.Module):
    """Continuous time (seconds) -> ``d`` features: sin/cos at geometric periods, then a Linear."""

    def __init__(self, d: int, min_period: float, max_period: float, n_freq: int = 16):
        super().__init__()
        periods = torch.logspace(math.log10(min_period), math.log10(max_period), n_freq)
        self.register_buffer("omega", 2 * math.pi / periods, persistent=False)
        self.proj = nn.Linear(2 * n_freq, d)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        ang = t.float().unsqueeze(-1) * self.omega
        return self.proj(torch.cat([ang.sin(), ang.cos()], dim=-1))


class Attention(nn.Module):
    """Multi-head attention over ``F.scaled_dot_product_attention``, with an explain path."""

    def __init__(self, d: int, n_heads: int, dropout: float):
        super().__init__()
        if d % n_heads:
            raise ValueError(f"d_model={d} is not divisible by n_heads={n_heads}")
        self.h, self.dh, self.dropout = n_heads, d // n_heads, dropout
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.o = nn.Linear(d, d)

    def _split(self, x):
        B, L, _ = x.shape
        return x.view(B, L, self.h, self.dh).transpose(1, 2)

    def keys_values(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.kv(src).chunk(2, dim=-1)
        return self._split(k), self._split(v)

    def forward(self, x, k, v, *, mask=None, causal=False, return_probs=False):
        """``x (B, Lq, d)`` attends to ``k, v (B, h, Lk, dh)``; ``mask (B, 1, 1|Lq, Lk)`` True=keep."""
        q = self._split(self.q(x))
        p = self.dropout if self.training else 0.0
        probs = None
        if return_probs:
            s = (q @ k.transpose(-1, -2)) / math.sqrt(self.dh)
            if causal:
                Lq, Lk = s.shape[-2:]
                tri = torch.ones(Lq, Lk, dtype=torch.bool, device=s.device).tril(Lk - Lq)
                s = s.masked_fill(~tri, float("-inf"))
            if mask is not None:
                s = s.masked_fill(~mask, float("-inf"))
            probs = s.softmax(-1)
            out = F.dropout(probs, p, self.training) @ v
        else:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=p, is_causal=causal and mask is None
            )
        B, _, Lq, _ = out.shape
        return self.o(out.transpose(1, 2).reshape(B, Lq, -1)), probs


class FusionBlock(nn.Module):
    """Causal self-attention over the current window, cross-attention to the memory, MLP (pre-LN)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.d_model
        self.ln1, self.ln2, self.ln3, self.ln_mem = (nn.LayerNorm(d) for _ in range(4))
        self.self_attn = Attention(d, cfg.n_heads, cfg.dropout)
        self.cross_attn = Attention(d, cfg.n_heads, cfg.dropout)
        self.mlp = nn.Sequential(
            nn.Linear(d, cfg.mlp_ratio * d),
            nn.GELU(),
            nn.Linear(cfg.mlp_ratio * d, d),
            nn.Dropout(cfg.dropout),
        )
        self.drop = nn.Dropout(cfg.dropout)

    def memory_kv(self, mem):
        return self.cross_attn.keys_values(self.ln_mem(mem))

    def forward(self, x, mem_kv, mem_mask, *, cache=None, return_probs=False):
        y = self.ln1(x)
        k, v = self.self_attn.keys_values(y)
        if cache is not None:  # incremental decoding: append this step's keys
            if "k" in cache:
                k = torch.cat([cache["k"], k], dim=2)
                v = torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
            a, _ = self.self_attn(y, k, v, causal=False)
        else:
            a, _ = self.self_attn(y, k, v, causal=True)
        x = x + self.drop(a)
        c, probs = self.cross_attn(self.ln2(x), *mem_kv, mask=mem_mask, return_probs=return_probs)
        x = x + self.drop(c)
        return x + self.mlp(self.ln3(x)), probs


class SpikeTransformer(nn.Module):
    """Neuroformer-style generative model of spike tokens (see the module docstring).

    Examples
    --------
    >>> import torch
    >>> from neuroana.pretrain.nn import ModelConfig, SpikeTransformer
    >>> cfg = ModelConfig.from_size("tiny", n_units=5, n_dt=5, resolution=0.01,
    ...                             window_cur=0.05, window_past=0.1)
    >>> m = SpikeTransformer(cfg)
    >>> b = {"cur_unit": torch.tensor([[1, 3, -1]]), "cur_bin": torch.tensor([[0, 2, 0]]),
    ...      "cur_len": torch.tensor([2]), "past_unit": torch.tensor([[4]]),
    ...      "past_offset": torch.tensor([[-0.02]])}
    >>> m(b).dt_logits.shape
    torch.Size([1, 4, 6])
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.unit_emb = nn.Embedding(cfg.n_units, d)
        self.sos = nn.Parameter(torch.zeros(d))
        self.null_mem = nn.Parameter(torch.zeros(d))
        span = cfg.window_cur + cfg.window_past
        self.time_emb = TimeEmbedding(d, cfg.resolution / 2, 4 * span)
        self.mods = [name for name, _ in cfg.modality_dims]
        self.type_emb = nn.Embedding(2 + len(self.mods), d)
        self.mod_proj = nn.ModuleDict({n: nn.Linear(dim, d) for n, dim in cfg.modality_dims})
        self.emb_drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(FusionBlock(cfg) for _ in range(cfg.n_blocks))
        self.ln_f = nn.LayerNorm(d)
        self.dt_head = nn.Linear(d, cfg.n_dt + 1)
        self.dt_emb = nn.Embedding(cfg.n_dt + 1, d)
        self.id_ln = nn.LayerNorm(d)
        self.id_head = nn.Linear(d, cfg.n_units)
        self.behaviour_head = nn.Linear(d, cfg.behaviour_dim) if cfg.behaviour_dim else None
        self.poisson = nn.Linear(d, cfg.n_dt * cfg.n_units) if cfg.poisson_head else None
        if self.mods:
            self.clip_neural = nn.Linear(d, cfg.contrastive_dim)
            self.clip_mod = nn.Linear(d, cfg.contrastive_dim)
            self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    @property
    def n_units(self) -> int:
        return self.unit_emb.num_embeddings

    def grow_units(self, n_new: int) -> None:
        """Append ``n_new`` unit rows to the unit embedding and the id head (new sessions)."""
        if n_new <= 0:
            return
        old_e, old_h = self.unit_emb, self.id_head
        d, n = old_e.embedding_dim, old_e.num_embeddings
        dev = old_e.weight.device
        self.unit_emb = nn.Embedding(n + n_new, d, device=dev)
        self.id_head = nn.Linear(d, n + n_new, device=dev)
        with torch.no_grad():
            nn.init.normal_(self.unit_emb.weight, std=0.02)
            nn.init.normal_(self.id_head.weight, std=0.02)
            self.unit_emb.weight[:n] = old_e.weight
            self.id_head.weight[:n] = old_h.weight
            self.id_head.bias.zero_()
            self.id_head.bias[:n] = old_h.bias
        if self.poisson is not None:
            raise ValueError("grow_units is not supported with the Poisson head")
        from dataclasses import replace

        self.cfg = replace(self.cfg, n_units=n + n_new)

    # ----------------------------------------------------------------- embeddings
    def embed_current(self, unit, tbin):
        """Embeddings of current tokens at their bin start (``unit`` -1 = padding)."""
        e = self.unit_emb(unit.clamp_min(0)) + self.time_emb(tbin.float() * self.cfg.resolution)
        return e + self.type_emb.weight[0]

    def embed_input(self, batch):
        B = batch["cur_unit"].shape[0]
        sos = self.sos + self.time_emb(torch.zeros((), device=self.sos.device))
        sos = sos + self.type_emb.weight[0]
        x = torch.cat(
            [sos.expand(B, 1, -1), self.embed_current(batch["cur_unit"], batch["cur_bin"])], dim=1
        )
        return self.emb_drop(x)

    def memory(self, batch, past_keep=None):
        """Memory tokens ``(B, M, d)`` and their keep mask ``(B, M)``; returns modality embeddings."""
        pu = batch["past_unit"]
        B = pu.shape[0]
        parts = [self.null_mem.expand(B, 1, -1)]
        valid = [torch.ones(B, 1, dtype=torch.bool, device=pu.device)]
        pe = self.unit_emb(pu.clamp_min(0)) + self.time_emb(batch["past_offset"])
        parts.append(pe + self.type_emb.weight[1])
        pv = pu >= 0
        if past_keep is not None:
            pv = pv & past_keep
        valid.append(pv)
        mod_emb = []
        for k, name in enumerate(self.mods):
            me = self.mod_proj[name](batch[f"mod_{name}_values"])
            me = me + self.time_emb(batch[f"mod_{name}_offset"]) + self.type_emb.weight[2 + k]
            parts.append(me)
            mv = batch[f"mod_{name}_valid"]
            valid.append(mv)
            mod_emb.append((me, mv))
        return self.emb_drop(torch.cat(parts, 1)), torch.cat(valid, 1), mod_emb

    # ----------------------------------------------------------------- forward
    def heads(self, h, dt_target, prev_unit=None, prev_bin=None):
        """Final norm, bin head, id head (conditioned on ``dt_target``), canonical-order masks."""
        h = self.ln_f(h)
        dt_logits = self.dt_head(h)
        id_logits = self.id_head(self.id_ln(h + self.dt_emb(dt_target)))
        if prev_unit is not None:
            dt_logits, id_logits = canonical_order_mask(
                dt_logits, id_logits, dt_target, prev_unit, prev_bin, self.cfg.n_dt
            )
        return h, dt_logits, id_logits

    def forward(self, batch, *, past_keep=None, return_attention=False) -> ModelOutput:
        x = self.embed_input(batch)
        mem, mvalid, mod_emb = self.memory(batch, past_keep)
        mask = mvalid[:, None, None, :]
        probs = [] if return_attention else None
        for blk in self.blocks:
            x, p = blk(x, blk.memory_kv(mem), mask, return_probs=return_attention)
            if return_attention:
                probs.append(p)
        dt_t = dt_targets(batch, self.cfg.n_dt)
        prev_u, prev_b = previous_tokens(batch)
        h, dt_logits, id_logits = self.heads(x, dt_t.clamp_min(0), prev_u, prev_b)
        L = h.shape[1]
        pos = torch.arange(L, device=h.device)
        in_seq = (pos[None] <= batch["cur_len"][:, None]).unsqueeze(-1).to(h.dtype)
        pooled = (h * in_seq).sum(1) / in_seq.sum(1)
        beh = self.behaviour_head(pooled) if self.behaviour_head is not None else None
        pois = None
        if self.poisson is not None:
            pois = self.poisson(h[:, 0]).view(-1, self.cfg.n_dt, self.cfg.n_units)
        clip = None
        if mod_emb:
            num = sum((e * v.unsqueeze(-1)).sum(1) for e, v in mod_emb)
            den = sum(v.sum(1, keepdim=True) for _, v in mod_emb).clamp_min(1)
            clip = (
                F.normalize(self.clip_neural(pooled), dim=-1),
                F.normalize(self.clip_mod(num / den), dim=-1),
                self.logit_scale.exp().clamp(max=100),
            )
        return ModelOutput(h, dt_logits, id_logits, pooled, beh, pois, clip, probs)

    # ----------------------------------------------------------------- incremental decoding
    def start_cache(self, batch, past_keep=None) -> dict:
        """Memory keys/values of every block, computed once for decoding."""
        mem, mvalid, _ = self.memory(batch, past_keep)
        return {
            "mem_kv": [blk.memory_kv(mem) for blk in self.blocks],
            "mask": mvalid[:, None, None, :],
            "self": [{} for _ in self.blocks],
        }

    def decode_step(self, x_new, cache) -> torch.Tensor:
        """Run ``x_new (B, 1, d)`` through the blocks with the cache; return ``ln_f`` states."""
        x = x_new
        for blk, kv, sc in zip(self.blocks, cache["mem_kv"], cache["self"], strict=True):
            x, _ = blk(x, kv, cache["mask"], cache=sc)
        return self.ln_f(x)


def previous_tokens(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit and bin of the token before each output position ``(B, Lc+1)``; -1 / 0 where none."""
    cu, cb = batch["cur_unit"], batch["cur_bin"]
    pad = torch.full_like(cu[:, :1], -1)
    prev_u = torch.cat([pad, cu], 1)
    prev_b = torch.cat([torch.zeros_like(pad), cb], 1)
    return prev_u, torch.where(prev_u >= 0, prev_b, torch.zeros_like(prev_b))


def canonical_order_mask(dt_logits, id_logits, dt_target, prev_unit, prev_bin, n_dt: int):
    """Give zero probability to tokens that break the canonical (bin, unit) order.

    Current tokens are sorted by bin, then unit, so after a token ``(b, u)`` the next bin is ``>= b``
    (or the end class) and, in the same bin, the next unit is ``>= u``. Masking the other classes makes
    the sequence distribution a distribution over count matrices: the summed token log-probability of
    a window *is* the log-probability of its count matrix (no mass is wasted on the orderings of the
    same counts that never occur). :func:`neuroana.pretrain.generate.generate` samples under the same
    constraint.
    """
    ar_dt = torch.arange(n_dt + 1, device=dt_logits.device)
    bad_dt = (ar_dt < prev_bin[..., None]) & (ar_dt < n_dt)
    dt_logits = dt_logits.masked_fill(bad_dt, float("-inf"))
    ar_u = torch.arange(id_logits.shape[-1], device=id_logits.device)
    same = (dt_target == prev_bin) & (prev_unit >= 0)
    bad_id = same[..., None] & (ar_u < prev_unit[..., None])
    return dt_logits, id_logits.masked_fill(bad_id, float("-inf"))


def dt_targets(batch, n_dt: int) -> torch.Tensor:
    """Bin targets per output position: bins, then ``n_dt`` (end) at ``cur_len``, -1 after."""
    cb = batch["cur_bin"]
    B, Lc = cb.shape
    pos = torch.arange(Lc + 1, device=cb.device)[None]
    L = batch["cur_len"][:, None]
    t = torch.cat([cb, torch.zeros(B, 1, dtype=cb.dtype, device=cb.device)], 1)
    t = torch.where(pos < L, t, torch.full_like(t, -1))
    return torch.where(pos == L, torch.full_like(t, n_dt), t)


class TokenLogProb(NamedTuple):
    logp: torch.Tensor  # (B, Lc+1) log p(bin) + log p(unit | bin); 0 where not a token
    valid: torch.Tensor  # (B, Lc+1) positions that are tokens or the end token
    unit: torch.Tensor  # (B, Lc+1) target unit (-1 for end/padding)


def token_logprob(out: ModelOutput, batch, n_dt: int) -> TokenLogProb:
    """Log-probability of every target token (including the end-of-window token)."""
    dt_t = dt_targets(batch, n_dt)
    valid = dt_t >= 0
    lp_dt = out.dt_logits.float().log_softmax(-1).gather(-1, dt_t.clamp_min(0)[..., None])[..., 0]
    cu = batch["cur_unit"]
    unit = torch.cat([cu, torch.full_like(cu[:, :1], -1)], 1)
    is_tok = unit >= 0
    lp_id = out.id_logits.float().log_softmax(-1).gather(-1, unit.clamp_min(0)[..., None])[..., 0]
    logp = torch.where(valid, lp_dt, 0.0) + torch.where(is_tok, lp_id, 0.0)
    return TokenLogProb(logp, valid, unit)


def contrastive_loss(neural: torch.Tensor, modality: torch.Tensor, scale: torch.Tensor):
    """Symmetric InfoNCE between matched rows of two L2-normalised embeddings."""
    logits = scale * neural @ modality.T
    target = torch.arange(neural.shape[0], device=neural.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def n_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
