"""Neuroformer-style generative pretraining on spike tokens (Antoniades et al., ICLR 2024).

- :mod:`~neuroana.pretrain.tokenize`: events, vectorised tokenizer, splits with guard gaps, vocabulary;
- :mod:`~neuroana.pretrain.nn`: fusion-block transformer, heads, KV cache;
- :mod:`~neuroana.pretrain.train`: training core through the shared fit loop and :class:`SpikeFormer`;
- :mod:`~neuroana.pretrain.generate`: KV-cached generation and closed-loop simulation;
- :mod:`~neuroana.pretrain.finetune`: behaviour decoding (probe / last-k / full) and few-shot protocol;
- :mod:`~neuroana.pretrain.readout`: attention / ablation connectivity, cross-correlation and GLM;
- :mod:`~neuroana.pretrain.distributed`: ``torchrun`` / ``torch.distributed`` helpers.
"""

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
