"""FISBe 3-D neuron instance segmentation: the benchmark metrics (exact and fast), file evaluation.

Public API: :func:`evaluate_instances`, :func:`aggregate`, :func:`key_metrics`,
:func:`evaluate_files`,
:func:`instance_decisions` (per-instance TP/FN/FP/split/merge, for display).
"""

from neuroana.segmentation.agglomerate import MissingDependencyError, agglomerate
from neuroana.segmentation.aggregate import aggregate
from neuroana.segmentation.baselines import UNetBaseline
from neuroana.segmentation.clustering import ColourClustering, colour_clustering
from neuroana.segmentation.decisions import InstanceDecisions, instance_decisions
from neuroana.segmentation.errors import EmptyGroundTruthError, FisbeInputError
from neuroana.segmentation.evaluate_files import evaluate_files
from neuroana.segmentation.metrics import THRESHOLDS, evaluate_instances, key_metrics

__all__ = [
    "ColourClustering",
    "MissingDependencyError",
    "UNetBaseline",
    "agglomerate",
    "colour_clustering",
    "THRESHOLDS",
    "EmptyGroundTruthError",
    "InstanceDecisions",
    "FisbeInputError",
    "aggregate",
    "evaluate_files",
    "evaluate_instances",
    "instance_decisions",
    "key_metrics",
]
