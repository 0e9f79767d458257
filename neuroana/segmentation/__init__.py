"""FISBe 3-D neuron instance segmentation: the benchmark metrics (exact and fast), file evaluation.

Public API: :func:`evaluate_instances`, :func:`aggregate`, :func:`key_metrics`,
:func:`evaluate_files`.
"""

from neuroana.segmentation.aggregate import aggregate
from neuroana.segmentation.errors import EmptyGroundTruthError, FisbeInputError
from neuroana.segmentation.evaluate_files import evaluate_files
from neuroana.segmentation.metrics import THRESHOLDS, evaluate_instances, key_metrics

__all__ = [
    "THRESHOLDS",
    "EmptyGroundTruthError",
    "FisbeInputError",
    "aggregate",
    "evaluate_files",
    "evaluate_instances",
    "key_metrics",
]
