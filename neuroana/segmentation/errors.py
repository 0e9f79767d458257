"""Exceptions raised by :mod:`neuroana.segmentation`."""

from __future__ import annotations

__all__ = ["EmptyGroundTruthError", "FisbeInputError"]


class FisbeInputError(ValueError):
    """A label array or file cannot be evaluated: wrong dtype, shape, sign or layout.

    The message names the bad value and what was expected.
    """


class EmptyGroundTruthError(FisbeInputError):
    """The ground truth holds no instance (the official code raises ZeroDivisionError here)."""
