"""Few-shot behaviour decoding with the spike-token model: a fine-tuned pretrained model against
the same architecture trained from scratch, on the same labelled windows
(:class:`~neuroana.pretrain.estimator.TokenBehaviourDecoder` does the decoding)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from neuroana.pretrain.estimator import MODES, SpikeFormer, TokenBehaviourDecoder

__all__ = ["MODES", "TokenBehaviourDecoder", "few_shot", "few_shot_split"]


def few_shot_split(
    train_ends: np.ndarray, n: int, start: int, span: float, val_fraction: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """Labelled block ``train_ends[start:start + n]`` -> (fit, validation) window ends.

    The last ``val_fraction`` of the block (at least one window) is held out for early stopping; fit
    windows whose span would reach into the validation windows' past (``span`` = past + current
    window) are dropped, so no spike is seen by both parts.

    Raises
    ------
    ValueError
        When the block is too short to leave a fit window after the guard gap.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroana.pretrain.finetune import few_shot_split
    >>> fit, val = few_shot_split(np.arange(0.2, 2.2, 0.05), 20, 0, span=0.2)
    >>> len(fit), len(val), bool(val.min() - 0.2 >= fit.max() - 1e-9)
    (13, 4, True)
    """
    block = np.asarray(train_ends, dtype=float)[start : start + n]
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n_val = max(1, int(round(val_fraction * len(block))))
    fit, val = block[: len(block) - n_val], block[len(block) - n_val :]
    fit = fit[fit <= val.min() - span + 1e-9] if val.size else fit
    if fit.size == 0 or val.size == 0:
        raise ValueError(
            f"a labelled block of {len(block)} windows leaves {fit.size} fit and {val.size} "
            f"validation windows after the {span} s guard gap; raise min_windows"
        )
    return fit, val


def few_shot(
    pretrained: SpikeFormer,
    spikes,
    behaviour,
    train_ends,
    test_ends,
    *,
    fractions=(0.01, 0.1),
    seeds=(0,),
    mode: str = "full",
    min_windows: int = 20,
    val_fraction: float = 0.2,
    **decoder_kw,
) -> xr.Dataset:
    """Few-shot protocol: fine-tuned pretrained model vs the same model trained from scratch.

    For each fraction and seed, a contiguous block (random start) of ``fraction * len(train_ends)``
    windows (at least ``min_windows``) is labelled. Its last ``val_fraction`` is the early-stopping
    set, its first part (minus a guard gap of one window span) the fit set
    (:func:`few_shot_split`): no other label is used. Both decoders get the same windows, the same
    regression head on the pooled states, and the same optimisation budget (``decoder_kw``); they are
    scored (R²) on all ``test_ends``. The pretrained model should have seen only unlabelled
    windows of the training split. ``probe_iter`` (in ``decoder_kw``) makes the fine-tuned decoder
    spend that many of its ``max_iter`` iterations on the head alone first (LP-FT); the scratch
    decoder, whose backbone is random, spends all ``max_iter`` iterations on everything.

    Parameters
    ----------
    mode : {"probe", "last_k", "full"}
        Fine-tuning mode of the pretrained model (the scratch model always trains everything).

    Returns
    -------
    xarray.Dataset
        ``r_pretrained``, ``r_scratch`` (Pearson r on the test windows), ``n_fit``, ``n_val``
        (labelled windows used to fit / early-stop), dims ("fraction", "seed").

    Examples
    --------
    >>> from neuroana.pretrain.finetune import few_shot
    >>> few_shot.__name__
    'few_shot'
    """
    tr = np.asarray(train_ends)
    span = pretrained.window_past + pretrained.window_cur
    shape = (len(fractions), len(seeds))
    rp, rs = np.zeros(shape), np.zeros(shape)
    n_fit, n_val = np.zeros(shape, int), np.zeros(shape, int)
    for i, f in enumerate(fractions):
        if not 0 < f <= 1:
            raise ValueError(f"fractions must be in (0, 1], got {f}")
        n = min(len(tr), max(min_windows, int(round(f * len(tr)))))
        for j, s in enumerate(seeds):
            rng = np.random.default_rng(s)
            a = int(rng.integers(0, len(tr) - n + 1))
            fit, val = few_shot_split(tr, n, a, span, val_fraction)
            n_fit[i, j], n_val[i, j] = len(fit), len(val)
            kw = {"random_state": s, **decoder_kw}
            ft = TokenBehaviourDecoder(pretrained, mode=mode, **kw).fit(spikes, behaviour, fit, val)
            sc = TokenBehaviourDecoder(None, template=_template(pretrained), **kw)
            sc = sc.fit(spikes, behaviour, fit, val)
            rp[i, j] = ft.score(spikes, behaviour, test_ends)
            rs[i, j] = sc.score(spikes, behaviour, test_ends)
    dims = ("fraction", "seed")
    return xr.Dataset(
        {
            "r_pretrained": (dims, rp),
            "r_scratch": (dims, rs),
            "n_fit": (dims, n_fit),
            "n_val": (dims, n_val),
        },
        coords={"fraction": list(fractions), "seed": list(seeds)},
        attrs={"mode": mode, "probe_iter": int(decoder_kw.get("probe_iter", 0))},
    )


def _template(pretrained: SpikeFormer) -> SpikeFormer:
    return SpikeFormer(**pretrained.get_params())
