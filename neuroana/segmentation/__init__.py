"""FISBe 3-D neuron instance segmentation: the benchmark metrics (exact and fast), file evaluation,
baselines.

Public API: :func:`evaluate_instances`, :func:`aggregate`, :func:`key_metrics`,
:func:`evaluate_files`, :func:`instance_decisions` (per-instance TP/FN/FP/split/merge, for display),
and the estimators :class:`ColourClustering` and :class:`UNetBaseline`. Names are imported lazily
(PEP 562): the metrics do not import torch.
"""

from neuroana._lazy import attach

_LAZY = {
    "agglomerate": "neuroana.segmentation.agglomerate",
    "aggregate": "neuroana.segmentation.aggregate",
    "UNetBaseline": "neuroana.segmentation.estimator",
    "ColourClustering": "neuroana.segmentation.estimator",
    "colour_clustering": "neuroana.segmentation.clustering",
    "InstanceDecisions": "neuroana.segmentation.decisions",
    "instance_decisions": "neuroana.segmentation.decisions",
    "EmptyGroundTruthError": "neuroana.segmentation.errors",
    "FisbeInputError": "neuroana.segmentation.errors",
    "MissingDependencyError": "neuroana.segmentation.errors",
    "evaluate_files": "neuroana.segmentation.evaluate_files",
    "THRESHOLDS": "neuroana.segmentation.metrics",
    "evaluate_instances": "neuroana.segmentation.metrics",
    "key_metrics": "neuroana.segmentation.metrics",
}
__getattr__, __dir__, __all__ = attach(__name__, _LAZY)
