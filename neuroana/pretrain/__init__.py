"""Neuroformer-style generative pretraining on spike tokens (Antoniades et al., ICLR 2024).

- :mod:`~neuroana.pretrain.tokenize`: events, vectorised tokenizer, splits with guard gaps, vocabulary;
- :mod:`~neuroana.pretrain.nn`: fusion-block transformer, heads, KV cache;
- :mod:`~neuroana.pretrain.train`: training core through the shared fit loop and :class:`SpikeFormer`;
- :mod:`~neuroana.pretrain.generate`: KV-cached generation and closed-loop simulation;
- :mod:`~neuroana.pretrain.finetune`: behaviour decoding (probe / last-k / full) and few-shot protocol;
- :mod:`~neuroana.pretrain.readout`: attention / ablation connectivity, cross-correlation and GLM;
- :mod:`~neuroana.pretrain.distributed`: ``torchrun`` / ``torch.distributed`` helpers.
"""

from neuroana.pretrain.connectivity import (
    ccg_connectivity,
    compare_connectivity,
    edge_auroc,
    model_connectivity,
)
from neuroana.pretrain.decode import BehaviourDecoder, few_shot, pearson_r, r2_score
from neuroana.pretrain.ratemodel import (
    SpikeRateModel,
    bits_per_spike,
    co_smoothing,
    coupled_glm,
    population_bits_per_spike,
)
from neuroana.pretrain.tokenize import (
    SpikeEvents,
    TokenConfig,
    TokenizeError,
    UnitVocab,
    UnknownUnitError,
    detokenize,
    events_from_binned,
    events_from_spike_times,
    split_windows,
    tokenize,
    window_ends,
)
from neuroana.pretrain.train import SpikeFormer

__all__ = [
    "BehaviourDecoder",
    "SpikeRateModel",
    "bits_per_spike",
    "ccg_connectivity",
    "co_smoothing",
    "compare_connectivity",
    "coupled_glm",
    "edge_auroc",
    "few_shot",
    "model_connectivity",
    "pearson_r",
    "population_bits_per_spike",
    "r2_score",
    "SpikeEvents",
    "SpikeFormer",
    "TokenConfig",
    "TokenizeError",
    "UnitVocab",
    "UnknownUnitError",
    "detokenize",
    "events_from_binned",
    "events_from_spike_times",
    "split_windows",
    "tokenize",
    "window_ends",
]
