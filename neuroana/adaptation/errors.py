"""Exceptions raised for bad input to the adaptation models (defined in :mod:`neuroana.errors`)."""

from neuroana.errors import AdaptationInputError, UnstableNetworkError

__all__ = ["AdaptationInputError", "UnstableNetworkError"]
