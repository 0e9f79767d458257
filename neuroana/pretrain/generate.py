"""KV-cached generation of current-window tokens and closed-loop simulation."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from neuroana.pretrain.nn import SpikeTransformer


class Generated(NamedTuple):
    bins: list  # per window: int array of time-bin classes
    units: list  # per window: int array of vocabulary indices


def _sos(model: SpikeTransformer, B: int) -> torch.Tensor:
    z = torch.zeros((), device=model.sos.device)
    e = model.sos + model.time_emb(z) + model.type_emb.weight[0]
    return e.expand(B, 1, -1)


@torch.no_grad()
def incremental_logits(model: SpikeTransformer, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forced logits computed one token at a time through the KV cache.

    Equal (to float rounding) to ``model(batch)``'s ``dt_logits`` and ``id_logits``; used to test the
    cache.

    Examples
    --------
    >>> import torch
    >>> from neuroana.pretrain.nn import ModelConfig, SpikeTransformer
    >>> from neuroana.pretrain.generate import incremental_logits
    >>> cfg = ModelConfig.from_size("tiny", n_units=4, n_dt=5, resolution=0.01,
    ...                             window_cur=0.05, window_past=0.05)
    >>> m = SpikeTransformer(cfg).eval()
    >>> b = {"cur_unit": torch.tensor([[2, 0]]), "cur_bin": torch.tensor([[1, 3]]),
    ...      "cur_len": torch.tensor([2]), "past_unit": torch.tensor([[1]]),
    ...      "past_offset": torch.tensor([[-0.01]])}
    >>> dt, _ = incremental_logits(m, b)
    >>> bool(torch.allclose(dt, m(b).dt_logits, atol=1e-5))
    True
    """
    from neuroana.pretrain.nn import canonical_order_mask, dt_targets, previous_tokens

    cache = model.start_cache(batch)
    B, Lc = batch["cur_unit"].shape
    x = _sos(model, B)
    emb = model.embed_current(batch["cur_unit"], batch["cur_bin"])
    dt_t = dt_targets(batch, model.cfg.n_dt).clamp_min(0)
    prev_u, prev_b = previous_tokens(batch)
    dts, ids = [], []
    for i in range(Lc + 1):
        h = model.decode_step(x, cache)
        s = slice(i, i + 1)
        dl, il = canonical_order_mask(
            model.dt_head(h),
            model.id_head(model.id_ln(h + model.dt_emb(dt_t[:, s]))),
            dt_t[:, s],
            prev_u[:, s],
            prev_b[:, s],
            model.cfg.n_dt,
        )
        dts.append(dl)
        ids.append(il)
        if i < Lc:
            x = emb[:, i : i + 1]
    return torch.cat(dts, 1), torch.cat(ids, 1)


@torch.no_grad()
def generate(
    model: SpikeTransformer,
    batch,
    *,
    max_tokens: int = 64,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> Generated:
    """Sample the current-window tokens of every window in ``batch`` given its memory.

    Tokens are sampled in canonical order: bins never decrease and, within a bin, units never
    decrease; a window ends when the end class is drawn or after ``max_tokens`` tokens.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    model.eval()
    cache = model.start_cache(batch)
    B = batch["past_unit"].shape[0]
    n_dt = model.cfg.n_dt
    dev = model.sos.device
    x = _sos(model, B)
    last_bin = torch.zeros(B, dtype=torch.long, device=dev)
    last_unit = torch.zeros(B, dtype=torch.long, device=dev)
    done = torch.zeros(B, dtype=torch.bool, device=dev)
    bins, units = [], []
    ar_dt = torch.arange(n_dt + 1, device=dev)
    ar_u = torch.arange(model.n_units, device=dev)
    for _ in range(max_tokens):
        h = model.decode_step(x, cache)[:, 0]
        lg = model.dt_head(h) / temperature
        lg = lg.masked_fill((ar_dt[None] < last_bin[:, None]) & (ar_dt[None] < n_dt), -torch.inf)
        b = torch.multinomial(lg.softmax(-1), 1, generator=generator)[:, 0]
        end = (b == n_dt) | done
        bc = b.clamp(max=n_dt - 1)
        li = model.id_head(model.id_ln(h + model.dt_emb(b))) / temperature
        same = (bc == last_bin)[:, None]
        li = li.masked_fill(same & (ar_u[None] < last_unit[:, None]), -torch.inf)
        u = torch.multinomial(li.softmax(-1), 1, generator=generator)[:, 0]
        bins.append(torch.where(end, -1, bc))
        units.append(torch.where(end, -1, u))
        done = end
        if bool(done.all()):
            break
        last_bin, last_unit = torch.where(end, last_bin, bc), torch.where(end, last_unit, u)
        x = model.embed_current(u[:, None], bc[:, None])
    bt = torch.stack(bins, 1).cpu().numpy()
    ut = torch.stack(units, 1).cpu().numpy()
    return Generated([r[r >= 0] for r in bt], [r[r >= 0] for r in ut])


def simulate(
    estimator,
    spikes,
    *,
    t_start: float,
    duration: float,
    temperature: float = 1.0,
    random_state: int | None = None,
) -> dict:
    """Closed-loop simulation: each generated window becomes the next window's past.

    The first past window is taken from the recorded ``spikes`` just before ``t_start``; generated
    spikes are placed at the centre of their time bin.

    Returns
    -------
    dict unit -> spike times in ``[t_start, t_start + duration)``

    Raises
    ------
    ValueError
        When ``duration`` is not positive.
    """
    from neuroana.pretrain.dataset import as_events, session_unit_index
    from neuroana.pretrain.tokenize import tokenize

    estimator._check()
    if duration <= 0:
        raise ValueError(f"duration must be > 0 s, got {duration}")
    cfg = estimator.token_config_
    model = estimator.model_
    dev = next(model.parameters()).device
    ev = as_events(spikes, session=estimator.session)
    idx = session_unit_index(ev, estimator.vocab_, grow=False)
    tw = tokenize(ev, np.array([t_start]), cfg, idx)
    pv = tw.past_unit[0]
    past_t = list(t_start - cfg.window_cur + tw.past_offset[0][pv >= 0])
    past_u = list(pv[pv >= 0])
    cur = tw.cur_unit[0] >= 0
    past_t += list(t_start - cfg.window_cur + tw.cur_offset[0][cur])
    past_u += list(tw.cur_unit[0][cur])
    gen = torch.Generator(device=dev)
    gen.manual_seed(int(np.random.default_rng(random_state).integers(2**62)))
    out_t, out_u = [], []
    t0 = t_start
    n_win = int(np.ceil(duration / cfg.window_cur - 1e-9))
    for _ in range(n_win):
        pt, pu = np.asarray(past_t, float), np.asarray(past_u, int)
        keep = (pt >= t0 - cfg.window_past) & (pt < t0)
        pt, pu = pt[keep][-cfg.max_tokens_past :], pu[keep][-cfg.max_tokens_past :]
        batch = {
            "past_unit": torch.as_tensor(pu[None] if pu.size else np.full((1, 1), -1), device=dev),
            "past_offset": torch.as_tensor(
                (pt - t0)[None].astype(np.float32) if pt.size else np.zeros((1, 1), np.float32),
                device=dev,
            ),
        }
        g = generate(
            model, batch, max_tokens=cfg.max_tokens_cur, temperature=temperature, generator=gen
        )
        times = t0 + (g.bins[0] + 0.5) * cfg.resolution
        out_t.extend(times)
        out_u.extend(g.units[0])
        past_t, past_u = list(pt) + list(times), list(pu) + list(g.units[0])
        t0 += cfg.window_cur
    out_t, out_u = np.asarray(out_t), np.asarray(out_u, int)
    res = {}
    for k, uid in enumerate(ev.unit_ids):
        sel = out_u == idx[k]
        res[uid] = np.sort(out_t[sel][out_t[sel] < t_start + duration])
    return res
