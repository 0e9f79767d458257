"""Self-supervised pretraining on spikes (after Antoniades et al., ICLR 2024, Neuroformer).

- :class:`SpikeRateModel` (:mod:`.ratemodel`, :mod:`.ratenet`, :mod:`.ratefit`): a per-unit rate
  model pretrained on binned spikes, read in bits per spike; the estimator of the analysis registry
  (``neuroana run`` with ``analysis: pretrain``);
- :mod:`.connectivity`: ``("target", "source")`` read-outs (model ablation, cross-correlogram);
  :mod:`.decode`: behaviour decoders (:class:`BehaviourDecoder`, few-shot);
- the spike-token model: :mod:`.tokenize` (events, tokenizer, vocabulary), :mod:`.splits`,
  :mod:`.modality`, :mod:`.nn` (fusion-block transformer), :mod:`.train` (training core),
  :class:`SpikeFormer` and :class:`TokenBehaviourDecoder` (:mod:`.estimator`), :mod:`.generate`,
  :mod:`.finetune` (few-shot protocol), :mod:`.readout` (attention / ablation connectivity),
  :mod:`.distributed` (``torchrun`` helpers).

Every estimator is importable from :mod:`.estimator`. Names are imported lazily (PEP 562):
``import neuroana.pretrain`` loads no torch until a name is used. The tokenizer function is
:func:`neuroana.pretrain.tokenize.tokenize` (the package attribute ``tokenize`` is that module).
"""

from neuroana._lazy import attach

_LAZY = {
    "BehaviourDecoder": "neuroana.pretrain.decode",
    "few_shot": "neuroana.pretrain.decode",
    "pearson_r": "neuroana.pretrain.decode",
    "r2_score": "neuroana.pretrain.decode",
    "PretrainInputError": "neuroana.pretrain.errors",
    "TokenizeError": "neuroana.pretrain.errors",
    "UnknownUnitError": "neuroana.pretrain.errors",
    "SpikeFormer": "neuroana.pretrain.estimator",
    "TokenBehaviourDecoder": "neuroana.pretrain.estimator",
    "SpikeRateModel": "neuroana.pretrain.ratemodel",
    "bits_per_spike": "neuroana.pretrain.ratemodel",
    "co_smoothing": "neuroana.pretrain.ratemodel",
    "coupled_glm": "neuroana.pretrain.ratemodel",
    "first_stage": "neuroana.pretrain.ratemodel",
    "population_bits_per_spike": "neuroana.pretrain.ratemodel",
    "ccg_connectivity": "neuroana.pretrain.connectivity",
    "compare_connectivity": "neuroana.pretrain.connectivity",
    "edge_auroc": "neuroana.pretrain.connectivity",
    "model_connectivity": "neuroana.pretrain.connectivity",
    "Split": "neuroana.pretrain.splits",
    "split_windows": "neuroana.pretrain.splits",
    "window_ends": "neuroana.pretrain.splits",
    "SpikeEvents": "neuroana.pretrain.tokenize",
    "TokenConfig": "neuroana.pretrain.tokenize",
    "UnitVocab": "neuroana.pretrain.tokenize",
    "detokenize": "neuroana.pretrain.tokenize",
    "events_from_binned": "neuroana.pretrain.tokenize",
    "events_from_spike_times": "neuroana.pretrain.tokenize",
}
__getattr__, __dir__, __all__ = attach(__name__, _LAZY)
