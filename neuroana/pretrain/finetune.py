"""Behaviour decoding from a pretrained model: linear probe, head + last k blocks, full; few-shot."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import torch
import xarray as xr
from sklearn.base import BaseEstimator

from neuroana.backend import make_generators, resolve_device
from neuroana.pretrain.dataset import to_batch
from neuroana.pretrain.train import SpikeFormer, train_model

MODES = ("probe", "last_k", "full")


class TokenBehaviourDecoder(BaseEstimator):
    """Decode behaviour at each window end from a (pretrained or fresh) spike-token model.

    Parameters
    ----------
    pretrained : SpikeFormer or None
        A fitted model to start from; None trains from scratch (same architecture as ``template``).
    mode : {"probe", "last_k", "full"}
        Train only the new regression head, the head and the last ``k`` blocks, or everything.
        Unit embeddings of units new to the vocabulary are always trained.
    k : int
        Blocks unfrozen in ``last_k`` mode.
    template : SpikeFormer, optional
        Unfitted settings for the from-scratch model (default: ``SpikeFormer()``).
    max_iter, steps_per_iter, batch_size, lr, patience : optimisation
    probe_iter : int
        Of the ``max_iter`` iterations, how many fit only the new head on the frozen pretrained
        backbone before ``mode``'s parameters are unfrozen (linear probe, then fine-tune, "LP-FT":
        the backbone is not pushed around by a random head's gradients). The total budget stays
        ``max_iter``; the better of the two phases on the validation windows is kept. Ignored when
        training from scratch or in ``probe`` mode.
    device, random_state, verbose

    Examples
    --------
    >>> from neuroana.datasets.spiking_sim import simulate_stimulus_population
    >>> from neuroana.pretrain.finetune import TokenBehaviourDecoder
    >>> from neuroana.pretrain import TokenConfig, events_from_spike_times, split_windows
    >>> pop = simulate_stimulus_population(8, duration=30.0, random_state=0)
    >>> ev = events_from_spike_times(pop.spike_times, t_start=0.0, t_stop=30.0)
    >>> s = split_windows(0.0, 29.9, TokenConfig())
    >>> dec = TokenBehaviourDecoder(max_iter=1, steps_per_iter=2, random_state=0)
    >>> dec = dec.fit(ev, pop.behaviour, s.train, s.val)
    >>> dec.predict(ev, s.test).dims
    ('window', 'feature')
    """

    def __init__(
        self,
        pretrained: SpikeFormer | None = None,
        *,
        mode: str = "full",
        k: int = 1,
        template: SpikeFormer | None = None,
        max_iter: int = 30,
        steps_per_iter: int = 10,
        batch_size: int = 64,
        lr: float = 1e-3,
        patience: int = 5,
        probe_iter: int = 0,
        device: str = "auto",
        random_state: int | None = None,
        verbose: bool = False,
    ):
        self.pretrained = pretrained
        self.mode = mode
        self.k = k
        self.template = template
        self.max_iter = max_iter
        self.steps_per_iter = steps_per_iter
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.probe_iter = probe_iter
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, spikes, behaviour, train_ends, val_ends) -> TokenBehaviourDecoder:
        """Fit on the windows ending at ``train_ends`` (early stopping on ``val_ends``).

        Raises
        ------
        ValueError
            On an unknown mode, NaN behaviour, or empty window sets.
        """
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r}; expected one of {MODES}")
        if np.size(train_ends) == 0 or np.size(val_ends) == 0:
            raise ValueError("train_ends and val_ends must each hold at least one window end")
        device = resolve_device(self.device)
        rng, _ = make_generators(self.random_state)
        seed = int(rng.integers(0, 2**31))
        if self.pretrained is not None:
            self.pretrained._check()
            base = copy.copy(self.pretrained)
            base.model_ = copy.deepcopy(self.pretrained.model_).to(device)
            base.vocab_ = copy.deepcopy(self.pretrained.vocab_)
            base.device_ = device
            from_scratch = False
        else:
            base = copy.deepcopy(self.template) if self.template is not None else SpikeFormer()
            base.set_params(
                max_iter=1,
                steps_per_iter=1,
                device=str(device),
                verbose=False,
                random_state=seed,
                checkpoint=None,
            )
            from_scratch = True
        n_before = len(base.vocab_) if not from_scratch else 0
        if from_scratch:
            base._init_untrained(spikes, behaviour, train_ends, device, seed)
        from neuroana.pretrain.dataset import as_events

        ev = as_events(spikes, session=base.session)
        base.vocab_.extend(ev.keys)
        model = base.model_
        model.grow_units(len(base.vocab_) - model.n_units)
        tr = base._windows(spikes, train_ends, behaviour=behaviour, grow=False, rng=rng)
        va = base._windows(spikes, val_ends, behaviour=behaviour, grow=False, rng=rng)
        dim = tr.arrays["behaviour"].shape[1]
        d = model.cfg.d_model
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model.behaviour_head = torch.nn.Linear(d, dim).to(device)
        from neuroana.pretrain.train import TrainConfig

        tc = TrainConfig(
            batch_size=self.batch_size,
            max_iter=self.max_iter,
            steps_per_iter=self.steps_per_iter,
            lr=self.lr,
            warmup=10,
            patience=self.patience,
            objective="behaviour",
            seed=seed,
        )
        n_probe = int(self.probe_iter)
        if n_probe < 0 or n_probe >= self.max_iter:
            raise ValueError(
                f"probe_iter={self.probe_iter!r}; expected 0 <= probe_iter < max_iter={self.max_iter}"
            )
        if from_scratch or self.mode == "probe":
            n_probe = 0
        results = []
        if n_probe:  # LP-FT: fit the head on the frozen backbone, then fine-tune from there
            _set_trainable(model, "probe", 1, grow_units=len(base.vocab_) > n_before)
            trainable = [p for p in model.parameters() if p.requires_grad]
            tc1 = replace(tc, max_iter=n_probe, seed=seed + 1)
            results.append(train_model(model, tr, va, tc1, device, params=trainable))
            tc = replace(tc, max_iter=self.max_iter - n_probe)
        mode = "full" if from_scratch else self.mode
        _set_trainable(model, mode, self.k, grow_units=len(base.vocab_) > n_before)
        trainable = [p for p in model.parameters() if p.requires_grad]
        probe_state = copy.deepcopy(model.state_dict()) if n_probe else None
        res = train_model(model, tr, va, tc, device, params=trainable, verbose=self.verbose)
        results.append(res)
        if n_probe and _best(results[0]) < _best(res):  # fine-tuning never beat the probe
            model.load_state_dict(probe_state)
        history = xr.concat([r.history for r in results], dim="iteration")
        history["iteration"] = np.arange(history.sizes["iteration"])
        self.n_probe_iter_ = results[0].n_iter if n_probe else 0
        model.eval()
        self.model_ = model
        self.base_ = base
        self.history_ = history
        self.n_iter_ = sum(r.n_iter for r in results)
        return self

    @torch.no_grad()
    def predict(self, spikes, t_end) -> xr.DataArray:
        """Predicted behaviour at each window end, ``DataArray(("window", "feature"))``."""
        if not hasattr(self, "model_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("this TokenBehaviourDecoder is not fitted yet; call fit first")
        w = self.base_._windows(spikes, t_end)
        out = []
        for i in range(0, len(w), 256):
            b = to_batch(w, np.arange(i, min(i + 256, len(w))), self.base_.device_)
            out.append(self.model_(b).behaviour.float().cpu())
        y = torch.cat(out).numpy()
        return xr.DataArray(
            y,
            dims=("window", "feature"),
            coords={"t_end": ("window", w.arrays["t_end"])},
            name="behaviour",
        )

    def score(self, spikes, behaviour, t_end) -> float:
        """R² of predicted vs true behaviour (mean over features); Pearson r: :func:`pearson_r`."""
        from neuroana.pretrain.decode import r2_score
        from neuroana.pretrain.tokenize import behaviour_targets, modality_from_dataarray

        y = behaviour_targets(modality_from_dataarray(behaviour, "behaviour"), np.asarray(t_end))
        p = self.predict(spikes, t_end).values
        return float(np.mean([r2_score(y[:, j], p[:, j]) for j in range(y.shape[1])]))


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


def _set_trainable(model, mode: str, k: int, *, grow_units: bool) -> None:
    """Freeze ``model`` except what ``mode`` trains (the behaviour head always; new units' embeddings)."""
    model.requires_grad_(mode == "full")
    model.behaviour_head.requires_grad_(True)
    if mode == "last_k":
        for blk in list(model.blocks)[-max(1, int(k)) :]:
            blk.requires_grad_(True)
        model.ln_f.requires_grad_(True)
    if grow_units:
        model.unit_emb.requires_grad_(True)


def _best(res) -> float:
    return float(np.nanmin(res.history["val_loss"].values))


def _template(pretrained: SpikeFormer) -> SpikeFormer:
    return SpikeFormer(**pretrained.get_params())
