"""Exceptions raised by :mod:`neuroana.segmentation` (defined in :mod:`neuroana.errors`)."""

from neuroana.errors import EmptyGroundTruthError, FisbeInputError, MissingDependencyError

__all__ = ["EmptyGroundTruthError", "FisbeInputError", "MissingDependencyError"]
